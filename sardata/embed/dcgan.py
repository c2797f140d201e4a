"""BSLM scene features: a DCGAN on SAR images whose discriminator describes a scene (seed paper 000, SSDD).

Generator: 7 transposed-conv blocks ``G1…G7`` from 100-d uniform noise in ``[-1, 1]`` to a ``1×256×256`` image.
Discriminator: 7 conv blocks ``C8…C14`` from ``1×256×256`` to ``1024×4×4``, then a real/fake head. The scene feature
is ``F = flatten(concat(C14, MaxPool2(C13), MaxPool4(C12)))``: C12 is 256ch@16², C13 512ch@8², C14 1024ch@4², so all
three are 4×4 after pooling and ``F`` has 1792×4×4 = 28672 dimensions.

The paper fixes the depth (7 blocks) and the 4×4 output, not the resolution of every block; here C8 keeps the input
resolution and C9…C14 halve it. For smaller ``image_size`` (fast tests, 32…128), more of the early blocks keep the
resolution, so C12…C14 are always at 16², 8², 4². ``base_channels`` (1024: the paper) sets C14's width; the other
blocks halve it going outwards, and the feature has ``28·base_channels`` dimensions.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import warnings
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from sardata import checkpoints
from sardata.config import LATEST, TrainConfig, resume_option
from sardata.embed import data as edata

NOISE_DIM = 100
DEFAULT_IMAGE_SIZE = 256
DEFAULT_BASE_CHANNELS = 1024
#: Discriminator block names, input to output (the paper's layer numbering).
BLOCK_NAMES = tuple(f"C{i}" for i in range(8, 15))


def _check_geometry(image_size: int, base_channels: int) -> None:
    if image_size < 32 or image_size > 256 or image_size & (image_size - 1):
        raise ValueError(f"image_size must be a power of two in 32..256, got {image_size}")
    if base_channels < 64 or base_channels & (base_channels - 1):
        raise ValueError(f"base_channels must be a power of two >= 64, got {base_channels}")


@dataclasses.dataclass(kw_only=True)
class GanConfig(TrainConfig):
    """Options of :func:`train_gan` (``sardata embed train-gan``); the shared fields are :class:`TrainConfig`'s.

    Attributes:
        epochs (25), batch_size (32), lr (2e-4): Adam for both networks (an epoch budget).
        steps (None): budget in optimiser steps instead of epochs (see :data:`PRESETS`).
        input_norm ("db_zscore"): image → model input (:func:`sardata.embed.data.to_model_input`).
        preset ("default"): the :data:`PRESETS` entry the settings came from (recorded).
        betas ((0.5, 0.999)): Adam betas.
        image_size (256): training resolution (power of two, 32…256; 256 is the paper's).
        base_channels (1024): C14 width (the feature has 28·base_channels dimensions).
        workers (None): DataLoader workers; None → min(4, cpu_count).
        resume ("latest"): continue from the run directory's checkpoint when there is one.
    """

    epochs: int | None = 25
    steps: int | None = None
    batch_size: int = 32
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    image_size: int = DEFAULT_IMAGE_SIZE
    input_norm: str = edata.DEFAULT_INPUT_NORM
    preset: str = "default"
    base_channels: int = DEFAULT_BASE_CHANNELS
    workers: int | None = None
    resume: Path | str | None = LATEST

    def validate(self) -> "GanConfig":
        _check_geometry(self.image_size, self.base_channels)
        if self.input_norm not in edata.INPUT_NORMS:
            raise ValueError(f"input_norm={self.input_norm!r}: expected one of {edata.INPUT_NORMS}")
        budget = self.steps if self.steps is not None else self.epochs
        if budget is None or int(budget) < (0 if self.steps is not None else 1):
            raise ValueError(f"steps={self.steps!r}, epochs={self.epochs!r}: the budget must be at least 1 epoch "
                             "or 0 steps")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas={self.betas!r}: expected two numbers in [0, 1)")
        return super().validate()


def _channels(base_channels: int) -> list[int]:
    """Widths of C8…C14 (also of G7…G1 reversed): base/64 … base, at least 8."""
    return [max(base_channels >> (6 - i), 8) for i in range(7)]


def _strided(image_size: int) -> list[bool]:
    """Which of the 7 blocks change resolution by 2: the last log2(size/4)."""
    n = int(math.log2(image_size // 4))
    return [i >= 7 - n for i in range(7)]


class Generator(nn.Module):
    """7 transposed-conv blocks: noise ``(B, 100)`` → image ``(B, 1, S, S)`` in ``[-1, 1]`` (tanh)."""

    def __init__(
        self,
        image_size: int = DEFAULT_IMAGE_SIZE,
        base_channels: int = DEFAULT_BASE_CHANNELS,
        noise_dim: int = NOISE_DIM,
    ):
        super().__init__()
        _check_geometry(image_size, base_channels)
        self.noise_dim = noise_dim
        widths = _channels(base_channels)[::-1]  # G1 widest
        # G1 projects the 1×1 noise to 4×4; the next log2(S/4) blocks double the resolution, the rest keep it.
        upsample = _strided(image_size)[::-1][:-1]
        blocks = [self._block(noise_dim, widths[0], nn.ConvTranspose2d(noise_dim, widths[0], 4, 1, 0, bias=False))]
        for i in range(1, 7):
            c_in, c_out = widths[i - 1], (widths[i] if i < 6 else 1)
            if upsample[i - 1]:
                conv = nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=i == 6)
            else:
                conv = nn.ConvTranspose2d(c_in, c_out, 3, 1, 1, bias=i == 6)
            blocks.append(self._block(c_in, c_out, conv, last=i == 6))
        self.blocks = nn.Sequential(OrderedDict((f"G{i + 1}", block) for i, block in enumerate(blocks)))
        self.apply(_init_weights)

    @staticmethod
    def _block(c_in: int, c_out: int, conv: nn.Module, last: bool = False) -> nn.Sequential:
        if last:
            return nn.Sequential(conv, nn.Tanh())
        return nn.Sequential(conv, nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        return self.blocks(noise.view(noise.shape[0], self.noise_dim, 1, 1))


class Discriminator(nn.Module):
    """7 conv blocks ``C8…C14`` (attributes ``self.C8`` … ``self.C14``) and a real/fake logit head.

    ``forward(x)`` returns the logits ``(B,)``; :meth:`features` returns the 28672-d BSLM scene feature.
    """

    def __init__(self, image_size: int = DEFAULT_IMAGE_SIZE, base_channels: int = DEFAULT_BASE_CHANNELS):
        super().__init__()
        _check_geometry(image_size, base_channels)
        widths = _channels(base_channels)
        c_in = 1
        for i, (name, c_out, strided) in enumerate(zip(BLOCK_NAMES, widths, _strided(image_size))):
            kernel, stride = (4, 2) if strided else (3, 1)
            conv = nn.Conv2d(c_in, c_out, kernel, stride, 1, bias=False)
            # No batch norm on the input block (DCGAN, Radford et al. 2016).
            norm = nn.Identity() if i == 0 else nn.BatchNorm2d(c_out)
            setattr(self, name, nn.Sequential(conv, norm, nn.LeakyReLU(0.2, inplace=True)))
            c_in = c_out
        self.head = nn.Conv2d(c_in, 1, 4, 1, 0)
        self.feature_dim = (widths[4] + widths[5] + widths[6]) * 16
        self.apply(_init_weights)

    def _trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        for name in BLOCK_NAMES[:4]:
            x = getattr(self, name)(x)
        c12 = self.C12(x)
        c13 = self.C13(c12)
        c14 = self.C14(c13)
        return c12, c13, c14

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self._trunk(x)[2]).flatten()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``flatten(concat(C14, MaxPool2(C13), MaxPool4(C12)))`` → ``(B, 28·base_channels)``."""
        c12, c13, c14 = self._trunk(x)
        fused = torch.cat([c14, nn.functional.max_pool2d(c13, 2), nn.functional.max_pool2d(c12, 4)], dim=1)
        return fused.flatten(1)


#: Spatial positions of the scene feature (C14's 4×4 grid). ``F`` is channel-major: ``F[c·16 + p]``.
FEATURE_POSITIONS = 16


def _init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights N(0, 0.02), batch-norm weights N(1, 0.02), biases 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def sample_noise(batch: int, noise_dim: int = NOISE_DIM, device=None, generator=None) -> torch.Tensor:
    """Uniform noise in ``[-1, 1]`` (the paper's 100-d uniform prior)."""
    return torch.rand(batch, noise_dim, device=device, generator=generator) * 2.0 - 1.0


def discriminator_from_checkpoint(checkpoint: dict) -> Discriminator:
    """Rebuilds the trained discriminator from a :func:`train_gan` checkpoint dict."""
    if checkpoint.get("kind") != "dcgan":
        raise ValueError(f"not a DCGAN checkpoint (kind={checkpoint.get('kind')!r})")
    if checkpoint.get("bn_real") is False:  # older checkpoints, re-estimated after every epoch, have no flag
        raise ValueError(
            f"DCGAN checkpoint of an unfinished run (epoch {checkpoint.get('epoch')}, step {checkpoint.get('step')}): "
            "its batch-norm statistics are not yet re-estimated on real images, so its features would be "
            "normalised with training statistics; finish the run first (`sardata embed train-gan` resumes it)")
    cfg = checkpoint["config"]
    with torch.device("meta"):  # no initialisation work: every tensor comes from the checkpoint
        model = Discriminator(cfg["image_size"], cfg["base_channels"])
    model.load_state_dict(checkpoint["discriminator"], assign=True)
    return model


# ------------------------------------------------------------------------------------------------- training


#: Training presets. ``"default"`` budgets training in optimiser steps, so a 120-image demo and the 1160-image SSDD
#: get the same number of updates (an epoch of 120 images at batch 16 is only 7 of them); ``"paper"`` is BSLM's
#: schedule (25 epochs of 1160 images at 256 px, batch 32: ~900 steps). Explicit arguments override a preset.
PRESETS = {
    "default": {"steps": 60, "epochs": None, "batch_size": 16, "image_size": 128, "lr": 2e-4, "betas": (0.5, 0.999)},
    "paper": {"steps": None, "epochs": 25, "batch_size": 32, "image_size": 256, "lr": 2e-4, "betas": (0.5, 0.999)},
}


def resolve_budget(preset: str = "default", **overrides) -> dict:
    """The preset's settings with the non-None ``overrides`` applied; ``steps`` and ``epochs`` exclude each other.

    Raises:
        ValueError: unknown preset, both ``steps`` and ``epochs`` given, or a budget below 1 epoch or 0 steps.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    given = {k: v for k, v in overrides.items() if v is not None}
    if given.get("steps") is not None and given.get("epochs") is not None:
        raise ValueError(f"give steps or epochs, not both (steps={given['steps']}, epochs={given['epochs']})")
    settings = dict(PRESETS[preset])
    if "steps" in given:
        settings["epochs"] = None
    if "epochs" in given:
        settings["steps"] = None
    settings.update(given)
    budget = settings["steps"] if settings["steps"] is not None else settings["epochs"]
    if budget is None or int(budget) < (0 if settings["steps"] is not None else 1):
        raise ValueError(f"the training budget must be at least 0 steps or 1 epoch, got {settings}")
    return settings


def train_gan(
    samples_or_dataset,
    out_dir: str | os.PathLike | None = None,
    steps: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    betas: tuple[float, float] | None = None,
    image_size: int | None = None,
    base_channels: int = DEFAULT_BASE_CHANNELS,
    preset: str = "default",
    input_norm: str = edata.DEFAULT_INPUT_NORM,
    device: str | torch.device | None = None,
    num_workers: int | None = None,
    seed: int = 0,
    resume: bool | str | os.PathLike | None = True,
    progress: bool = True,
) -> Path:
    """Trains the BSLM DCGAN and returns the path of its checkpoint.

    Args:
        samples_or_dataset: FiftyOne dataset/view, dataset name, or list of image paths.
        out_dir (None): run directory; None → ``work_dir(dataset_name, "dcgan")``.
        steps (None): budget in optimiser steps (one D and one G update each); None → the preset's. ``0``: no
            update, the initialised networks with the batch-norm statistics re-estimated on real images (the
            untrained baseline of the features; a later run with a budget resumes from it as from scratch).
        epochs (None): budget in epochs instead (the ``"paper"`` preset: 25); excludes ``steps``.
        batch_size (None): images per step (preset: 16; paper 32).
        lr (None): Adam learning rate of both networks (2e-4).
        betas (None): Adam betas ((0.5, 0.999)).
        image_size (None): training resolution, power of two 32…256 (preset 128; paper 256).
        base_channels (1024): C14 width (the feature has 28·base_channels dimensions).
        preset ("default"): ``"default"`` (:data:`PRESETS`: 60 steps at 128 px) or ``"paper"``.
        input_norm ("db_zscore"): image → model input (:func:`sardata.embed.data.to_model_input`); recorded in
            the checkpoint, so extraction applies the same one.
        device (None): torch device; None → CUDA when available.
        num_workers (None): DataLoader workers; None → min(4, cpu_count).
        seed (0): seed of initialisation, shuffling and noise (each epoch is seeded from it, so a resumed run
            matches an uninterrupted one).
        resume (True): continue from the run directory's newest checkpoint when there is one (True or
            ``"latest"``), from a given checkpoint path, or never (False / None); a larger budget continues a run.
        progress (True): show a progress bar.

    A step budget runs ``ceil(steps / steps_per_epoch)`` epochs, the last one cut at the budget (a run resumed with
    a larger budget continues with the next epoch). After the last epoch the discriminator's batch-norm statistics are
    re-estimated on real images (:func:`recalibrate_batchnorm`; ``bn_real`` in the checkpoint, and features are only
    extracted from such a checkpoint). After every epoch ``checkpoint.pth`` (G, D, optimizers, epoch, step, config,
    history, RNG state; see :mod:`sardata.checkpoints`) is written atomically, with ``samples/epoch_NNN.png``
    (fixed-noise generator samples), ``losses.csv`` and ``losses.png``.
    """
    from sardata.paths import work_dir
    from sardata.runtime import resolve_device, seed_everything

    budget = resolve_budget(preset, steps=steps, epochs=epochs, batch_size=batch_size, lr=lr, betas=betas,
                            image_size=image_size)
    steps, epochs = budget["steps"], budget["epochs"]
    batch_size, lr, betas, image_size = budget["batch_size"], budget["lr"], budget["betas"], budget["image_size"]
    source = edata.resolve_samples(samples_or_dataset)
    if out_dir is None:
        if source.dataset_name is None:
            raise ValueError("out_dir is required when training on bare image paths")
        out_dir = work_dir(source.dataset_name, "dcgan")
    cfg = GanConfig(out_dir=out_dir, epochs=epochs, steps=steps, batch_size=batch_size, lr=lr, betas=tuple(betas),
                    image_size=image_size, base_channels=base_channels, input_norm=input_norm, preset=preset,
                    device=None if device is None else str(device), workers=num_workers, seed=seed,
                    resume=resume_option(resume), progress=progress).validate()
    out_dir = cfg.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    resume_path = cfg.resume_checkpoint()
    device = resolve_device(cfg.device)
    config = {
        "image_size": int(image_size),
        "base_channels": int(base_channels),
        "noise_dim": NOISE_DIM,
        "lr": float(lr),
        "betas": [float(b) for b in betas],
        "batch_size": int(batch_size),
        "seed": int(seed),
        "input_norm": input_norm,
        "preset": preset,
    }

    seed_everything(seed)
    gen = Generator(image_size, base_channels).to(device)
    disc = Discriminator(image_size, base_channels).to(device)
    opt_g = torch.optim.Adam(gen.parameters(), lr=lr, betas=tuple(betas))
    opt_d = torch.optim.Adam(disc.parameters(), lr=lr, betas=tuple(betas))
    fixed_noise = sample_noise(16, generator=torch.Generator().manual_seed(seed)).to(device)
    history: list[dict] = []
    start_epoch = start_step = 0

    if resume_path is not None:
        state = checkpoints.load_checkpoint(resume_path)  # CPU: the RNG state must stay there
        _check_resume_config(state, config, resume_path)
        gen.load_state_dict(state["generator"])
        disc.load_state_dict(state["discriminator"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        history = list(state["history"])
        start_epoch = int(state["epoch"])
        start_step = int(state.get("step", 0))
        edata.set_rng_state(state["rng"])
    ckpt_path = out_dir / checkpoints.CHECKPOINT_NAME

    dataset = edata.SampleImageDataset(source.filepaths, image_size)
    drop_last = len(dataset) > batch_size
    per_epoch = max(1, len(dataset) // batch_size if drop_last else 1)
    total_steps = None if steps is None else int(steps)
    if total_steps is not None:
        epochs = start_epoch + math.ceil(max(0, total_steps - start_step) / per_epoch)
    if total_steps == 0 and resume_path is None:  # the untrained networks, batch norm on real images
        recalibrate_batchnorm(disc, edata.make_loader(dataset, batch_size, False, num_workers, device), device,
                              input_norm)
        return _save_run(out_dir, config, 0, 0, gen, disc, opt_g, opt_d, history, final=True)
    if start_epoch >= epochs or (total_steps is not None and start_step >= total_steps):
        return resume_path

    step = start_step
    for epoch in range(start_epoch + 1, epochs + 1):
        loader = edata.make_loader(
            dataset, batch_size, True, num_workers, device, drop_last=drop_last,
            generator=torch.Generator().manual_seed(seed * 100_003 + epoch),
        )
        torch.manual_seed(seed * 100_003 + epoch)
        started = time.perf_counter()
        max_steps = None if total_steps is None else total_steps - step
        stats = _gan_epoch(gen, disc, opt_g, opt_d, loader, device, epoch, epochs, progress, input_norm, max_steps)
        step += int(stats.pop("steps"))
        final = epoch == epochs or (total_steps is not None and step >= total_steps)
        if final:  # a forward pass over every image: only the features of the finished run need it
            recalibrate_batchnorm(disc, edata.make_loader(dataset, batch_size, False, num_workers, device), device,
                                  input_norm)
        history.append({"epoch": epoch, "step": step, **stats, "seconds": round(time.perf_counter() - started, 3)})
        # Sampled with batch statistics, as during training: early running statistics are far off.
        with torch.no_grad():
            edata.write_grid(gen(fixed_noise), out_dir / "samples" / f"epoch_{epoch:03d}.png", nrow=4)
        edata.write_curves(
            [{k: v for k, v in row.items() if k not in ("seconds", "step")} for row in history], out_dir,
            title="BSLM DCGAN",
        )
        _save_run(out_dir, config, epoch, step, gen, disc, opt_g, opt_d, history, final)
        if total_steps is not None and step >= total_steps:
            break
    return ckpt_path


def _save_run(out_dir: Path, config: dict, epoch: int, step: int, gen, disc, opt_g, opt_d, history: list,
              final: bool) -> Path:
    """Writes the run's ``checkpoint.pth`` (~300 MB at 256 px: only the latest is kept); returns its path."""
    return checkpoints.save_checkpoint(
        out_dir,
        {
            "kind": "dcgan",
            "config": config,
            "step": step,
            "generator": gen.state_dict(),
            "discriminator": disc.state_dict(),
            "opt_g": opt_g.state_dict(),
            "opt_d": opt_d.state_dict(),
            "history": history,
            "rng": edata.rng_state(),
            "bn_real": final,  # batch-norm statistics re-estimated on real images (extraction refuses otherwise)
        },
        epoch,
        keep_every_epoch=False,
    )


def recalibrate_batchnorm(disc: Discriminator, loader, device, input_norm: str = edata.DEFAULT_INPUT_NORM) -> None:
    """Re-estimates the discriminator's batch-norm running statistics on real images only.

    During training they average real and generated batches, but features are extracted in eval mode from real
    images, so they are normalised with real-image statistics (on synthetic SSDD this turned k-means ARI
    inshore/offshore from ~0 to 0.26 after a few epochs). Training is unaffected: train mode uses batch statistics.
    ``input_norm`` must be the one the discriminator is trained with.
    """
    norms = [m for m in disc.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the pass
    was_training = disc.training
    disc.train()
    with torch.no_grad():
        for batch in loader:
            real = batch["image"][batch["ok"]]
            if real.shape[0] >= 2:
                disc(edata.to_model_input(real.to(device, non_blocking=True), input_norm))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    disc.train(was_training)


def _check_resume_config(state: dict, config: dict, path: Path) -> None:
    keys = ("image_size", "base_channels", "noise_dim", "input_norm")
    saved = {**state.get("config", {}), "input_norm": edata.checkpoint_input_norm(state.get("config", {}))}
    if state.get("kind") != "dcgan":
        raise ValueError(f"{path}: not a DCGAN checkpoint (kind={state.get('kind')!r}); use another out_dir")
    diff = {k: (saved.get(k), config[k]) for k in keys if saved.get(k) != config[k]}
    if diff:
        raise ValueError(f"{path}: cannot resume, architecture differs (saved, requested): {diff}; "
                         "use another out_dir or resume=False (--no-resume)")


def _gan_epoch(gen, disc, opt_g, opt_d, loader, device, epoch: int, epochs: int, progress: bool,
               input_norm: str = edata.DEFAULT_INPUT_NORM, max_steps: int | None = None) -> dict:
    """One epoch of the standard DCGAN updates (non-saturating generator loss), stopped after ``max_steps`` steps;
    returns mean losses and ``steps``."""
    from tqdm.auto import tqdm

    bce = nn.BCEWithLogitsLoss()
    gen.train()
    disc.train()
    totals = {"loss_d": 0.0, "loss_g": 0.0, "d_real": 0.0, "d_fake": 0.0}
    steps = 0
    for batch in tqdm(loader, desc=f"dcgan epoch {epoch}/{epochs}", disable=not progress, leave=False):
        if max_steps is not None and steps >= max_steps:
            break
        real = batch["image"][batch["ok"]]
        if real.shape[0] < 2:  # batch norm needs two images
            continue
        real = edata.to_model_input(real.to(device, non_blocking=True), input_norm)
        b = real.shape[0]
        ones = torch.ones(b, device=device)
        zeros = torch.zeros(b, device=device)

        fake = gen(sample_noise(b, device=device))
        opt_d.zero_grad(set_to_none=True)
        logit_real = disc(real)
        logit_fake = disc(fake.detach())
        loss_d = bce(logit_real, ones) + bce(logit_fake, zeros)
        loss_d.backward()
        opt_d.step()

        opt_g.zero_grad(set_to_none=True)
        loss_g = bce(disc(fake), ones)
        loss_g.backward()
        opt_g.step()

        if not (torch.isfinite(loss_d) and torch.isfinite(loss_g)):
            raise FloatingPointError(f"non-finite GAN loss at epoch {epoch}: D {loss_d.item()}, G {loss_g.item()}")
        totals["loss_d"] += loss_d.item()
        totals["loss_g"] += loss_g.item()
        totals["d_real"] += torch.sigmoid(logit_real).mean().item()
        totals["d_fake"] += torch.sigmoid(logit_fake).mean().item()
        steps += 1
    if steps == 0:
        warnings.warn(f"dcgan epoch {epoch}: no batch with at least two readable images", stacklevel=2)
        return {**{k: float("nan") for k in totals}, "steps": 0}
    return {**{k: round(v / steps, 6) for k, v in totals.items()}, "steps": steps}


__all__ = [
    "BLOCK_NAMES",
    "Discriminator",
    "Generator",
    "FEATURE_POSITIONS",
    "NOISE_DIM",
    "PRESETS",
    "discriminator_from_checkpoint",
    "recalibrate_batchnorm",
    "resolve_budget",
    "sample_noise",
    "train_gan",
]

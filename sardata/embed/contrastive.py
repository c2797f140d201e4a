"""Contrastive clustering (Li et al., AAAI 2021) on SAR images: the auxiliary task of seed paper 003 (WHU-OPT-SAR).

A ResNet18 encoder (512-d) feeds two heads: an *instance head* (MLP → 128-d, NT-Xent between the two views of each
image, τ=0.5) and a *cluster head* (MLP → softmax over M clusters, NT-Xent between the same cluster column of the two
views, τ=1.0, minus the entropy of the batch's cluster assignment so that clusters do not collapse). Positives are two
augmented views of an image, or, with ``knn_positives=K``, a view of the image and a view of one of its K nearest
neighbours in the encoder's feature space of the previous epoch (K=3 in seed 003). The neighbours come from a
memory bank of every image's encoder feature, filled from the first augmented view during training, so mining costs
no extra pass over the data.

Outputs for extraction: encoder features (512-d) and soft cluster assignments.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sardata import checkpoints
from sardata.config import LATEST, TrainConfig, resume_option
from sardata.embed import data as edata
from sardata.embed.augment import SarAugment

DEFAULT_IMAGE_SIZE = 224
ENCODER_DIM = 512


# ------------------------------------------------------------------------------------------------------ losses


def nt_xent(z_a: torch.Tensor, z_b: torch.Tensor, tau: float) -> torch.Tensor:
    """Normalised temperature-scaled cross entropy (SimCLR) between paired rows of ``z_a`` and ``z_b``.

    Row ``i`` of ``z_a`` and row ``i`` of ``z_b`` are positives; the other ``2N-2`` rows are negatives. Rows are
    L2-normalised (cosine similarity). The loss is averaged over the ``2N`` anchors.
    """
    if z_a.shape != z_b.shape or z_a.ndim != 2:
        raise ValueError(f"expected two (N, D) tensors of the same shape, got {tuple(z_a.shape)}, {tuple(z_b.shape)}")
    n = z_a.shape[0]
    z = F.normalize(torch.cat([z_a, z_b]), dim=1)
    sim = z @ z.T / tau
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, targets)


def cluster_entropy(p: torch.Tensor) -> torch.Tensor:
    """Entropy of the batch's cluster assignment ``P(k) = Σ_i p_ik / Σ_ik p_ik`` (natural log)."""
    marginal = p.sum(0) / p.sum()
    return -(marginal * torch.log(marginal.clamp_min(1e-12))).sum()


def cluster_loss(p_a: torch.Tensor, p_b: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """Cluster-level contrastive loss: NT-Xent over the cluster *columns* minus ``H(a) + H(b)``.

    ``p_a``, ``p_b``: ``(N, M)`` soft assignments of the two views. Column ``k`` of each view is the representation
    of cluster ``k``; maximising the entropy of the cluster marginal keeps every cluster in use.
    """
    return nt_xent(p_a.T, p_b.T, tau) - (cluster_entropy(p_a) + cluster_entropy(p_b))


# ------------------------------------------------------------------------------------------------------ model


def build_encoder(weights=None, in_channels: int = 1) -> nn.Module:
    """ResNet18 trunk returning 512-d features, with a ``in_channels``-channel stem.

    Args:
        weights (None): None (random init), a torchvision weights enum (e.g.
            ``torchvision.models.ResNet18_Weights.IMAGENET1K_V1``, needs the file in the torch cache), or the path of
            a ``state_dict`` file of a torchvision ResNet18.
        in_channels (1): input channels; a pretrained RGB stem is summed over its colour channels.
    """
    from torchvision.models import resnet18

    if weights is None or not isinstance(weights, (str, os.PathLike)):
        model = resnet18(weights=weights)
    else:
        model = resnet18(weights=None)
        state = checkpoints.load_checkpoint(weights)
        state = state.get("state_dict", state)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if [k for k in missing if not k.startswith("fc.")] or unexpected:
            raise ValueError(
                f"{weights}: not a ResNet18 state dict (missing {missing[:3]}, unexpected {unexpected[:3]})"
            )
    if in_channels != 3:
        old = model.conv1
        conv = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        with torch.no_grad():
            if weights is not None and in_channels == 1:
                conv.weight.copy_(old.weight.sum(dim=1, keepdim=True))
        model.conv1 = conv
    model.fc = nn.Identity()
    return model


class ContrastiveClustering(nn.Module):
    """Encoder + instance head (→ ``feature_dim``) + cluster head (→ softmax over ``clusters``).

    ``forward(x)`` returns ``(h, z, p)``: encoder features ``(B, 512)``, instance embeddings ``(B, feature_dim)``,
    cluster probabilities ``(B, clusters)``.
    """

    def __init__(self, encoder: nn.Module | None = None, feature_dim: int = 128, clusters: int = 10):
        super().__init__()
        if clusters < 2:
            raise ValueError(f"clusters must be >= 2, got {clusters}")
        self.encoder = encoder if encoder is not None else build_encoder()
        self.instance_head = nn.Sequential(
            nn.Linear(ENCODER_DIM, ENCODER_DIM), nn.ReLU(inplace=True), nn.Linear(ENCODER_DIM, feature_dim)
        )
        self.cluster_head = nn.Sequential(
            nn.Linear(ENCODER_DIM, ENCODER_DIM), nn.ReLU(inplace=True), nn.Linear(ENCODER_DIM, clusters)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return h, self.instance_head(h), torch.softmax(self.cluster_head(h), dim=1)

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder features and soft cluster assignments (what extraction keeps)."""
        h = self.encoder(x)
        return h, torch.softmax(self.cluster_head(h), dim=1)


def model_from_checkpoint(checkpoint: dict) -> ContrastiveClustering:
    """Rebuilds the trained model from a :func:`train_cc` checkpoint dict."""
    if checkpoint.get("kind") != "cc":
        raise ValueError(f"not a contrastive-clustering checkpoint (kind={checkpoint.get('kind')!r})")
    cfg = checkpoint["config"]
    with torch.device("meta"):  # no initialisation work: every tensor comes from the checkpoint
        model = ContrastiveClustering(build_encoder(None), cfg["feature_dim"], cfg["clusters"])
    model.load_state_dict(checkpoint["model"], assign=True)
    return model


def nearest_neighbours(bank: torch.Tensor, k: int, chunk: int = 4096) -> torch.Tensor:
    """Indices ``(N, k)`` of each row's k most cosine-similar other rows (itself excluded)."""
    bank = F.normalize(bank.float(), dim=1)
    k = min(k, bank.shape[0] - 1)
    out = []
    for start in range(0, bank.shape[0], chunk):
        sim = bank[start : start + chunk] @ bank.T
        rows = torch.arange(sim.shape[0])
        sim[rows, rows + start] = float("-inf")
        out.append(sim.topk(k, dim=1).indices)
    return torch.cat(out)


class _NeighbourPicker:
    """Picklable ``index -> index`` for the DataLoader workers: a random one of the index's K neighbours."""

    def __init__(self, neighbours: np.ndarray | None):
        self.neighbours = neighbours

    def __call__(self, index: int) -> int:
        if self.neighbours is None:
            return index
        row = self.neighbours[index]
        return int(row[int(torch.randint(len(row), ()))])


# --------------------------------------------------------------------------------------------------- training


#: Default budget in optimiser steps (one epoch of 120 images at batch 32 is only 3 of them). ``epochs=`` instead
#: gives an epoch budget (20 epochs: the previous default).
DEFAULT_STEPS = 60
#: Nearest-neighbour positives (seed 003: K=3).
DEFAULT_KNN = 3


@dataclasses.dataclass(kw_only=True)
class CCConfig(TrainConfig):
    """Options of :func:`train_cc` (``sardata embed train-cc``); the shared fields are :class:`TrainConfig`'s.

    Attributes:
        epochs (None) or steps (None → 60): the budget; batch_size (32), lr (3e-4): Adam (seed 003: batch 32).
        clusters (10), feature_dim (128): cluster and instance head sizes.
        tau_instance (0.5), tau_cluster (1.0): NT-Xent temperatures.
        knn_positives (3): K nearest-neighbour positives (seed 003: 3; 0: two views of one image).
        input_norm ("db_zscore"): image → model input after augmentation.
        weight_decay (0.0), image_size (224).
        workers (None): DataLoader workers; None → min(4, cpu_count).
        resume ("latest"): continue from the run directory's checkpoint when there is one.
    """

    epochs: int | None = None
    steps: int | None = None
    batch_size: int = 32
    lr: float = 3e-4
    clusters: int = 10
    feature_dim: int = 128
    tau_instance: float = 0.5
    tau_cluster: float = 1.0
    knn_positives: int = 3
    weight_decay: float = 0.0
    image_size: int = DEFAULT_IMAGE_SIZE
    input_norm: str = edata.DEFAULT_INPUT_NORM
    workers: int | None = None
    resume: Path | str | None = LATEST

    def validate(self) -> "CCConfig":
        if isinstance(self.clusters, bool) or not isinstance(self.clusters, int) or self.clusters < 2:
            raise ValueError(f"clusters={self.clusters!r}: must be an integer ≥ 2")
        for name in ("feature_dim", "image_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r}: must be a positive integer")
        if self.input_norm not in edata.INPUT_NORMS:
            raise ValueError(f"input_norm={self.input_norm!r}: expected one of {edata.INPUT_NORMS}")
        if self.steps is not None and self.epochs is not None:
            raise ValueError(f"give steps or epochs, not both (steps={self.steps}, epochs={self.epochs})")
        if (self.steps if self.steps is not None else self.epochs or 1) < 1:
            raise ValueError(f"steps={self.steps!r}, epochs={self.epochs!r}: the budget must be at least 1")
        if self.knn_positives < 0:
            raise ValueError(f"knn_positives={self.knn_positives!r}: must be ≥ 0")
        if self.tau_instance <= 0 or self.tau_cluster <= 0:
            raise ValueError(f"tau_instance={self.tau_instance!r}, tau_cluster={self.tau_cluster!r}: must be > 0")
        return super().validate()


def train_cc(
    samples,
    out_dir: str | os.PathLike | None = None,
    epochs: int | None = None,
    batch_size: int = 32,
    clusters: int = 10,
    feature_dim: int = 128,
    tau_instance: float = 0.5,
    tau_cluster: float = 1.0,
    knn_positives: int = DEFAULT_KNN,
    lr: float = 3e-4,
    weight_decay: float = 0.0,
    image_size: int = DEFAULT_IMAGE_SIZE,
    weights=None,
    device: str | torch.device | None = None,
    num_workers: int | None = None,
    seed: int = 0,
    resume: bool | str | os.PathLike | None = True,
    progress: bool = True,
    steps: int | None = None,
    input_norm: str = edata.DEFAULT_INPUT_NORM,
) -> Path:
    """Trains contrastive clustering and returns the path of its checkpoint (options validated as :class:`CCConfig`).

    Args:
        samples: FiftyOne dataset/view, dataset name, or list of image paths.
        out_dir (None): run directory; None → ``work_dir(dataset_name, "cc")``.
        epochs (None): budget in epochs (a resumed run trains only the missing ones); excludes ``steps``.
        batch_size (32): images per step (seed 003: 32).
        clusters (10): M, the number of clusters of the cluster head.
        feature_dim (128): instance head output.
        tau_instance (0.5): instance NT-Xent temperature.
        tau_cluster (1.0): cluster NT-Xent temperature.
        knn_positives (3): K > 0 → the second view comes from one of the K nearest neighbours (previous epoch's
            encoder features) from epoch 2 on (seed 003: K=3); 0 → two views of the same image.
        lr (3e-4): Adam learning rate.
        weight_decay (0.0): Adam weight decay.
        image_size (224): input side.
        weights (None): encoder initialisation (see :func:`build_encoder`).
        device (None): torch device; None → CUDA when available.
        num_workers (None): DataLoader workers; None → min(4, cpu_count).
        seed (0): seed of initialisation, shuffling and augmentation, reseeded per epoch.
        resume (True): continue from the run directory's newest checkpoint when there is one (True or
            ``"latest"``), from a given checkpoint path, or never (False / None).
        progress (True): show a progress bar.
        steps (None): budget in optimiser steps; None with ``epochs`` None → :data:`DEFAULT_STEPS`.
        input_norm ("db_zscore"): image → model input after augmentation
            (:func:`sardata.embed.data.to_model_input`), recorded in the checkpoint for extraction.

    Writes ``checkpoint.pth`` after every epoch (atomically; see :mod:`sardata.checkpoints`), ``losses.csv`` and
    ``losses.png``.
    """
    from sardata.paths import work_dir
    from sardata.runtime import resolve_device, seed_everything

    if steps is not None and epochs is not None:
        raise ValueError(f"give steps or epochs, not both (steps={steps}, epochs={epochs})")
    if steps is None and epochs is None:
        steps = DEFAULT_STEPS
    source = edata.resolve_samples(samples)
    if len(source.ids) < 2:
        raise ValueError("contrastive clustering needs at least two images")
    if out_dir is None:
        if source.dataset_name is None:
            raise ValueError("out_dir is required when training on bare image paths")
        out_dir = work_dir(source.dataset_name, "cc")
    cfg = CCConfig(out_dir=out_dir, epochs=epochs, steps=steps, input_norm=input_norm, batch_size=batch_size, clusters=clusters, feature_dim=feature_dim,
                   tau_instance=tau_instance, tau_cluster=tau_cluster, knn_positives=knn_positives, lr=lr,
                   weight_decay=weight_decay, image_size=image_size, device=None if device is None else str(device),
                   workers=num_workers, seed=seed, resume=resume_option(resume), progress=progress).validate()
    out_dir = cfg.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    resume_path = cfg.resume_checkpoint()
    device = resolve_device(cfg.device)
    config = {
        "image_size": int(image_size),
        "clusters": int(clusters),
        "feature_dim": int(feature_dim),
        "tau_instance": float(tau_instance),
        "tau_cluster": float(tau_cluster),
        "knn_positives": int(knn_positives),
        "lr": float(lr),
        "batch_size": int(batch_size),
        "seed": int(seed),
        "input_norm": input_norm,
    }

    seed_everything(seed)
    model = ContrastiveClustering(build_encoder(weights), feature_dim, clusters).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    bank = torch.zeros(len(source.ids), ENCODER_DIM)
    history: list[dict] = []
    start_epoch = start_step = 0
    if resume_path is not None:
        state = checkpoints.load_checkpoint(resume_path)  # CPU: the RNG state must stay there
        if state.get("kind") != "cc":
            raise ValueError(f"{resume_path}: not a contrastive-clustering checkpoint; use another out_dir")
        saved = {**state["config"], "input_norm": edata.checkpoint_input_norm(state["config"])}
        diff = {k: (saved.get(k), config[k]) for k in ("image_size", "clusters", "feature_dim", "input_norm")
                if saved.get(k) != config[k]}
        if diff:
            raise ValueError(f"{resume_path}: cannot resume, architecture differs (saved, requested): {diff}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history = list(state["history"])
        start_epoch = int(state["epoch"])
        start_step = int(state.get("step", 0))
        if state["bank"].shape == bank.shape:
            bank = state["bank"].cpu()
        edata.set_rng_state(state["rng"])
    ckpt_path = out_dir / checkpoints.CHECKPOINT_NAME
    picker = _NeighbourPicker(None)
    dataset = edata.SampleImageDataset(
        source.filepaths, image_size, transform=SarAugment(image_size), views=2, pair_index=picker
    )
    drop_last = len(dataset) > batch_size
    per_epoch = max(1, len(dataset) // batch_size if drop_last else 1)
    if steps is not None:
        epochs = start_epoch + -(-max(0, int(steps) - start_step) // per_epoch)
    if start_epoch >= epochs or (steps is not None and start_step >= steps):
        return resume_path
    step = start_step
    for epoch in range(start_epoch + 1, epochs + 1):
        # Neighbours in the feature space of the previous epoch (the bank is complete after one epoch).
        picker.neighbours = nearest_neighbours(bank, knn_positives).numpy() if knn_positives and epoch > 1 else None
        epoch_seed = seed * 100_003 + epoch
        loader = edata.make_loader(
            dataset, batch_size, True, num_workers, device, drop_last=drop_last,
            generator=torch.Generator().manual_seed(epoch_seed),
        )
        torch.manual_seed(epoch_seed)
        started = time.perf_counter()
        max_steps = None if steps is None else steps - step
        stats = _cc_epoch(model, optimizer, loader, bank, config, device, epoch, epochs, progress, max_steps)
        step += int(stats.pop("steps"))
        history.append({"epoch": epoch, "step": step, **stats, "seconds": round(time.perf_counter() - started, 3)})
        edata.write_curves(
            [{k: v for k, v in row.items() if k not in ("seconds", "step")} for row in history], out_dir,
            title="contrastive clustering",
        )
        checkpoints.save_checkpoint(
            out_dir,
            {
                "kind": "cc",
                "config": config,
                "step": step,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "bank": bank,
                "history": history,
                "rng": edata.rng_state(),
            },
            epoch,
            keep_every_epoch=False,
        )
        if steps is not None and step >= steps:
            break
    return ckpt_path


def _cc_epoch(model, optimizer, loader, bank, config, device, epoch: int, epochs: int, progress: bool,
              max_steps: int | None = None) -> dict:
    """One epoch (at most ``max_steps`` steps); updates ``bank`` rows with the first view's encoder features.
    Returns mean losses and ``steps``."""
    from tqdm.auto import tqdm

    model.train()
    totals = {"loss": 0.0, "instance": 0.0, "cluster": 0.0, "entropy": 0.0}
    steps = 0
    for batch in tqdm(loader, desc=f"cc epoch {epoch}/{epochs}", disable=not progress, leave=False):
        if max_steps is not None and steps >= max_steps:
            break
        ok = batch["ok"]
        views = batch["image"][ok]
        if views.shape[0] < 2:  # batch norm and the contrast need two images
            continue
        views = edata.to_model_input(views.to(device, non_blocking=True).flatten(0, 1), config["input_norm"])
        views = views.view(-1, 2, *views.shape[1:])
        h_a, z_a, p_a = model(views[:, 0])
        _, z_b, p_b = model(views[:, 1])
        instance = nt_xent(z_a, z_b, config["tau_instance"])
        entropy = cluster_entropy(p_a) + cluster_entropy(p_b)
        cluster = nt_xent(p_a.T, p_b.T, config["tau_cluster"]) - entropy
        loss = instance + cluster
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite contrastive loss at epoch {epoch}: {loss.item()}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        bank[batch["index"][ok]] = h_a.detach().float().cpu()
        totals["loss"] += loss.item()
        totals["instance"] += instance.item()
        totals["cluster"] += cluster.item()
        totals["entropy"] += entropy.item()
        steps += 1
    if steps == 0:
        warnings.warn(f"cc epoch {epoch}: no batch with at least two readable images", stacklevel=2)
        return {**{k: float("nan") for k in totals}, "steps": 0}
    return {**{k: round(v / steps, 6) for k, v in totals.items()}, "steps": steps}


__all__ = [
    "ContrastiveClustering",
    "build_encoder",
    "cluster_entropy",
    "cluster_loss",
    "model_from_checkpoint",
    "nearest_neighbours",
    "nt_xent",
    "train_cc",
]

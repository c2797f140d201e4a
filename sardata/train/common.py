"""What every sardata trainer shares: pixels → tensors, checkpoints, metric logs and curves, device/AMP, torchrun.

Modelled on torchvision's ``references/detection/utils.py``: checkpoints hold ``model``, ``optimizer``,
``lr_scheduler``, ``args`` and ``epoch`` and are written as ``model_{epoch}.pth`` plus ``checkpoint.pth``; only the
main process writes when running under ``torchrun``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from sardata import checkpoints
from sardata._io import save_figure, write_json, write_text
from sardata.runtime import barrier, cleanup_distributed, init_distributed, is_main_process  # noqa: F401 (trainers')

#: Normalisation for 1-channel SAR amplitude scaled to [0, 1] (see :func:`to_unit_range`) when no statistics are
#: computed from the data. Measured on the synthetic and real SSDD samples: sea clutter sits low (mean ≈ 0.1–0.2)
#: with bright sparse targets, so ImageNet's RGB statistics (mean ≈ 0.45) would shift every pixel negative.
SAR_MEAN = (0.15, 0.15, 0.15)
SAR_STD = (0.15, 0.15, 0.15)
#: ImageNet statistics: only right when the backbone starts from ImageNet weights, which expect them.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# --------------------------------------------------------------------------------------------- pixels


def to_unit_range(arr: np.ndarray) -> np.ndarray:
    """SAR pixels of any dtype → float32 in [0, 1].

    Integer images are divided by their dtype's maximum (8-bit display amplitude, 16-bit DN). Float images (amplitude
    or sigma0 chips) are divided by their 99.5th percentile and clipped, so one bright corner reflector does not
    squash the sea to zero; float images already within [0, 1] are kept as they are.
    """
    if np.iscomplexobj(arr):
        arr = np.abs(arr)
    if np.issubdtype(arr.dtype, np.integer):
        return (arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)).clip(0.0, 1.0)
    arr = np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    low = float(arr.min()) if arr.size else 0.0
    if low >= 0.0 and float(arr.max()) <= 1.0:
        return arr
    arr = arr - min(low, 0.0)
    high = float(np.percentile(arr, 99.5)) or float(arr.max()) or 1.0
    return (arr / high).clip(0.0, 1.0)


def to_chw_tensor(arr: np.ndarray, channels: int = 3) -> torch.Tensor:
    """``(H, W)`` or ``(H, W, C)`` pixels → float ``(channels, H, W)`` tensor in [0, 1].

    Gray SAR is replicated to 3 channels so ImageNet-shaped backbones accept it; multi-band chips (VH, VV) keep
    their first ``channels`` bands, padded by repeating the last band.
    """
    unit = to_unit_range(arr)
    if unit.ndim == 2:
        unit = unit[..., None]
    bands = [unit[..., min(i, unit.shape[-1] - 1)] for i in range(channels)]
    return torch.from_numpy(np.ascontiguousarray(np.stack(bands, axis=0)))


def mean_std_of(images: Iterable[torch.Tensor]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation over ``(C, H, W)`` tensors (streaming, float64 sums)."""
    total = total_sq = None
    count = 0
    for image in images:
        flat = image.reshape(image.shape[0], -1).double()
        s, sq = flat.sum(dim=1), (flat * flat).sum(dim=1)
        total = s if total is None else total + s
        total_sq = sq if total_sq is None else total_sq + sq
        count += flat.shape[1]
    if not count:
        raise ValueError("cannot compute mean/std of an empty set of images")
    mean = total / count
    std = (total_sq / count - mean * mean).clamp_min(1e-12).sqrt()
    return tuple(round(float(m), 6) for m in mean), tuple(round(max(float(s), 1e-3), 6) for s in std)


# --------------------------------------------------------------------------------------------- distributed


# init_distributed, cleanup_distributed, is_main_process, barrier: sardata.runtime's (imported above), the one way.


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if hasattr(model, "module") else model


def train_device(device: str | None, dist_info: dict) -> torch.device:
    """``--device`` or the automatic choice; under torchrun on CUDA, this process's GPU."""
    from sardata.runtime import resolve_device

    resolved = resolve_device(device)
    if dist_info.get("distributed") and resolved.type == "cuda":
        return torch.device("cuda", dist_info["local_rank"])
    return resolved


# --------------------------------------------------------------------------------------------- AMP


def mixed_precision_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype that speeds training up on ``device``, or None where none does (train in fp32).

    float16 on CUDA (with a gradient scaler). bfloat16 on a CPU whose instructions compute it natively (AVX512-BF16
    or AMX): oneDNN then runs the convolutions and matrix products in bf16, about 1.4x faster per detector step on
    this project's 2-core EPYC, with AP inside the seed spread (``benchmarks/precision.py``). On other CPUs bf16 is
    emulated and slower than fp32, so they keep fp32. bf16 keeps fp32's exponent range, so it needs no scaler.
    """
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and any(getattr(torch.cpu, probe, lambda: False)()  # private probes: absent is "no"
                                    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")):
        return torch.bfloat16
    return None


def autocast(device: torch.device, enabled: bool):
    """Mixed precision (:func:`mixed_precision_dtype`) when ``enabled`` and the device has a fast path; else a no-op.

    On the CPU, bf16 comes with :class:`_Fp32NarrowStridedConvs` (a oneDNN bug on one-pixel-wide feature maps)."""
    dtype = mixed_precision_dtype(device) if enabled else None
    if dtype is None:
        return contextlib.nullcontext()
    if device.type == "cpu":
        return _cpu_bf16_autocast(dtype)
    return torch.autocast(device_type=device.type, dtype=dtype)


@contextlib.contextmanager
def _cpu_bf16_autocast(dtype: torch.dtype):
    with torch.autocast(device_type="cpu", dtype=dtype), _Fp32NarrowStridedConvs():
        yield


class _Fp32NarrowStridedConvs(torch.overrides.TorchFunctionMode):
    """Runs in fp32 each strided 2-D convolution whose input is narrower than its kernel.

    With torch 2.14.1 on an AVX512-BF16 CPU, oneDNN's bf16 convolution now and then returns non-finite *weight*
    gradients (from finite inputs and output gradients) for a stride-2 3x3 convolution over a map one pixel wide:
    17/300 random trials at 1x1, 137/300 at 2x1, none at 1x2, 2x2 or wider, none in fp32. RetinaNet's P7 meets it on
    any image of 128 px or less (P6 is 1x1 there), and the NaN then stops training. Such maps are tiny, so fp32 costs
    nothing. Every other op stays under autocast.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.conv2d and _narrow_strided(*args, **kwargs):
            x, weight, *rest = args
            with torch.autocast(device_type="cpu", enabled=False):
                rest = [r.float() if isinstance(r, torch.Tensor) else r for r in rest]
                kwargs = {k: v.float() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
                return func(x.float(), weight.float(), *rest, **kwargs)
        return func(*args, **kwargs)


def _narrow_strided(x, weight, bias=None, stride=1, *_, **__) -> bool:
    strides = (stride, stride) if isinstance(stride, int) else tuple(stride)
    return max(strides) > 1 and x.dim() >= 3 and min(x.shape[-2:]) < max(weight.shape[-2:])


def grad_scaler(device: torch.device, enabled: bool) -> torch.amp.GradScaler | None:
    """A float16 loss scaler on CUDA; None elsewhere (bf16 and fp32 need none)."""
    return torch.amp.GradScaler("cuda") if enabled and device.type == "cuda" else None


# --------------------------------------------------------------------------------------------- checkpoints


def optimizer_step(loss: torch.Tensor, optimizer, scaler: torch.amp.GradScaler | None = None) -> None:
    """Zero the gradients, backpropagate ``loss`` and step, through the AMP ``scaler`` when there is one."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()


def plain(value: Any) -> Any:
    """``args`` for a checkpoint: paths → str, tuples → lists, so ``torch.load(weights_only=True)`` accepts them."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def save_checkpoint(out_dir: str | os.PathLike, epoch: int, model, optimizer=None, lr_scheduler=None, args=None,
                    scaler=None, extra: dict | None = None, keep_every_epoch: bool = True) -> Path | None:
    """Writes the torchvision-style state (``model``, ``optimizer``, ``lr_scheduler``, ``scaler``, ``args``, ``epoch``
    and ``extra``) through :func:`sardata.checkpoints.save_checkpoint`; main process only."""
    if not is_main_process():
        return None
    state = {"model": unwrap(model).state_dict(), "args": plain(args or {})}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if lr_scheduler is not None:
        state["lr_scheduler"] = lr_scheduler.state_dict()
    if scaler is not None:
        state["scaler"] = scaler.state_dict()
    if extra:
        state.update(extra)
    return checkpoints.save_checkpoint(out_dir, state, epoch, keep_every_epoch=keep_every_epoch)



def resolve_weights(spec) -> tuple[Any, Path | None]:
    """``backbone_weights`` → ``(torchvision WeightsEnum or None, file path or None)``.

    Accepts a WeightsEnum, its name (``"ResNet50_Weights.IMAGENET1K_V1"``), or the path of a state dict file of the
    torchvision classification model (``resnet50-0676ba61.pth``). Nothing is downloaded for a file.
    """
    if spec is None or spec == "":
        return None, None
    from torchvision.models import WeightsEnum, get_weight

    if isinstance(spec, WeightsEnum):
        return spec, None
    path = Path(str(spec)).expanduser()
    if path.is_file():
        return None, path
    try:
        return get_weight(str(spec)), None
    except Exception as e:
        raise ValueError(
            f"backbone_weights {spec!r} is neither an existing file nor a torchvision weights name "
            "(e.g. 'ResNet50_Weights.IMAGENET1K_V1')"
        ) from e


def load_weights_file(net: torch.nn.Module, path: str | os.PathLike, ignore: tuple[str, ...] = ()) -> None:
    """Loads a state dict file into ``net`` (also accepts ``{"model": ...}`` / ``{"state_dict": ...}``); keys of
    ``net`` starting with ``ignore`` (a replaced head) may be missing. The error names the file."""
    state = checkpoints.load_checkpoint(path)
    state = state.get("model", state.get("state_dict", state))
    own = net.state_dict()
    state = {k: v for k, v in state.items() if not (k.startswith(ignore) and k in own and own[k].shape != v.shape)}
    missing, _ = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(ignore)]
    if missing:
        raise ValueError(f"{path}: weights do not fit {type(net).__name__} (missing {len(missing)} keys, "
                         f"e.g. {missing[:3]})")


# --------------------------------------------------------------------------------------------- logs


def write_history(history: list[dict], out_dir: str | os.PathLike, name: str = "metrics") -> dict[str, Path]:
    """Per-epoch records → ``<name>.json``, ``<name>.csv`` and ``<name>.png`` (one panel per loss/metric)."""
    out_dir = Path(out_dir)
    paths = {"json": write_json(out_dir / f"{name}.json", history, default=float)}
    keys: list[str] = []
    for record in history:
        keys += [k for k in record if k not in keys]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys)
    writer.writeheader()
    writer.writerows(history)
    paths["csv"] = write_text(out_dir / f"{name}.csv", buffer.getvalue())
    paths["png"] = plot_history(history, out_dir / f"{name}.png")
    return paths


#: History columns that count or time the run: kept in the JSON/CSV, not drawn (an "iters" of 40 beside AP50 0.1
#: flattens every metric curve).
BOOKKEEPING_COLUMNS = frozenset({"epoch", "lr", "time_s", "iters", "step", "seconds"})
#: torchvision's loss-dict keys without "loss" in their name (RetinaNet, SSD, FCOS): they are losses, not metrics.
UNPREFIXED_LOSS_TERMS = frozenset({"classification", "bbox_regression", "bbox_ctrness"})


def history_panels(history: list[dict]) -> tuple[list[str], list[str]]:
    """The numeric columns of ``history`` split into (losses, metrics), bookkeeping columns left out."""
    numeric: list[str] = []
    for record in history:
        numeric += [k for k in record if k not in BOOKKEEPING_COLUMNS and k not in numeric]
    numeric = [k for k in numeric if all(isinstance(r.get(k, 0.0), (int, float)) for r in history)]
    losses = [k for k in numeric if "loss" in k or k in UNPREFIXED_LOSS_TERMS]
    return losses, [k for k in numeric if k not in losses]


def plot_history(history: list[dict], out_path: str | os.PathLike) -> Path:
    """Curves of every numeric column against ``epoch``: losses in one panel, metrics in another."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r.get("epoch", i) for i, r in enumerate(history)]
    losses, metrics = history_panels(history)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)  # a metric evaluated once sits at its epoch
    for ax, keys, title in ((axes[0], losses, "losses"), (axes[1], metrics, "metrics")):
        for key in keys:
            xs = [e for e, r in zip(epochs, history) if key in r]
            ax.plot(xs, [r[key] for r in history if key in r], marker="o", label=key)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        if keys:
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out_path = save_figure(out_path, fig, dpi=100)
    plt.close(fig)
    return out_path

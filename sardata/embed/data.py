"""Images of FiftyOne samples as torch tensors, for GAN/contrastive training and feature extraction.

Samples' ``filepath`` points at the 8-bit display image (the App's image); it is read as grayscale, resized to a
square and scaled to ``[0, 1]``. A file that cannot be read does not stop the run: it is reported with a warning that
names the file and the reason, and comes back as a zero image with ``ok=False`` so callers can drop it.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image


@dataclass
class SampleSource:
    """What the embedding stages need from a sample collection.

    Attributes:
        ids: sample ids (FiftyOne ids, or the file paths when given bare paths).
        filepaths: image file per sample, same order as ``ids``.
        dataset_name: FiftyOne dataset name (for ``work_dir``), or None for bare paths.
        collection: the FiftyOne dataset or view, or None for bare paths.
    """

    ids: list[str]
    filepaths: list[str]
    dataset_name: str | None
    collection: object | None


def resolve_samples(samples_or_dataset) -> SampleSource:
    """Accepts a FiftyOne dataset or view, a dataset name, or a sequence of image paths.

    Raises:
        ValueError: the collection is empty, or the argument is of an unsupported type.
    """
    if isinstance(samples_or_dataset, str):
        import fiftyone as fo

        if not fo.dataset_exists(samples_or_dataset):
            raise ValueError(f"FiftyOne dataset {samples_or_dataset!r} does not exist (see `fo.list_datasets()`)")
        samples_or_dataset = fo.load_dataset(samples_or_dataset)
    if hasattr(samples_or_dataset, "values") and hasattr(samples_or_dataset, "set_values"):
        collection = samples_or_dataset
        ids, paths = collection.values(["id", "filepath"])
        name = getattr(collection, "dataset_name", None) or collection.name
        source = SampleSource(list(ids), list(paths), name, collection)
    elif isinstance(samples_or_dataset, (list, tuple)) and all(
        isinstance(p, (str, os.PathLike)) for p in samples_or_dataset
    ):
        paths = [str(p) for p in samples_or_dataset]
        source = SampleSource(list(paths), paths, None, None)
    else:
        raise ValueError(
            "expected a FiftyOne dataset/view, a dataset name or a list of image paths, "
            f"got {type(samples_or_dataset)!r}"
        )
    if not source.ids:
        raise ValueError("no samples to embed: the collection is empty")
    return source


def load_gray(path: str | os.PathLike, image_size: int, uint8: bool = False) -> torch.Tensor:
    """Reads one image as a ``(1, image_size, image_size)`` float tensor in ``[0, 1]`` (uint8 ``0..255`` if asked).

    8-bit PNG/JPEG are read with Pillow; anything else (float/16-bit TIFF) goes through
    :func:`sardata.sarimage.read_image` and the same dB display remap as the App's images.

    Raises:
        sardata.sarimage.SarReadError: the file cannot be read (the message names the file).
    """
    from sardata import sarimage

    fmt = sarimage.sniff_format(path)
    if fmt in ("png", "jpeg"):
        try:
            with Image.open(path) as im:
                im = im.convert("L")
                im.load()
        except (OSError, ValueError) as e:
            raise sarimage.SarReadError(f"{path}: cannot decode image ({e})") from e
    else:
        im = Image.fromarray(sarimage.display_uint8(sarimage.read_image(path)))
    if im.size != (image_size, image_size):
        im = im.resize((image_size, image_size), Image.BILINEAR)
    if uint8:
        return torch.from_numpy(np.array(im, dtype=np.uint8)).unsqueeze(0)
    return torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).unsqueeze(0)


class SampleImageDataset(torch.utils.data.Dataset):
    """Grayscale images of samples, one item per sample.

    Args:
        filepaths: image files.
        image_size: side of the square the images are resized to.
        transform (None): applied to the ``(1, H, W)`` tensor; called ``views`` times per item.
        views (1): number of transformed views per item (2 for contrastive pairs).
        pair_index (None): callable ``index -> index`` choosing the image of the second view (nearest-neighbour
            positives); None uses the same image.
        uint8 (False): return ``uint8`` images (0..255) instead of floats, 4× less to move between processes and
            to the GPU (extraction converts on the device); only without ``transform``.

    Items are dicts ``{"index": int, "ok": bool, "image": tensor}`` with ``image`` of shape ``(views, 1, H, W)``
    when ``views > 1``.
    """

    def __init__(
        self,
        filepaths: Sequence[str],
        image_size: int,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        views: int = 1,
        pair_index: Callable[[int], int] | None = None,
        uint8: bool = False,
    ):
        if uint8 and transform is not None:
            raise ValueError("uint8 images cannot go through a transform")
        self.uint8 = uint8
        self.filepaths = list(filepaths)
        self.image_size = int(image_size)
        self.transform = transform
        self.views = int(views)
        self.pair_index = pair_index

    def __len__(self) -> int:
        return len(self.filepaths)

    def _load(self, index: int) -> tuple[torch.Tensor, bool]:
        path = self.filepaths[index]
        try:
            return load_gray(path, self.image_size, self.uint8), True
        except Exception as e:  # noqa: BLE001 - any unreadable file is skipped with its reason
            reason = str(e) if str(path) in str(e) else f"{path}: {e}"
            warnings.warn(f"skipping unreadable image {reason}", stacklevel=2)
            dtype = torch.uint8 if self.uint8 else torch.float32
            return torch.zeros(1, self.image_size, self.image_size, dtype=dtype), False

    def __getitem__(self, index: int) -> dict:
        image, ok = self._load(index)
        if self.views == 1:
            out = self.transform(image) if self.transform else image
            return {"index": index, "ok": ok, "image": out}
        views = [self.transform(image) if self.transform else image]
        for _ in range(1, self.views):
            other = image
            if self.pair_index is not None:
                j = self.pair_index(index)
                if j != index:
                    other, ok_j = self._load(j)
                    if not ok_j:
                        other = image
            views.append(self.transform(other) if self.transform else other)
        return {"index": index, "ok": ok, "image": torch.stack(views)}


def make_loader(
    dataset: torch.utils.data.Dataset,
    batch_size: int,
    shuffle: bool,
    num_workers: int | None,
    device: torch.device,
    drop_last: bool = False,
    generator: torch.Generator | None = None,
) -> torch.utils.data.DataLoader:
    """DataLoader with sardata's defaults: ``min(4, cpu_count)`` workers, pinned memory on CUDA."""
    if num_workers is None:
        num_workers = default_num_workers()
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        drop_last=drop_last,
        generator=generator,
        persistent_workers=False,
    )


def default_num_workers() -> int:
    return min(4, os.cpu_count() or 1)


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """``[0, 1]`` float (or ``0..255`` uint8) images to the ``[-1, 1]`` range the models see (the generator's tanh
    range), linearly: the input normalisation ``"none"`` (checkpoints made before input standardisation)."""
    if images.dtype == torch.uint8:
        return images.float().mul_(2.0 / 255.0).sub_(1.0)
    return images * 2.0 - 1.0


#: Input normalisations: ``"db_zscore"`` (default) standardises each image in dB; ``"none"`` is the linear map of
#: :func:`to_model_range` that checkpoints without an ``input_norm`` entry were trained with.
INPUT_NORMS = ("db_zscore", "none")
DEFAULT_INPUT_NORM = "db_zscore"
#: ``db_zscore`` clips at ± this many standard deviations, then divides by it, so images land in ``[-1, 1]``.
ZSCORE_CLIP = 3.0


def standardize_db(images: torch.Tensor, clip: float = ZSCORE_CLIP) -> torch.Tensor:
    """Per-image input standardisation: each image to zero mean and unit std in dB, clipped, in ``[-1, 1]``.

    ``images`` is a ``(B, C, H, W)`` batch of 8-bit display amplitudes (uint8 ``0..255``, or floats in ``[0, 1]``).
    ``dB = 20·log10(a + 1)`` (the ``+ 1`` keeps black pixels finite; the factor does not matter after the z-score),
    then ``z = (dB − mean) / std`` over each image's pixels, clipped to ``±clip`` and divided by ``clip``.

    Why: SAR images differ in overall level (calibration, incidence angle, sea state) as much as inshore differs from
    offshore, and a model that sees absolute brightness lets k-means split on it. A constant image maps to 0.
    """
    x = images.float()
    if images.dtype != torch.uint8:
        x = x * 255.0
    db = 20.0 * torch.log10(x.clamp_min(0.0) + 1.0)
    mean = db.mean(dim=(-3, -2, -1), keepdim=True)
    std = db.std(dim=(-3, -2, -1), keepdim=True, unbiased=False)
    z = torch.where(std > 1e-4, (db - mean) / std.clamp_min(1e-4), torch.zeros_like(db))
    return z.clamp_(-clip, clip).div_(clip)


def to_model_input(images: torch.Tensor, input_norm: str = DEFAULT_INPUT_NORM) -> torch.Tensor:
    """The one image → model-input map, shared by GAN training, batch-norm recalibration, contrastive training
    and extraction (``input_norm`` is recorded in every checkpoint's config)."""
    if input_norm == "db_zscore":
        return standardize_db(images)
    if input_norm == "none":
        return to_model_range(images)
    raise ValueError(f"unknown input_norm {input_norm!r}; expected one of {INPUT_NORMS}")


def checkpoint_input_norm(config: dict) -> str:
    """The input normalisation a checkpoint was trained with (``"none"`` for checkpoints older than the key)."""
    norm = config.get("input_norm", "none")
    if norm not in INPUT_NORMS:
        raise ValueError(f"checkpoint config has unknown input_norm {norm!r}; expected one of {INPUT_NORMS}")
    return norm


# ------------------------------------------------------------------------------------------ training-run files
# Shared by the GAN and contrastive trainers: RNG state, loss curves (CSV + PNG), sample grids (checkpoints:
# sardata.checkpoints).


def rng_state() -> dict:
    """Python, numpy and torch RNG states, in types that ``torch.load(weights_only=True)`` accepts."""
    import random

    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    return {
        "python": [version, list(internal), gauss],
        "numpy": {**{k: v for k, v in np_state.items() if k != "state"}, "key": torch.from_numpy(
            np_state["state"]["key"].astype(np.int64)), "pos": int(np_state["state"]["pos"])},
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict) -> None:
    import random

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    saved = dict(state["numpy"])
    key, pos = saved.pop("key"), saved.pop("pos")
    np.random.set_state({**saved, "state": {"key": key.numpy().astype(np.uint32), "pos": pos}})
    torch.set_rng_state(state["torch"])


def write_curves(history: list[dict], out_dir: str | os.PathLike, stem: str = "losses", title: str = "") -> None:
    """Writes the per-epoch history as ``<stem>.csv`` and a ``<stem>.png`` line plot (one line per column)."""
    import csv
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sardata._io import save_figure, write_text

    out_dir = Path(out_dir)
    if not history:
        return
    columns = list(history[0].keys())
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(history)
    write_text(out_dir / f"{stem}.csv", buf.getvalue())

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    epochs = [row["epoch"] for row in history]
    for col in columns:
        if col != "epoch":
            ax.plot(epochs, [row[col] for row in history], marker="o", label=col)
    ax.set_xlabel("epoch")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(out_dir / f"{stem}.png", fig, dpi=100)
    plt.close(fig)


def write_grid(images: torch.Tensor, path: str | os.PathLike, nrow: int = 8) -> Path:
    """Saves a ``(B, 1, H, W)`` batch in ``[-1, 1]`` as one PNG grid (atomic)."""
    from torchvision.utils import make_grid

    from sardata.sarimage import write_png_atomic

    grid = make_grid(images.detach().cpu().float(), nrow=nrow, normalize=True, value_range=(-1, 1), pad_value=1.0)
    return write_png_atomic((grid[0].numpy() * 255.0 + 0.5).astype(np.uint8), path)

"""ImageFolder export for classification: ``<split>/<class>/<file>``, read by ``torchvision.datasets.ImageFolder``.

Images are the 8-bit display files (``image_source="display"``) or the original SAR values, lossless
(``image_source="original"``): a float TIFF (the original file copied when it is a TIFF, else its pixels written with
tifffile) or a ``.npy`` array (``original_format="npy"``; use ``DatasetFolder(root, loader=np.load,
extensions=(".npy",))``). Class directory names are the labels with path separators replaced; the manifest's
``class_dirs`` maps them back.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

from exporters._common import ExportPlan, UniqueNames, label_kind, link_replicas, place_replicas
from exporters.contract import SampleIds

ORIGINAL_FORMATS = ("tiff", "npy")


def class_dir(label: str) -> str:
    """A safe directory name for a class (``A320/321`` → ``A320_321``)."""
    return re.sub(r"[\\/:\0]+", "_", str(label)).strip() or "_"


def write(plan: ExportPlan, root: Path, final_dir: Path | None = None, original_format: str = "tiff", **_) -> dict:
    """Writes ``<split>/<class>/<file>`` under ``root``.

    Returns ``{"class_dirs": {dir: label}, "sample_ids": {relative path of every file, replicas included: sample
    id}}`` for the manifest, so trainers can put per-image results (e.g. Grad-CAM heatmaps) back on the FiftyOne
    samples.
    """
    from sardata import sarimage

    if original_format not in ORIGINAL_FORMATS:
        raise ValueError(f"original_format {original_format!r}; expected one of {ORIGINAL_FORMATS}")
    dirs: dict[str, str] = {}
    ids = SampleIds(root)
    names = UniqueNames()
    skipped = 0
    for item in tqdm(plan.items, desc="imagefolder export", unit="img", disable=None):
        label = item.label
        if label is not None and label_kind(label) != "Classification":
            raise ValueError(
                f"ImageFolder export needs a Classification in {plan.label_field!r}; sample {item.sample_id} has "
                f"{label_kind(label)} (use coco/yolo for detection, masks for segmentation)"
            )
        if label is None or label.label is None:
            skipped += 1
            continue
        folder = class_dir(label.label)
        if dirs.setdefault(folder, label.label) != label.label:
            raise ValueError(f"labels {dirs[folder]!r} and {label.label!r} map to the same directory {folder!r}")
        out = root / item.split / folder
        src = Path(item.image_path)
        stem = names.stem(str(out), src.stem)
        if plan.image_source == "display":
            files = place_replicas(src, out, stem, src.suffix.lower(), item.count)
        elif original_format == "tiff" and sarimage.sniff_format(src) == "tiff":
            files = place_replicas(src, out, stem, ".tif", item.count)
        else:
            files = _write_array(sarimage.read_image(src), out, stem, original_format, item.count)
        ids.add_files(out, files, item.sample_id)
    if skipped:
        warnings.warn(f"{skipped} samples without a class label were left out of the ImageFolder export")
    return {"class_dirs": dict(sorted(dirs.items())), "skipped_unlabelled": skipped, "sample_ids": ids.to_dict()}


def _write_array(array: np.ndarray, out: Path, stem: str, fmt: str, count: int) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "npy":
        first = out / f"{stem}.npy"
        np.save(first, array)
    else:
        import tifffile

        first = out / f"{stem}.tif"
        tifffile.imwrite(first, array)
    return link_replicas(first, count)

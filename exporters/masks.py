"""Segmentation export: ``<split>/images/<stem>.png`` (the SAR image), ``<split>/optical/<stem>.<ext>`` (when the
sample has ``optical_path``), ``<split>/masks/<stem>.png`` (raw label values, uint8) and ``class_map.json``
(``{"0": "background", "10": "farmland", ...}`` from the dataset's mask targets). sardata's segmentation trainer
reads exactly this layout. The manifest's ``sample_ids`` name the sample of every image, optical and mask file, so
predicted masks (named by the mask stem) go back to their samples (:mod:`sardata.predictions`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from exporters._common import ExportPlan, UniqueNames, label_kind, link_replicas, place_replicas
from exporters.contract import SampleIds

EXTRA_FIELDS = ("optical_path",)


def write(plan: ExportPlan, root: Path, final_dir: Path | None = None, **_) -> dict:
    """Writes the image/optical/mask triplets of ``plan`` under ``root`` and ``class_map.json``; returns the class
    map, the mask values and the sample ids for the manifest."""
    from sardata import sarimage

    names = UniqueNames()
    seen_values: set = set()
    ids = SampleIds(root)
    for item in tqdm(plan.items, desc="masks export", unit="img", disable=None):
        label = item.label
        if label_kind(label) != "Segmentation":
            raise ValueError(
                f"masks export needs a Segmentation in {plan.label_field!r}; sample {item.sample_id} has "
                f"{label_kind(label)}"
            )
        mask = _mask_array(label, item.sample_id)
        seen_values.update(np.unique(mask).tolist())
        split_dir = root / item.split
        src = Path(item.image_path)
        stem = names.stem(item.split, src.stem)
        if plan.image_source == "display" and src.suffix.lower() == ".png" and sarimage.is_displayable(src):
            files = place_replicas(src, split_dir / "images", stem, ".png", item.count)
        elif plan.image_source == "display":
            files = _write_png_replicas(sarimage.display_uint8(sarimage.read_image(src)), split_dir / "images", stem,
                                        item.count)
        else:  # original SAR values, lossless: keep the file (float TIFF) as it is
            files = place_replicas(src, split_dir / "images", stem, src.suffix.lower(), item.count)
        ids.add_files(split_dir / "images", files, item.sample_id)
        optical = item.extra.get("optical_path")
        if optical:
            files = place_replicas(optical, split_dir / "optical", stem, Path(optical).suffix.lower(), item.count)
            ids.add_files(split_dir / "optical", files, item.sample_id)
        ids.add_files(split_dir / "masks", _write_png_replicas(mask, split_dir / "masks", stem, item.count),
                      item.sample_id)
    class_map = dict(plan.mask_targets) or {str(v): f"class_{v}" for v in sorted(seen_values)}
    class_map = dict(sorted(class_map.items(), key=lambda kv: int(kv[0]) if str(kv[0]).isdigit() else 0))
    with open(root / "class_map.json", "w") as f:
        json.dump(class_map, f, indent=1)
    return {"class_map": class_map, "mask_values": sorted(int(v) for v in seen_values), "sample_ids": ids.to_dict()}


def _mask_array(label, sample_id: str) -> np.ndarray:
    from sardata import sarimage

    if label.mask is not None:
        mask = np.asarray(label.mask)
    elif label.mask_path:
        mask = sarimage.read_image(label.mask_path)
    else:
        raise ValueError(f"sample {sample_id}: Segmentation has neither mask nor mask_path")
    if mask.ndim == 3:
        mask = mask[..., 0]
    if mask.dtype != np.uint8:
        if mask.min() < 0 or mask.max() > 255:
            raise ValueError(f"sample {sample_id}: mask values {mask.min()}..{mask.max()} do not fit uint8")
        mask = mask.astype(np.uint8)
    return mask


def _write_png_replicas(array: np.ndarray, out: Path, stem: str, count: int) -> list[str]:
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    first = out / f"{stem}.png"
    Image.fromarray(array).save(first, format="PNG")
    return link_replicas(first, count)

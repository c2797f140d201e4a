"""Hugging Face ``datasets`` export: a ``DatasetDict`` (one ``Dataset`` per split) written with ``save_to_disk``.

Columns: ``image`` (``Image`` feature, bytes embedded so the export is self-contained), ``sample_id``, ``replica``,
``split``, metadata (``source``, ``scene``, ``mmsi``, ``tile_id`` when present), and the labels: ``label``
(``ClassLabel``) for classification, ``objects`` (``bbox`` absolute xywh + ``category`` ``ClassLabel``) for detection,
``mask`` (``Image``) for segmentation. Replicas are repeated rows (Arrow has no hardlinks). Read back with
``datasets.load_from_disk(out_dir)``.
"""

from __future__ import annotations

import os
from pathlib import Path

from tqdm import tqdm

from exporters._common import ExportPlan, label_kind
from exporters.contract import SampleIds

EXTRA_FIELDS = ("source", "scene", "mmsi", "tile_id")
NEEDS_SIZE = True


def _meta(value):
    label = getattr(value, "label", None)
    return label if label is not None else (None if value is None else value)


def write(plan: ExportPlan, root: Path, final_dir: Path | None = None, **_) -> dict:
    """Builds the DatasetDict of ``plan`` and saves it under ``root``; returns the class names."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import datasets as hfd

    kinds = {label_kind(it.label) for it in plan.items if it.label is not None}
    if len(kinds) > 1:
        raise ValueError(f"mixed label types in {plan.label_field!r}: {sorted(kinds)}")
    kind = kinds.pop() if kinds else None
    classes = plan.classes()
    class_ids = {c: i for i, c in enumerate(classes)}
    meta_cols = [f for f in EXTRA_FIELDS if any(it.extra.get(f) is not None for it in plan.items)]
    features = {"image": hfd.Image(), "sample_id": hfd.Value("string"), "replica": hfd.Value("int32"),
                "split": hfd.Value("string")}
    for f in meta_cols:
        features[f] = hfd.Value("int64") if f == "mmsi" else hfd.Value("string")
    if kind == "Classification":
        features["label"] = hfd.ClassLabel(names=classes)
    elif kind == "Detections":
        features["objects"] = hfd.Sequence({"bbox": hfd.Sequence(hfd.Value("float32"), length=4),
                                            "category": hfd.ClassLabel(names=classes)})
    elif kind == "Segmentation":
        features["mask"] = hfd.Image()
    elif kind is not None:
        raise ValueError(f"HF export supports Classification, Detections, Segmentation; got {kind}")
    features = hfd.Features(features)
    rows: dict[str, dict[str, list]] = {}
    ids = SampleIds(root)
    for item in tqdm(plan.items, desc="hf export", unit="img", disable=None):
        with open(item.image_path, "rb") as f:
            image = {"bytes": f.read(), "path": Path(item.image_path).name}
        row = {"image": image, "sample_id": item.sample_id, "split": item.split}
        for f in meta_cols:
            value = _meta(item.extra.get(f))
            row[f] = int(value) if f == "mmsi" and value is not None else (None if value is None else str(value))
        if kind == "Classification":
            row["label"] = class_ids[item.label.label] if item.label is not None and item.label.label else None
        elif kind == "Detections":
            dets = [d for d in (item.label.detections if item.label is not None else []) if d.label]
            w, h = item.width, item.height
            row["objects"] = {
                "bbox": [[d.bounding_box[0] * w, d.bounding_box[1] * h, d.bounding_box[2] * w, d.bounding_box[3] * h]
                         for d in dets],
                "category": [class_ids[d.label] for d in dets],
            }
        elif kind == "Segmentation":
            row["mask"] = _mask_image(item)
        columns = rows.setdefault(item.split, {k: [] for k in features})
        for replica in range(item.count):
            ids.add_row(item.split, len(columns["sample_id"]), item.sample_id)
            for key in features:
                columns[key].append(replica if key == "replica" else row.get(key))
    dd = hfd.DatasetDict({split: hfd.Dataset.from_dict(cols, features=features) for split, cols in sorted(rows.items())})
    dd.save_to_disk(str(root))
    return {"names": classes, "columns": list(features), "sample_ids": ids.to_dict()}


def _mask_image(item) -> dict:
    import io

    import numpy as np
    from PIL import Image

    from exporters.masks import _mask_array

    buf = io.BytesIO()
    Image.fromarray(_mask_array(item.label, item.sample_id).astype(np.uint8)).save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": f"{item.sample_id}_mask.png"}

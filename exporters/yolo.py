"""Ultralytics YOLO export: ``images/<split>/``, ``labels/<split>/<stem>.txt``, ``data.yaml``.

Detection lines are ``class cx cy w h`` normalised to [0, 1]; with ``obb=True`` (``--format yolo-obb``) they are
``class x1 y1 x2 y2 x3 y3 x4 y4`` normalised, taken from the sample's ``rboxes`` polylines (SSDD RBox) or, when a
sample has none, from the four corners of its axis-aligned boxes. ``data.yaml`` holds ``path`` (the final export
directory), ``train``/``val``/``test`` and ``names``; Ultralytics requires ``val``, so a view without a val split
points ``val`` at the test images (or the train images when there is no test split either).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from tqdm import tqdm

from exporters._common import ExportPlan, UniqueNames, label_kind, link_replicas, place_replicas
from exporters.contract import SampleIds

EXTRA_FIELDS = ("rboxes",)


def write(plan: ExportPlan, root: Path, final_dir: Path | None = None, obb: bool = False, **_) -> dict:
    """Writes the YOLO files of ``plan`` under ``root``; ``final_dir`` is the ``path`` written in ``data.yaml``."""
    classes = plan.classes()
    if obb:
        for item in plan.items:
            classes = sorted(set(classes) | {p.label for p in _rbox_polylines(item) if p.label})
    class_ids = {name: i for i, name in enumerate(classes)}
    names = UniqueNames()
    ids = SampleIds(root)
    for item in tqdm(plan.items, desc="yolo export", unit="img", disable=None):
        if item.label is not None and label_kind(item.label) != "Detections":
            raise ValueError(
                f"YOLO export needs Detections in {plan.label_field!r}; sample {item.sample_id} has "
                f"{label_kind(item.label)}"
            )
        src = Path(item.image_path)
        stem = names.stem(item.split, src.stem)
        files = place_replicas(src, root / "images" / item.split, stem, src.suffix.lower(), item.count)
        ids.add_files(root / "images" / item.split, files, item.sample_id)
        lines = _obb_lines(item, class_ids) if obb else _box_lines(item, class_ids)
        label_dir = root / "labels" / item.split
        label_dir.mkdir(parents=True, exist_ok=True)
        first = label_dir / f"{Path(files[0]).stem}.txt"
        first.write_text("".join(line + "\n" for line in lines))
        ids.add_files(label_dir, link_replicas(first, item.count), item.sample_id)
    splits = plan.splits
    data = {"path": str(final_dir or root), "train": "images/train" if "train" in splits else f"images/{splits[0]}"}
    data["val"] = next((f"images/{s}" for s in ("val", "test") if s in splits), data["train"])
    if "test" in splits:
        data["test"] = "images/test"
    for split in splits:  # splits with other names (e.g. "all") stay reachable
        if split not in ("train", "val", "test"):
            data[split] = f"images/{split}"
    data["names"] = dict(enumerate(classes))
    if obb:
        data["task"] = "obb"
    with open(root / "data.yaml", "w") as f:
        yaml.safe_dump(data, f, sort_keys=False)
    return {"names": classes, "task": "obb" if obb else "detect", "sample_ids": ids.to_dict()}


def _clip(v: float) -> float:
    return min(1.0, max(0.0, float(v)))


def _box_lines(item, class_ids: dict) -> list[str]:
    lines = []
    for det in getattr(item.label, "detections", None) or []:
        if det.label is None or det.bounding_box is None:
            continue
        x, y, w, h = det.bounding_box
        cx, cy = _clip(x + w / 2), _clip(y + h / 2)
        lines.append(f"{class_ids[det.label]} {cx:.6f} {cy:.6f} {_clip(w):.6f} {_clip(h):.6f}")
    return lines


def _rbox_polylines(item) -> list:
    label = item.extra.get("rboxes")
    return [p for p in getattr(label, "polylines", None) or [] if p.points and len(p.points[0]) >= 4]


def _obb_lines(item, class_ids: dict) -> list[str]:
    polylines = _rbox_polylines(item)
    lines = []
    if polylines:
        for poly in polylines:
            label = poly.label or _only_label(item)
            if label is None:
                continue
            corners = poly.points[0][:4]
            lines.append(f"{class_ids[label]} " + " ".join(f"{_clip(v):.6f}" for p in corners for v in p))
        return lines
    for det in getattr(item.label, "detections", None) or []:
        if det.label is None or det.bounding_box is None:
            continue
        x, y, w, h = det.bounding_box
        corners = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
        lines.append(f"{class_ids[det.label]} " + " ".join(f"{_clip(v):.6f}" for p in corners for v in p))
    return lines


def _only_label(item):
    """The class of an unlabelled rotated box: the image's class when it has one (SSDD: every object is a ship)."""
    labels = {d.label for d in getattr(item.label, "detections", None) or []}
    return labels.pop() if len(labels) == 1 else None

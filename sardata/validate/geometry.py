"""Label geometry: degenerate, tiny, clipped, out-of-image and duplicate boxes; rotated boxes whose corners disagree
with their centre form; polygons that do not match their box.

Works on a :class:`fiftyone.Detections` field (relative ``[x, y, w, h]`` boxes). Pixel sizes come from
``metadata.width/height``. Readings chosen:

- *tiny* means the shorter side is below ``min_box_px`` pixels (default 4: half the stride of an FPN's stride-8
  level, below which a box spans less than one cell of the finest level most detectors have);
- *duplicate* means two boxes of the same class in one image with IoU ≥ ``duplicate_iou`` (default 0.9);
- a rotated box (SSDD ``rboxes``: polyline corners + ``cx, cy, w, h, theta`` attributes, ``theta`` in degrees with
  ``w`` along it, as Official-SSDD writes them — checked on the real samples, which agree to ~1 px) disagrees when a
  corner lies more than ``corner_tolerance_px`` (default 3 px: the file's corners are integer pixels) from the corners
  of its centre form;
- a polygon (SSDD ``polygons``) does not match when its extent has IoU < ``polygon_iou`` (default 0.5) with every
  box of the image.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from sardata.validate.findings import Finding

MIN_BOX_PX = 4.0
DUPLICATE_IOU = 0.9
CORNER_TOLERANCE_PX = 3.0
POLYGON_IOU = 0.5
_EPS = 1e-6


def check_detections(samples, label_field: str, min_box_px: float = MIN_BOX_PX,
                     duplicate_iou: float = DUPLICATE_IOU) -> list[Finding]:
    """Box findings of a :class:`fiftyone.Detections` field: degenerate, out-of-image, tiny, clipped, duplicate."""
    ids, widths, heights, det_ids, boxes, labels, clipped = samples.values([
        "id", "metadata.width", "metadata.height", f"{label_field}.detections.id",
        f"{label_field}.detections.bounding_box", f"{label_field}.detections.label",
        f"{label_field}.detections.clipped",
    ])
    found: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
    examples: dict[str, list] = defaultdict(list)

    def add(kind, sample_id, label_id, example):
        sample_ids, label_ids = found[kind]
        sample_ids.append(sample_id)
        label_ids.append(label_id)
        if len(examples[kind]) < 5:
            examples[kind].append(example)

    for sid, width, height, dids, bbs, labs, clips in zip(ids, widths, heights, det_ids, boxes, labels, clipped):
        if not dids:
            continue
        clips = clips or [None] * len(dids)
        rows = []
        for did, bb, label, clip in zip(dids, bbs, labs, clips):
            x, y, w, h = (float(v) for v in bb)
            if not np.all(np.isfinite([x, y, w, h])) or w <= 0 or h <= 0:
                add("degenerate_box", sid, did, {"sample_id": sid, "box": [x, y, w, h]})
                continue
            if x < -_EPS or y < -_EPS or x + w > 1 + _EPS or y + h > 1 + _EPS:
                add("box_outside_image", sid, did, {"sample_id": sid, "box": [x, y, w, h]})
            if width and height and min(w * width, h * height) < min_box_px:
                add("tiny_box", sid, did, {"sample_id": sid, "size_px": [round(w * width, 1), round(h * height, 1)]})
            if clip:
                add("clipped_box", sid, did, {"sample_id": sid, "box": [x, y, w, h]})
            rows.append((did, label, x, y, x + w, y + h))
        for (i, a), (j, b) in _iou_pairs(rows, duplicate_iou):
            add("duplicate_box", sid, b[0], {"sample_id": sid, "labels": [a[0], b[0]], "class": a[1]})

    messages = {
        "degenerate_box": ("error", "boxes with zero or negative width/height or non-finite coordinates"),
        "box_outside_image": ("error", "boxes reaching outside the image"),
        "tiny_box": ("warning", f"boxes whose shorter side is below {min_box_px:g} px (finer than the detector's "
                                "finest stride can see)"),
        "clipped_box": ("info", "boxes that reached past the image edge and were clipped at ingest"),
        "duplicate_box": ("warning", f"duplicate boxes (same class, IoU ≥ {duplicate_iou:g} within an image)"),
    }
    findings = []
    for kind, (severity, text) in messages.items():
        if kind in found:
            sample_ids, label_ids = found[kind]
            findings.append(Finding(kind, severity, f"{len(label_ids)} {text}", sample_ids, label_ids, label_field,
                                    {"examples": examples[kind]}))
    return findings


def _iou_pairs(rows, threshold: float):
    """Pairs of rows ``(id, label, x0, y0, x1, y1)`` with the same label and IoU ≥ ``threshold``."""
    out = []
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            a, b = rows[i], rows[j]
            if a[1] == b[1] and box_iou(a[2:], b[2:]) >= threshold:
                out.append(((i, a), (j, b)))
    return out


def box_iou(a, b) -> float:
    """IoU of two ``(x0, y0, x1, y1)`` boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def rbox_corners(cx: float, cy: float, w: float, h: float, theta_deg: float) -> np.ndarray:
    """The four corners (pixels) of a rotated box in the SSDD convention (``theta`` degrees, ``w`` along it)."""
    th = np.deg2rad(theta_deg)
    u, v = np.array([np.cos(th), np.sin(th)]), np.array([-np.sin(th), np.cos(th)])
    c = np.array([cx, cy])
    return np.array([c + a * w / 2 * u + b * h / 2 * v for a, b in ((1, 1), (1, -1), (-1, -1), (-1, 1))])


def check_rboxes(samples, field: str = "rboxes", tolerance_px: float = CORNER_TOLERANCE_PX) -> list[Finding]:
    """Rotated boxes (closed 4-corner polylines with ``cx, cy, w, h, theta``) whose corners disagree with the centre
    form by more than ``tolerance_px``."""
    keys = ("cx", "cy", "w", "h", "theta")
    # plain values, not Polyline objects: deserialising documents costs ~20× more on a 1160-image set
    ids, widths, heights, line_ids, points, *attrs = samples.values(
        ["id", "metadata.width", "metadata.height", f"{field}.polylines.id", f"{field}.polylines.points"]
        + [f"{field}.polylines.{k}" for k in keys])
    sample_ids, label_ids, examples = [], [], []
    for row, (sid, width, height, lids, pts_list) in enumerate(zip(ids, widths, heights, line_ids, points)):
        for j, (lid, parts) in enumerate(zip(lids or [], pts_list or [])):
            centre = [a[row][j] if a[row] else None for a in attrs]
            if None in centre or not width or not parts or len(parts[0]) != 4:
                continue
            # the loader maps integer corner indices to pixel centres (+0.5); undo that to compare with cx, cy
            pts = np.array(parts[0], dtype=float) * [width, height] - 0.5
            expected = rbox_corners(*(float(a) for a in centre))
            error = float(np.sqrt(((expected[:, None] - pts[None]) ** 2).sum(-1)).min(1).max())
            if error > tolerance_px:
                sample_ids.append(sid)
                label_ids.append(lid)
                if len(examples) < 5:
                    examples.append({"sample_id": sid, "corner_error_px": round(error, 2)})
    if not label_ids:
        return []
    return [Finding("rbox_corner_mismatch", "warning",
                    f"{len(label_ids)} rotated boxes whose corners are more than {tolerance_px:g} px from their "
                    "centre form (cx, cy, w, h, theta)", sample_ids, label_ids, field, {"examples": examples})]


def check_polygons(samples, field: str = "polygons", box_field: str = "ground_truth",
                   min_iou: float = POLYGON_IOU) -> list[Finding]:
    """Polygons whose extent matches no box of their image (IoU < ``min_iou`` with every box)."""
    ids, line_ids, points, boxes = samples.values(
        ["id", f"{field}.polylines.id", f"{field}.polylines.points", f"{box_field}.detections.bounding_box"])
    sample_ids, label_ids, examples = [], [], []
    for sid, lids, pts_list, bbs in zip(ids, line_ids, points, boxes):
        rects = [(x, y, x + w, y + h) for x, y, w, h in (bbs or [])]
        for lid, parts in zip(lids or [], pts_list or []):
            pts = np.array([p for part in parts for p in part], dtype=float)
            if len(pts) < 3:
                continue
            extent = (pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max())
            best = max((box_iou(extent, r) for r in rects), default=0.0)
            if best < min_iou:
                sample_ids.append(sid)
                label_ids.append(lid)
                if len(examples) < 5:
                    examples.append({"sample_id": sid, "best_iou": round(best, 3)})
    if not label_ids:
        return []
    return [Finding("polygon_box_mismatch", "warning",
                    f"{len(label_ids)} polygons whose extent matches no box of their image (IoU < {min_iou:g})",
                    sample_ids, label_ids, field, {"examples": examples})]

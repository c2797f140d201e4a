"""COCO detection export: ``annotations/<split>.json`` + ``images/<split>/<file>``, one JSON per split.

Boxes are absolute ``[x, y, w, h]``; categories are 1-based in sorted class order (the same ids in every split).
Where the sample has ``polygons`` (SSDD PSeg) the polygon that best overlaps a box becomes its ``segmentation``;
where it has ``rboxes`` (SSDD RBox) the matching rotated box is kept as ``"rbox": [cx, cy, w, h, theta]``. Every image
entry carries ``sample_id`` (the FiftyOne id) and ``replica`` (0..k-1), as the manifest's ``sample_ids`` do for
every image file, so predictions map back to FiftyOne.
FiftyOne's own ``fiftyone.utils.coco.COCODetectionDatasetImporter`` and ``pycocotools.coco.COCO`` read the result.
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from exporters._common import ExportPlan, UniqueNames, label_kind, place_replicas, write_json
from exporters.contract import SampleIds

EXTRA_FIELDS = ("polygons", "rboxes")
NEEDS_SIZE = True
#: A polygon/rotated box belongs to a detection when the IoU of their axis-aligned boxes reaches this.
MATCH_IOU = 0.3


def write(plan: ExportPlan, root: Path, final_dir: Path | None = None, **_) -> dict:
    """Writes the COCO files of ``plan`` under ``root``; returns the categories and sample ids for the manifest."""
    classes = plan.classes()
    category_ids = {name: i + 1 for i, name in enumerate(classes)}
    categories = [{"id": i, "name": name, "supercategory": "none"} for name, i in category_ids.items()]
    per_split: dict[str, dict] = {}
    names = UniqueNames()
    ids = SampleIds(root)
    for item in tqdm(plan.items, desc="coco export", unit="img", disable=None):
        if item.label is not None and label_kind(item.label) != "Detections":
            raise ValueError(
                f"COCO export needs Detections in {plan.label_field!r}; sample {item.sample_id} has "
                f"{label_kind(item.label)} (use --format imagefolder/hf for classification, masks for segmentation)"
            )
        coco = per_split.setdefault(item.split, {"images": [], "annotations": []})
        src = Path(item.image_path)
        stem = names.stem(item.split, src.stem)
        files = place_replicas(src, root / "images" / item.split, stem, src.suffix.lower(), item.count)
        ids.add_files(root / "images" / item.split, files, item.sample_id)
        objects = _objects(item, category_ids)
        for replica, file_name in enumerate(files):
            image_id = len(coco["images"]) + 1
            coco["images"].append(
                {"id": image_id, "file_name": file_name, "width": item.width, "height": item.height,
                 "sample_id": item.sample_id, "replica": replica}
            )
            for obj in objects:
                coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": image_id, **obj})
    for split, coco in per_split.items():
        write_json(
            root / "annotations" / f"{split}.json",
            {"info": {"description": f"sardata export of {plan.dataset_name}", "sardata_split": split},
             "licenses": [], "categories": categories, **coco},
        )
    return {"categories": categories, "sample_ids": ids.to_dict()}


def _objects(item, category_ids: dict) -> list[dict]:
    """COCO annotation bodies (without ids) of one sample's detections."""
    if item.label is None:
        return []
    w, h = item.width, item.height
    polygons = _polylines(item.extra.get("polygons"))
    rboxes = _polylines(item.extra.get("rboxes"))
    out = []
    for det in item.label.detections:
        if det.label is None or det.bounding_box is None:
            continue
        x, y, bw, bh = det.bounding_box
        box = [x * w, y * h, bw * w, bh * h]
        obj = {"category_id": category_ids[det.label], "bbox": [round(v, 3) for v in box],
               "area": round(box[2] * box[3], 3), "iscrowd": 0, "segmentation": []}
        poly = _best_match(det.bounding_box, polygons)
        if poly is not None:
            obj["segmentation"] = [[round(v, 3) for p in poly.points[0] for v in (p[0] * w, p[1] * h)]]
        rbox = _rbox(det, _best_match(det.bounding_box, rboxes))
        if rbox is not None:
            obj["rbox"] = rbox
        for key in ("confidence", "iscrowd"):
            if det.has_field(key) and det[key] is not None:
                obj[key] = det[key]
        out.append(obj)
    return out


def _polylines(label) -> list:
    return [p for p in getattr(label, "polylines", None) or [] if p.points and len(p.points[0]) >= 3]


def _bbox_of(points) -> list[float]:
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]


def _iou(a, b) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _best_match(box, polylines):
    best, best_iou = None, MATCH_IOU
    for poly in polylines:
        iou = _iou(box, _bbox_of(poly.points[0]))
        if iou >= best_iou:
            best, best_iou = poly, iou
    return best


def _rbox(det, poly) -> list[float] | None:
    """``[cx, cy, w, h, theta]`` from a detection's own ``rbox`` attribute or the matching RBox polyline."""
    if det.has_field("rbox") and det["rbox"] is not None:
        return [float(v) for v in det["rbox"]]
    if poly is None:
        return None
    try:
        return [float(poly[k]) for k in ("cx", "cy", "w", "h", "theta")]
    except (KeyError, TypeError, AttributeError):
        return None

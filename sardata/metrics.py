"""The one COCO detection evaluation and the one confusion-matrix plot of sardata.

Detection metrics are pycocotools' ``COCOeval`` (``bbox``), the numbers papers report: ``mAP`` is AP averaged over
IoU 0.50:0.05:0.95, ``AP50`` / ``AP75`` at one IoU, all with COCO's 101-point interpolated precision, at most 100
detections per image, averaged over the categories that have ground truth. Detections are scored down to
``score_threshold=0.001`` (the COCO practice: a detector's usual 0.05 display threshold cuts the low-score tail of
the precision/recall curve and lowers AP). Metric keys are the same everywhere in sardata: ``mAP``, ``AP50``,
``AP75``, ``AP_small``, ``AP_medium``, ``AP_large``, ``AR100`` and ``per_class[name]`` with ``mAP``, ``AP50``,
``n_gt``; a subset of the images (a scene, a split) is one more call with ``image_ids``.

The confusion plot colours each cell by its row-normalised value (the share of the true class predicted as each
class, i.e. recall on the diagonal) and writes the raw count in the cell.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from typing import Iterable

import numpy as np

#: Scores below this are dropped before evaluation (COCO practice; torchvision's references evaluate likewise).
SCORE_THRESHOLD = 0.001
#: The summary metrics of :func:`coco_detection_metrics` (0–1).
METRIC_KEYS = ("mAP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR100")


def coco_ground_truth(gt: dict):
    """A pycocotools ``COCO`` from a COCO dict, filling the fields ``COCOeval`` needs (``id``, ``area``,
    ``iscrowd``) where the dict leaves them out."""
    from pycocotools.coco import COCO

    annotations = []
    for index, ann in enumerate(gt.get("annotations", []), start=1):
        ann = dict(ann)
        ann.setdefault("id", index)
        ann.setdefault("iscrowd", 0)
        ann.setdefault("area", float(ann["bbox"][2] * ann["bbox"][3]))
        annotations.append(ann)
    coco = COCO()
    coco.dataset = {"images": [dict(im) for im in gt["images"]], "annotations": annotations,
                    "categories": list(gt["categories"])}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco.createIndex()
    return coco


def coco_detection_metrics(gt: dict | str | os.PathLike, predictions: Iterable[dict],
                           score_threshold: float = SCORE_THRESHOLD,
                           image_ids: Iterable[int] | None = None) -> dict:
    """COCO box metrics of ``predictions`` against ``gt`` with pycocotools.

    Args:
        gt: a COCO dict (or the path of its JSON): ``images``, ``annotations`` (absolute xywh), ``categories``.
        predictions: COCO result dicts (``image_id``, ``category_id``, ``bbox`` absolute xywh, ``score``); other
            keys (``sample_id``, ``category_name``) are ignored.
        score_threshold (0.001): detections scoring below this are left out.
        image_ids (None): evaluate on these images of ``gt`` only (a scene, a subset); default all of them.

    Returns:
        :data:`METRIC_KEYS` (floats in 0–1; NaN when the images hold no ground-truth box; 0 when there is ground
        truth but no detection), ``per_class`` ``{name: {"mAP", "AP50", "n_gt"}}`` (NaN for a class without
        ground truth in these images), ``n_images``, ``n_gt``, ``n_pred`` (detections evaluated).
    """
    from pycocotools.cocoeval import COCOeval

    if not isinstance(gt, dict):
        path = Path(gt)
        try:
            gt = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: cannot read COCO ground truth ({e})") from e
    coco_gt = coco_ground_truth(gt)
    known = set(coco_gt.getImgIds())
    ids = sorted(known) if image_ids is None else sorted(set(image_ids) & known)
    id_set = set(ids)
    dets = [{k: r[k] for k in ("image_id", "category_id", "bbox", "score")} for r in predictions
            if r["image_id"] in id_set and float(r["score"]) >= score_threshold]
    n_gt = len(coco_gt.getAnnIds(imgIds=ids, iscrowd=False)) if ids else 0
    names = {c["id"]: c["name"] for c in gt["categories"]}
    out: dict = {"n_images": len(ids), "n_gt": n_gt, "n_pred": len(dets)}
    if n_gt == 0:
        out.update(dict.fromkeys(METRIC_KEYS, float("nan")))
        out["per_class"] = {}
        return out
    per_class_gt = {c: len(coco_gt.getAnnIds(imgIds=ids, catIds=[c], iscrowd=False)) for c in names}
    if not dets:
        out.update(dict.fromkeys(METRIC_KEYS, 0.0))
        out["per_class"] = {names[c]: {"mAP": 0.0 if n else float("nan"), "AP50": 0.0 if n else float("nan"),
                                       "n_gt": n} for c, n in per_class_gt.items()}
        return out
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(dets), "bbox")
        evaluator.params.imgIds = ids
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = [float(v) for v in evaluator.stats]
    # pycocotools reports -1 where nothing is defined (e.g. no small objects): NaN, so it never averages as a score
    summary = dict(zip(METRIC_KEYS, (stats[0], stats[1], stats[2], stats[3], stats[4], stats[5], stats[8])))
    out.update({k: (v if v >= 0 else float("nan")) for k, v in summary.items()})
    precision = evaluator.eval["precision"]  # [iou, recall, category, area, max_dets]
    per_class = {}
    for k, cat_id in enumerate(evaluator.params.catIds):
        p_all, p_50 = precision[:, :, k, 0, -1], precision[0, :, k, 0, -1]
        per_class[names.get(cat_id, str(cat_id))] = {
            "mAP": float(p_all[p_all > -1].mean()) if (p_all > -1).any() else float("nan"),
            "AP50": float(p_50[p_50 > -1].mean()) if (p_50 > -1).any() else float("nan"),
            "n_gt": per_class_gt.get(cat_id, 0),
        }
    out["per_class"] = per_class
    return out


# --------------------------------------------------------------------------------------------- confusion matrix


def class_agnostic_ap50(gt: dict, results: list[dict]) -> float:
    """AP50 with every ground-truth box and detection relabelled to one class: what is left of AP50 when class
    confusion costs nothing, so ``AP50_agnostic − AP50`` is the part lost to telling the classes apart (and what
    remains below 1 is localisation and missed or spurious boxes). Same-box detections of several classes all stay
    (the class-wise NMS output as it is), so the duplicates count as false positives at their lower scores."""
    one = [{"id": 1, "name": "object"}]
    gt = {**gt, "annotations": [{**a, "category_id": 1} for a in gt["annotations"]], "categories": one}
    return coco_detection_metrics(gt, [{**r, "category_id": 1} for r in results])["AP50"]


def normalise_rows(matrix) -> np.ndarray:
    """Each row divided by its sum (a row without samples stays 0)."""
    m = np.asarray(matrix, dtype=np.float64)
    rows = m.sum(axis=1, keepdims=True)
    return np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)


def confusion_figure(matrix, class_names: list[str], title: str = "", cmap: str = "Blues"):
    """The confusion-matrix figure: rows = ground truth, columns = prediction, colour = row-normalised value
    (0–1), text = raw count. Returns ``(fig, ax)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(matrix)
    n = len(class_names)
    if counts.shape != (n, n):
        raise ValueError(f"confusion matrix of shape {counts.shape} for {n} class names")
    normalised = normalise_rows(counts)
    size = max(4.0, 0.7 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(normalised, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")
    ax.set_title(title)
    for i in range(n):
        for j in range(n):
            count = counts[i, j]
            text = f"{int(count)}" if float(count).is_integer() else f"{count:.2g}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="white" if normalised[i, j] > 0.5 else "black")
    fig.tight_layout()
    return fig, ax


def plot_confusion_matrix(matrix, class_names: list[str], path: str | os.PathLike, title: str = "",
                          dpi: int = 100) -> Path:
    """Writes the confusion matrix PNG of :func:`confusion_figure` to ``path`` (atomically); returns the path."""
    import matplotlib.pyplot as plt

    from sardata._io import save_figure

    fig, _ = confusion_figure(matrix, class_names, title)
    try:
        return Path(save_figure(path, fig, dpi=dpi))
    finally:
        plt.close(fig)


def iou_xywh(box, boxes) -> np.ndarray:
    """IoU of one COCO ``[x, y, w, h]`` box with each row of ``boxes`` (``n × 4``)."""
    box, boxes = np.asarray(box, dtype=float), np.asarray(boxes, dtype=float).reshape(-1, 4)
    x0, y0 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[0] + box[2], boxes[:, 0] + boxes[:, 2])
    y1 = np.minimum(box[1] + box[3], boxes[:, 1] + boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    return inter / np.maximum(box[2] * box[3] + boxes[:, 2] * boxes[:, 3] - inter, 1e-9)


def match_greedy(gt_boxes, detections, iou: float = 0.5) -> tuple[np.ndarray, list[bool]]:
    """One image's detections matched to its ground truth as COCO's evaluation does at one IoU threshold: by
    descending score, each detection takes the best-overlapping unmatched box at IoU ≥ ``iou``.

    Args:
        gt_boxes: ``n × 4`` COCO ``[x, y, w, h]`` boxes.
        detections: ``(score, [x, y, w, h])`` pairs, any order.

    Returns:
        ``(matched, hits)``: a bool per ground-truth box, and per detection in descending score order whether it
        matched (greedy matching is prefix-stable, so the hits of the top ``m`` are those of any score cut).
    """
    gt = np.asarray(gt_boxes, dtype=float).reshape(-1, 4)
    matched, hits = np.zeros(len(gt), dtype=bool), []
    for _, box in sorted(detections, key=lambda d: -d[0]):
        overlap = np.where(matched, 0.0, iou_xywh(box, gt))
        j = int(np.argmax(overlap)) if len(gt) else -1
        hit = j >= 0 and overlap[j] >= iou
        if hit:
            matched[j] = True
        hits.append(hit)
    return matched, hits

"""Detection metrics by scene tag and class; predictions loaded back into FiftyOne next to the ground truth.

Two engines, both standard: pycocotools' ``COCOeval`` (COCO mAP@[.5:.95] and AP50, the numbers papers report) and
FiftyOne's ``evaluate_detections`` (an evaluation run under ``eval_key``, so the App colours TP/FP/FN boxes and
filters them by scene). Scenes are the values of the sample field ``scene`` (a string or a ``fo.Classification``)
and scene-like sample tags (``inshore``, ``offshore``, ``scene_<i>``, and SSDD's official ``test_inshore`` /
``test_offshore``); ``all`` is every evaluated sample.

The scene table has the layout of BSLM Table I: one row per model, one column per scene, AP at IoU 0.5 (the paper's
"mAP"), written as Markdown and JSON beside a COCO-mAP table and per-class AP50.

The metrics read every result (a detector writes them down to score 0.001, as COCO evaluation wants). FiftyOne gets
those scoring at least :data:`APP_MIN_SCORE`: the App's TP/FP/FN colouring is for looking at, and saving ~100
near-zero boxes per image with their evaluation attributes is what made evaluation slow (sample saves, not matching:
on the demo's baseline predictions, under a load of 4–6, 41 s for all 3916 against 7 s for the 914 at ≥ 0.05; on a
quiet machine the demo's whole evaluation stage went from 90 s to 11 s).
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Iterable

from sardata.metrics import coco_detection_metrics
from sardata.predictions import add_detections, category_names, ensure_metadata

#: Sample tags that name a scene: ``sardata scenes`` tags (``inshore``, ``offshore``, ``scene_<i>``) and the official
#: SSDD test subsets (``test_inshore``, ``test_offshore``, the subsets BSLM Table I reports), kept as their own columns.
SCENE_TAG = re.compile(r"^((test_)?(inshore|offshore)|scene_\d+)$")
#: Lowest score of the detections loaded into FiftyOne (torchvision's default ``box_score_thresh``).
APP_MIN_SCORE = 0.05


# --------------------------------------------------------------------------------------------- FiftyOne side


def _get_dataset(dataset):
    import fiftyone as fo

    if isinstance(dataset, str):
        if not fo.dataset_exists(dataset):
            raise ValueError(f"FiftyOne dataset {dataset!r} not found (have: {fo.list_datasets()})")
        return fo.load_dataset(dataset)
    return dataset


def scene_of(value) -> str | None:
    """A ``scene`` field value (string or label) → its name."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return getattr(value, "label", None)


def scene_groups(samples, scene_field: str = "scene") -> dict[str, list[str]]:
    """``{"all": ids, <scene>: ids, ...}`` from the ``scene`` field and scene-like sample tags."""
    ids = samples.values("id")
    tags = samples.values("tags")
    scenes = samples.values(scene_field) if samples.has_field(scene_field) else [None] * len(ids)
    groups: dict[str, list[str]] = {"all": list(ids)}
    for sample_id, sample_tags, scene in zip(ids, tags, scenes):
        names = {scene_of(scene)} | {t for t in (sample_tags or []) if SCENE_TAG.match(t)}
        for name in sorted(n for n in names if n):
            groups.setdefault(name, []).append(sample_id)
    ordered = {"all": groups.pop("all")}
    for name in ("inshore", "offshore", "test_inshore", "test_offshore"):
        if name in groups:
            ordered[name] = groups.pop(name)
    ordered.update(dict(sorted(groups.items())))
    return ordered


def load_predictions(dataset, coco_results: list[dict], categories=None, field: str = "predictions",
                     sample_ids: Iterable[str] | None = None, gt_field: str = "ground_truth",
                     eval_key: str | None = "auto", iou: float = 0.5, batch_size: int = 500,
                     min_score: float = APP_MIN_SCORE):
    """Loads COCO results back into FiftyOne as a ``fo.Detections`` field (:func:`sardata.predictions.add_detections`,
    by ``sample_id``) and runs FiftyOne's detection evaluation on them.

    Args:
        dataset: a FiftyOne dataset or its name.
        coco_results: COCO result dicts with ``sample_id`` (as written by :func:`sardata.train.detector.predict`).
        categories (None): COCO categories (``[{"id", "name"}]`` or ``{id: name}``); default: the results'
            ``category_name`` keys.
        field ("predictions"): the label field to write.
        sample_ids (None): samples to write (those without a result get an empty ``Detections``, so evaluation
            counts their ground truth as missed). Default: the samples named in the results.
        gt_field ("ground_truth"): ground truth for the evaluation run.
        eval_key ("auto"): run ``evaluate_detections`` under this key (``"auto"``: ``eval_<field>``; ``None``: skip),
            so the App shows TP/FP/FN.
        iou (0.5): IoU threshold of the evaluation run.
        batch_size (500): samples per ``set_values`` call.
        min_score (:data:`APP_MIN_SCORE`): results scoring lower are not loaded (0: all of them).

    Returns:
        the view of the written samples.
    """
    dataset = _get_dataset(dataset)
    if min_score > 0:
        coco_results = [r for r in coco_results if r.get("score", 1.0) >= min_score]
    view = add_detections(dataset, coco_results, categories, field=field, sample_ids=sample_ids,
                          batch_size=batch_size)
    if eval_key is not None and dataset.has_field(gt_field):
        key = f"eval_{field}" if eval_key == "auto" else eval_key
        if key in dataset.list_evaluations():
            dataset.delete_evaluation(key)
        view.evaluate_detections(field, gt_field=gt_field, eval_key=key, iou=iou, compute_mAP=True, progress=False)
    return view


def coco_gt_from_fiftyone(samples, gt_field: str = "ground_truth", categories=None) -> tuple[dict, dict[str, int]]:
    """The ground truth of FiftyOne samples as a COCO dict (absolute xywh) and ``{sample_id: image_id}``."""
    ensure_metadata(samples)
    names = category_names(categories)
    name_to_id = {v: k for k, v in names.items()}
    images, annotations = [], []
    image_ids: dict[str, int] = {}
    rows = zip(samples.values("id"), samples.values("metadata.width"), samples.values("metadata.height"),
               samples.values(gt_field) if samples.has_field(gt_field) else [None] * len(samples))
    for image_id, (sample_id, width, height, labels) in enumerate(rows, start=1):
        image_ids[sample_id] = image_id
        images.append({"id": image_id, "width": width, "height": height, "sample_id": sample_id})
        for det in (labels.detections if labels is not None else []):
            if det.label not in name_to_id:
                name_to_id[det.label] = max(name_to_id.values(), default=0) + 1
            x, y, w, h = det.bounding_box
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": name_to_id[det.label],
                                "bbox": [x * width, y * height, w * width, h * height],
                                "area": w * width * h * height, "iscrowd": 0})
    categories = [{"id": i, "name": n} for n, i in sorted(name_to_id.items(), key=lambda kv: kv[1])]
    return {"images": images, "annotations": annotations, "categories": categories}, image_ids


def scene_metrics(samples, coco_results: list[dict], categories=None, gt_field: str = "ground_truth",
                  scene_field: str = "scene") -> dict[str, dict]:
    """Metrics per scene: ``{scene: coco_detection_metrics(...)}`` of all ``coco_results`` on ``samples``."""
    names = category_names(categories, coco_results)
    gt, image_ids = coco_gt_from_fiftyone(samples, gt_field, names)
    gt_name_to_id = {c["name"]: c["id"] for c in gt["categories"]}
    results = []
    for r in coco_results:
        if str(r.get("sample_id")) not in image_ids:
            continue
        name = names.get(int(r["category_id"]), str(r["category_id"]))
        if name not in gt_name_to_id:  # a class absent from the ground truth: keep it as its own category
            gt_name_to_id[name] = max(gt_name_to_id.values(), default=0) + 1
            gt["categories"].append({"id": gt_name_to_id[name], "name": name})
        results.append({**r, "image_id": image_ids[str(r["sample_id"])], "category_id": gt_name_to_id[name]})
    out = {}
    for scene, ids in scene_groups(samples, scene_field).items():
        out[scene] = coco_detection_metrics(gt, results, image_ids=[image_ids[i] for i in ids])
    return out


# --------------------------------------------------------------------------------------------- tables


def _pct(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f}"


def scene_table_markdown(rows: dict[str, dict[str, dict]], metric: str = "AP50") -> str:
    """BSLM Table I layout: rows = models, columns = scenes (``all``, ``inshore``, ``offshore``, ...), in %."""
    scenes: list[str] = []
    for per_scene in rows.values():
        scenes += [s for s in per_scene if s not in scenes]
    lines = ["| model | " + " | ".join(scenes) + " |", "|---|" + "---:|" * len(scenes)]
    for model, per_scene in rows.items():
        lines.append(f"| {model} | " + " | ".join(_pct(per_scene.get(s, {}).get(metric)) for s in scenes) + " |")
    return "\n".join(lines)


def class_table_markdown(rows: dict[str, dict[str, dict]], scene: str = "all", metric: str = "AP50") -> str:
    classes: list[str] = []
    for per_scene in rows.values():
        classes += [c for c in per_scene.get(scene, {}).get("per_class", {}) if c not in classes]
    lines = ["| model | " + " | ".join(classes) + " |", "|---|" + "---:|" * len(classes)]
    for model, per_scene in rows.items():
        per_class = per_scene.get(scene, {}).get("per_class", {})
        lines.append(f"| {model} | " + " | ".join(_pct(per_class.get(c, {}).get(metric)) for c in classes) + " |")
    return "\n".join(lines)


def write_tables(rows: dict[str, dict[str, dict]], out_dir: str | os.PathLike, name: str = "scene_eval") -> dict:
    """``<name>.md`` (AP50 by scene — BSLM Table I —, COCO mAP by scene, per-class AP50) and ``<name>.json``."""
    from sardata._io import write_json, write_text

    out_dir = Path(out_dir)
    text = "\n\n".join([
        "## AP at IoU 0.5 by scene (%; BSLM Table I layout)", scene_table_markdown(rows, "AP50"),
        "## COCO mAP@[.5:.95] by scene (%)", scene_table_markdown(rows, "mAP"),
        "## AP50 by class, all scenes (%)", class_table_markdown(rows),
    ]) + "\n"
    return {"markdown": write_text(out_dir / f"{name}.md", text),
            "json": write_json(out_dir / f"{name}.json", rows, default=float)}


def read_results(path: str | os.PathLike) -> list[dict]:
    """A COCO results JSON (a list, or ``{"results": [...]}``); the error names the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read predictions ({e})") from e
    data = data.get("results", data) if isinstance(data, dict) else data
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of COCO result dicts")
    return data


def evaluate_dataset(dataset, predictions: dict[str, list[dict]] | list[dict], categories=None,
                     gt_field: str = "ground_truth", split: str | None = None, scene_field: str = "scene",
                     iou: float = 0.5, out_dir: str | os.PathLike | None = None) -> dict:
    """Loads each model's predictions into FiftyOne and tabulates metrics by scene and class.

    Args:
        dataset: FiftyOne dataset or name.
        predictions: ``{model_name: coco_results}`` (or one list, named ``predictions``). Each model's results go
            to the field ``predictions`` (one model) or ``predictions_<model>`` with an evaluation run.
        categories (None): COCO categories of the results (default: their ``category_name`` keys).
        gt_field ("ground_truth"), scene_field ("scene"), iou (0.5).
        split (None): evaluate the samples whose ``split`` field (or tag) equals this; default: the samples named
            in the results.
        out_dir (None): where to write the tables (default ``work_dir(<dataset>, "evaluate")``).

    Returns:
        ``{"rows": {model: {scene: metrics}}, "markdown": path, "json": path}``.
    """
    from fiftyone import ViewField as F

    dataset = _get_dataset(dataset)
    if isinstance(predictions, list):
        predictions = {"predictions": predictions}
    if split is not None:
        if dataset.has_field("split"):
            view = dataset.match((F("split") == split) | F("tags").contains(split))
        else:
            view = dataset.match_tags(split)
        if len(view) == 0:
            raise ValueError(f"dataset {dataset.name!r} has no samples of split {split!r}")
        sample_ids = view.values("id")
    else:
        sample_ids = list(dict.fromkeys(str(r["sample_id"]) for rs in predictions.values() for r in rs
                                        if "sample_id" in r))
        if not sample_ids:
            raise ValueError("the predictions name no sample_id: pass split=... to say which samples were evaluated")
    rows = {}
    for model, results in predictions.items():
        field = "predictions" if len(predictions) == 1 else "predictions_" + re.sub(r"\W+", "_", model).strip("_")
        view = load_predictions(dataset, results, categories, field=field, sample_ids=sample_ids,
                                gt_field=gt_field, iou=iou)
        rows[model] = scene_metrics(view, results, categories, gt_field, scene_field)
    if out_dir is None:
        from sardata.paths import work_dir

        out_dir = work_dir(dataset.name, "evaluate")
    return {"rows": rows, **write_tables(rows, out_dir)}

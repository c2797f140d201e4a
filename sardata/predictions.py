"""Predictions back into FiftyOne: the one way, keyed by sample id.

Every trainer's per-image output goes back through this module: detections (COCO results carrying the
``sample_id`` of their export image), classifications with their Grad-CAM heatmaps, and segmentation masks. Exported
files are turned into sample ids by the export contract (:class:`exporters.contract.SampleIdMap`, from the export's
``manifest.json``), never by matching file names against the dataset. A sample exported ``k`` times (a balance
run's replicas) is one sample: its replicas' predictions collapse onto it, the original's (replica 0, else the
lowest replica) being kept.

All writers validate the ids first (an id that is not in the dataset is an error naming it), then write with one
``set_values(..., key_field="id")`` per batch.
"""

from __future__ import annotations

import json
import os
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Mapping

BATCH_SIZE = 500


def _dataset(dataset):
    """The root dataset of a dataset, view or dataset name."""
    import fiftyone as fo

    if isinstance(dataset, str):
        if not fo.dataset_exists(dataset):
            raise ValueError(f"FiftyOne dataset {dataset!r} not found (have: {fo.list_datasets()})")
        return fo.load_dataset(dataset)
    return dataset._root_dataset  # a view's dataset (a Dataset's is itself)


def set_labels(dataset, field: str, labels: Mapping[str, object], batch_size: int = BATCH_SIZE):
    """Writes ``{sample_id: label}`` into ``field`` of the samples named; returns the view of those samples.

    Raises:
        ValueError: ids that are not samples of the dataset (the first few are named).
    """
    dataset = _dataset(dataset)
    ids = list(labels)
    view = dataset.select(ids)
    unknown = set(ids) - set(view.values("id"))
    if unknown:
        raise ValueError(f"{len(unknown)} sample ids are not in dataset {dataset.name!r} (e.g. {sorted(unknown)[:3]})")
    for start in range(0, len(ids), batch_size):
        chunk = ids[start:start + batch_size]
        dataset.set_values(field, {i: labels[i] for i in chunk}, key_field="id")
    return dataset.select(ids, ordered=True)


def files_to_samples(export_dir: str | os.PathLike, paths: Iterable[str | os.PathLike]) -> list[str | None]:
    """The sample id of each exported file (absolute, or relative to ``export_dir``), None for a file the export's
    manifest does not name."""
    from exporters.contract import SampleIdMap

    lookup = SampleIdMap(export_dir)
    return [lookup.get(p) for p in paths]


def _one_per_sample(pairs: Iterable[tuple[str | None, str, object]], what: str) -> dict[str, object]:
    """``{sample_id: value}`` from ``(sample_id, file name, value)``, keeping the original's value when replicas of
    one sample all have one; warns about files without a sample id."""
    from exporters.contract import parse_replica

    best: dict[str, tuple[int, object]] = {}
    orphans = []
    for sample_id, name, value in pairs:
        if sample_id is None:
            orphans.append(str(name))
            continue
        k = parse_replica(name)[1]
        if sample_id not in best or k < best[sample_id][0]:
            best[sample_id] = (k, value)
    if orphans:
        warnings.warn(f"{len(orphans)} {what} have no sample id in the export manifest (e.g. {orphans[:3]}); "
                      "not added to FiftyOne")
    return {sid: value for sid, (_, value) in best.items()}


# --------------------------------------------------------------------------------------------- detections


def category_names(categories, results: Iterable[dict] = ()) -> dict[int, str]:
    """``{category_id: name}`` from COCO categories (list of dicts, or dict id→name), completed from the results'
    ``category_name`` keys."""
    names: dict[int, str] = {}
    if isinstance(categories, dict):
        names.update({int(k): str(v) for k, v in categories.items()})
    elif categories:
        names.update({int(c["id"]): str(c["name"]) for c in categories})
    for r in results:
        if int(r["category_id"]) not in names and r.get("category_name"):
            names[int(r["category_id"])] = str(r["category_name"])
    return names


def ensure_metadata(samples) -> None:
    if None in samples.values("metadata.width") or None in samples.values("metadata.height"):
        samples.compute_metadata()


def add_detections(dataset, results: list[dict], categories=None, field: str = "predictions",
                   sample_ids: Iterable[str] | None = None, batch_size: int = BATCH_SIZE):
    """COCO results → a ``fo.Detections`` field (relative boxes, ``confidence`` = score), by each result's
    ``sample_id``.

    Args:
        dataset: a FiftyOne dataset (or view, or name).
        results: COCO result dicts (``sample_id``, ``image_id``, ``category_id``, absolute xywh ``bbox``, ``score``),
            as :func:`sardata.train.detector.predict` writes them from a COCO export, whose images carry the
            sample id of the export contract.
        categories (None): COCO categories (``[{"id", "name"}]`` or ``{id: name}``); default the results'
            ``category_name`` keys.
        field ("predictions"): the label field to write.
        sample_ids (None): samples to write; those without a result get an empty ``Detections`` (so an evaluation
            counts their ground truth as missed). Default: the samples named by the results.
        batch_size (500): samples per ``set_values`` call.

    Returns:
        the view of the written samples. The results of one sample come from one image: when replicas of a sample
        were all predicted, the first image's results are kept.
    """
    import fiftyone as fo

    dataset = _dataset(dataset)
    missing = [i for i, r in enumerate(results) if "sample_id" not in r]
    if missing:
        raise ValueError(f"{len(missing)} results have no 'sample_id' (e.g. result #{missing[0]}); "
                         "predict on a sardata COCO export, whose images carry sample ids")
    names = category_names(categories, results)
    by_sample: dict[str, list[dict]] = defaultdict(list)
    image_of: dict[str, object] = {}
    for r in results:
        sample_id = str(r["sample_id"])
        if image_of.setdefault(sample_id, r.get("image_id")) == r.get("image_id"):
            by_sample[sample_id].append(r)
    ids = list(dict.fromkeys(list(sample_ids) if sample_ids is not None else list(by_sample)))
    unknown = set(by_sample) - set(ids)
    if unknown:
        raise ValueError(f"{len(unknown)} sample_ids of the results are not among the samples to write "
                         f"(e.g. {sorted(unknown)[:3]})")
    view = dataset.select(ids)
    absent = set(ids) - set(view.values("id"))
    if absent:
        raise ValueError(f"{len(absent)} sample ids are not in dataset {dataset.name!r} (e.g. {sorted(absent)[:3]})")
    ensure_metadata(view)
    sizes = dict(zip(view.values("id"), zip(view.values("metadata.width"), view.values("metadata.height"))))
    labels = {}
    for sample_id in ids:
        width, height = sizes[sample_id]
        labels[sample_id] = fo.Detections(detections=[
            fo.Detection(label=names.get(int(r["category_id"]), str(r["category_id"])),
                         bounding_box=[r["bbox"][0] / width, r["bbox"][1] / height,
                                       r["bbox"][2] / width, r["bbox"][3] / height],
                         confidence=float(r["score"]))
            for r in by_sample.get(sample_id, [])
        ])
    return set_labels(dataset, field, labels, batch_size)


# --------------------------------------------------------------------------------------------- classification


def add_heatmaps(dataset, heatmaps: Mapping[str, str | os.PathLike], field: str = "gradcam",
                 value_range=(0, 255)):
    """``{sample_id: 8-bit map PNG}`` (e.g. Grad-CAM ``*_cam.png``) → ``fo.Heatmap(map_path=...)`` in ``field``."""
    import fiftyone as fo

    missing = [str(p) for p in heatmaps.values() if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"heatmap files not found: {missing[:3]}")
    return set_labels(dataset, field, {str(sid): fo.Heatmap(map_path=str(Path(p).resolve()), range=list(value_range))
                                       for sid, p in heatmaps.items()})


def add_classifications(dataset, predictions: Mapping[str, tuple[str, float]], field: str = "predictions",
                        heatmaps: Mapping[str, str | os.PathLike] | None = None, heatmap_field: str = "gradcam"):
    """``{sample_id: (label, confidence)}`` → ``fo.Classification`` in ``field``; ``heatmaps`` (``{sample_id: map
    PNG}``) go to ``heatmap_field`` with :func:`add_heatmaps`. Returns the view of the classified samples."""
    import fiftyone as fo

    view = set_labels(dataset, field, {str(sid): fo.Classification(label=str(label), confidence=float(conf))
                                       for sid, (label, conf) in predictions.items()})
    if heatmaps:
        add_heatmaps(dataset, heatmaps, heatmap_field)
    return view


def add_file_classifications(dataset, export_dir: str | os.PathLike, files: Iterable[str | os.PathLike],
                             predictions: Iterable[tuple[str, float]], field: str = "predictions",
                             heatmaps: Iterable[str | os.PathLike | None] | None = None,
                             heatmap_field: str = "gradcam") -> int:
    """Classifications (and heatmaps) of exported files (e.g. an ImageFolder export's test images), in file order,
    put on the files' samples through the export manifest. Returns the number of samples written."""
    files = list(files)
    ids = files_to_samples(export_dir, files)
    predictions = list(predictions)
    if len(predictions) != len(files):
        raise ValueError(f"{len(predictions)} predictions for {len(files)} files")
    heatmaps = list(heatmaps) if heatmaps is not None else [None] * len(files)
    chosen = _one_per_sample(((sid, Path(f).name, (pred, cam)) for sid, f, pred, cam
                              in zip(ids, files, predictions, heatmaps)), "classified files")
    if not chosen:
        return 0
    add_classifications(dataset, {sid: pred for sid, (pred, _) in chosen.items()}, field,
                        {sid: cam for sid, (_, cam) in chosen.items() if cam is not None}, heatmap_field)
    return len(chosen)


# --------------------------------------------------------------------------------------------- segmentation


def add_segmentations(dataset, pred_dir: str | os.PathLike, export_dir: str | os.PathLike, split: str,
                      field: str = "predictions") -> int:
    """Predicted masks ``<pred_dir>/<stem>.png`` of one split of a masks export → ``fo.Segmentation(mask_path=...)``.

    Each prediction is named by the stem of the mask it was predicted for, so its sample is the one the export's
    manifest records for ``<split>/masks/<stem>.png``. ``dataset.mask_targets[field]`` is set from
    ``<pred_dir>/class_map.json`` when present.

    Args:
        dataset: the FiftyOne dataset the export was made from (or a view of it, or its name).
        pred_dir: folder of predicted label PNGs (raw label values), e.g. ``sardata train segment``'s
            ``predictions/``.
        export_dir: the masks export the predictions were made on.
        split: the export split that was predicted.
        field ("predictions"): sample field to write.

    Returns:
        the number of samples that received a mask (predictions of a sample's replicas collapse onto it; files
        without a sample id are warned about).
    """
    import fiftyone as fo

    pred_dir = Path(pred_dir)
    masks = sorted(p for p in pred_dir.glob("*.png") if not p.name.startswith("."))
    if not masks:
        raise FileNotFoundError(f"{pred_dir}: no predicted mask PNGs")
    ids = files_to_samples(export_dir, [f"{split}/masks/{p.name}" for p in masks])
    chosen = _one_per_sample(((sid, p.name, p.resolve()) for sid, p in zip(ids, masks)), "predicted masks")
    if not chosen:
        return 0
    root = _dataset(dataset)
    set_labels(root, field, {sid: fo.Segmentation(mask_path=str(path)) for sid, path in chosen.items()})
    class_map_path = pred_dir / "class_map.json"
    if class_map_path.is_file():
        targets = {int(k): v for k, v in json.loads(class_map_path.read_text()).items()}
        root.mask_targets = {**(root.mask_targets or {}), field: targets}
        root.save()
    return len(chosen)

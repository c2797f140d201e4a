"""``sardata validate``: what will hurt training, found before it starts (Datumaro's ``validate``, for SAR).

:func:`validate` checks label geometry (:mod:`.geometry`), the class × split × scene distribution
(:mod:`.distribution`), leakage across splits (:mod:`.leakage`) and the SAR pixels (:mod:`.pixels`), and stores the
result as a named run with one saved view per kind of finding (:mod:`.runs`), so that every finding opens in the App.
Each finding has a severity (``error`` / ``warning`` / ``info``); :meth:`ValidationReport.fails` gives CI an exit code.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from sardata.validate import distribution, geometry, leakage, pixels
from sardata.validate.findings import SEVERITIES, Finding, ValidationReport
from sardata.validate.runs import delete_validation_run, list_validation_runs, load_validation_run, report_dir, save_run

__all__ = [
    "SEVERITIES", "Finding", "ValidationReport", "validate", "list_validation_runs", "load_validation_run",
    "delete_validation_run",
]


def _embedding_field(samples, embeddings: str | None) -> str | None:
    if embeddings is not None:
        if not samples.has_field(embeddings):
            raise ValueError(f"embeddings field {embeddings!r} not found on {samples._dataset.name!r}")
        return embeddings
    candidates = sorted(f for f in samples.get_field_schema() if f.endswith("_embedding"))
    return candidates[0] if candidates else None


def validate(
    samples,
    label_field: str = "ground_truth",
    run_key: str = "validate",
    split_field: str = "split",
    scene_field: str = "scene",
    min_box_px: float = geometry.MIN_BOX_PX,
    duplicate_iou: float = geometry.DUPLICATE_IOU,
    near_threshold: float = leakage.NEAR_THRESHOLD,
    embeddings: str | None = None,
    saturation_warning: float = pixels.SATURATION_WARNING,
    num_workers: int | None = None,
    progress: bool = True,
) -> ValidationReport:
    """Validates a dataset or view and stores the report as the run ``run_key``.

    Args:
        samples: a FiftyOne dataset or view (e.g. a merged dataset, or one split).
        label_field ("ground_truth"): the labels to check (Detections, Classification or Segmentation).
        run_key ("validate"): name of the run; re-running a key replaces its report and views.
        split_field ("split"), scene_field ("scene"): fields for the distribution and leakage checks.
        min_box_px (4): boxes with a shorter side below this many pixels are ``tiny``.
        duplicate_iou (0.9): IoU from which two same-class boxes of one image are duplicates.
        near_threshold (0.98): cosine similarity from which two images are near duplicates.
        embeddings (None): vector field for near duplicates (default: the first ``*_embedding`` field, else the
            pixel signature).
        saturation_warning (0.05): fraction of saturated pixels from which an image is flagged.
        num_workers (None): threads reading images.
        progress (True): progress bar over the images.
    """
    dataset = samples._dataset
    kind = distribution.label_kind(samples, label_field)
    findings: list[Finding] = []
    if kind == "none":
        findings.append(Finding("no_label_field", "warning", f"no label field {label_field!r} of a known type",
                                samples.values("id")))
    if kind == "detections":
        findings += geometry.check_detections(samples, label_field, min_box_px, duplicate_iou)
        if samples.has_field("rboxes"):
            findings += geometry.check_rboxes(samples, "rboxes")
        if samples.has_field("polygons"):
            findings += geometry.check_polygons(samples, "polygons", box_field=label_field)
    dist, dist_findings = distribution.check_distribution(samples, label_field, kind, split_field, scene_field)
    findings += dist_findings
    ingest_labels = dataset.info.get("ingest_labels") or {}
    dropped = {c: n["dropped"] for c, n in ingest_labels.items() if n.get("dropped")}
    if dropped:
        findings.append(Finding("labels_dropped_at_ingest", "error",
                                f"{sum(dropped.values())} labels were dropped at ingest ({dropped}); see "
                                "dataset.info['ingest_problems']", details={"dropped": dropped}))

    ids, facts = pixels.read_all(samples, num_workers=num_workers, progress=progress)
    findings += pixels.check_pixels(ids, facts, saturation_warning)
    splits = samples.values(split_field) if samples.has_field(split_field) else [None] * len(ids)
    hashes = [f.sha256 for f in facts]
    findings += leakage.check_exact(ids, splits, hashes)
    field = _embedding_field(samples, embeddings)
    if field is not None:
        vectors, source = samples.values(field), field
    else:
        vectors, source = [f.signature for f in facts], "pixel signature"
    if samples.has_field(split_field):
        findings += leakage.check_near(ids, splits, vectors, source, near_threshold, leakage.exact_pairs(ids, hashes))
        findings += leakage.check_groups(samples, split_field)

    out_dir = report_dir(dataset.name, run_key)
    if kind == "detections":
        stats = distribution.box_statistics(samples, label_field)
        dist["box_size_px_median"] = {c: round(float(_median(s["size_px"])), 2) for c, s in stats.items()}
        dist["plots"] = [str(p) for p in distribution.plot_box_histograms(stats, out_dir)]
    report = ValidationReport(
        run_key=run_key, dataset=dataset.name, label_field=label_field, findings=findings, distribution=dist,
        params={"min_box_px": min_box_px, "duplicate_iou": duplicate_iou, "near_threshold": near_threshold,
                "near_source": source, "saturation_warning": saturation_warning, "samples": len(ids),
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")},
        report_dir=str(out_dir),
    )
    return save_run(dataset, report)


def _median(values) -> float:
    return float(np.median(values)) if len(values) else float("nan")

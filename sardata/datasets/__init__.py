"""Dataset loaders: one module per dataset, each a FiftyOne importer; :func:`load` ingests one into FiftyOne."""

from __future__ import annotations

import os
from collections import Counter
from typing import TYPE_CHECKING

from sardata import registry

if TYPE_CHECKING:  # importing fiftyone takes seconds: modules like taxonomy must stay cheap to import
    import fiftyone as fo


def dataset_type(key: str) -> type:
    """The FiftyOne dataset type for a dataset key (see :data:`sardata.registry.DATASETS`)."""
    from sardata import types as sartypes

    return getattr(sartypes, registry.get(key).type_name)


def load(
    key: str,
    root: str | os.PathLike,
    name: str | None = None,
    overwrite: bool = False,
    strict: bool = False,
    progress: bool | None = None,
    **importer_kwargs,
) -> "fo.Dataset":
    """Ingests a dataset from its on-disk layout into a persistent FiftyOne dataset.

    Args:
        key: dataset key (see :data:`sardata.registry.DATASETS`).
        root: the dataset root directory, its zip/tar archive, or a folder holding the archive(s) (see
            :meth:`sardata.datasets._base.SarDatasetImporter._locate`).
        name (None): FiftyOne dataset name (default: ``key``).
        overwrite (False): replace an existing dataset of that name.
        strict (False): fail on the first bad file instead of reporting it.
        progress (None): show a progress bar (FiftyOne's default when None).
        **importer_kwargs: passed to the dataset's importer (e.g. ``patch_size`` for WHU-OPT-SAR).

    Returns:
        the dataset; ``dataset.info["ingest_problems"]`` lists skipped files with reasons.
    """
    import fiftyone as fo

    importer_cls = registry.get(key).importer_cls()
    name = name or key
    if fo.dataset_exists(name):
        if not overwrite:
            raise ValueError(f"dataset {name!r} already exists; pass overwrite=True (--overwrite) to replace it")
        fo.delete_dataset(name)
    importer = importer_cls(root, strict=strict, **importer_kwargs)
    try:
        dataset = fo.Dataset(name, persistent=True)
    except Exception as e:  # another process took the name between the check above and here
        if fo.dataset_exists(name):
            raise ValueError(f"dataset {name!r} already exists (created meanwhile by another process); pass "
                             "overwrite=True (--overwrite) to replace it") from e
        raise
    try:
        dataset.add_importer(importer, progress=progress)
    except BaseException:
        dataset.delete()
        raise
    if not dataset.has_field("split"):  # loaders without an official split set None, which FiftyOne doesn't declare
        dataset.add_sample_field("split", fo.StringField)
    dataset.info["sardata_dataset"] = key
    report = importer.report()
    dataset.info["ingest_problems"] = report["problems"]
    dataset.info["ingest_labels"] = report["labels"]
    dataset.save()
    return dataset


def summarize(dataset: "fo.Dataset", label_field: str = "ground_truth") -> dict:
    """Counts for an ingest summary: samples, labels per class, samples per split, skipped files, and the annotated
    labels kept / clipped / dropped per class (``labels``; empty for loaders whose labels are not boxes)."""
    import fiftyone as fo

    summary: dict = {"samples": len(dataset), "splits": {}, "classes": {}, "skipped": dataset.info.get("ingest_problems", []),
                     "labels": dataset.info.get("ingest_labels", {})}
    if "split" in dataset.get_field_schema():
        summary["splits"] = dict(sorted(dataset.count_values("split").items(), key=lambda kv: str(kv[0])))
    field = dataset.get_field(label_field) if label_field in dataset.get_field_schema() else None
    if field is not None:
        doc_type = getattr(field, "document_type", None)
        if doc_type is fo.Detections:
            summary["classes"] = dataset.count_values(f"{label_field}.detections.label")
        elif doc_type is fo.Classification:
            summary["classes"] = dataset.count_values(f"{label_field}.label")
        elif doc_type is fo.Segmentation:
            summary["classes"] = {"mask_targets": dict(dataset.mask_targets.get(label_field, dataset.default_mask_targets))}
    summary["classes"] = dict(sorted(Counter(summary["classes"]).items(), key=lambda kv: str(kv[0])))
    return summary

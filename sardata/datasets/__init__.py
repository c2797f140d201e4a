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


#: Infix of the temporary dataset an ingest writes into before it takes its name (see :func:`load`).
STAGING_INFIX = ".ingest-partial-"


def _staging_name(name: str) -> str:
    """``<name>.ingest-partial-<pid>-<random>@<host>``: whose it is, so that a later ingest can tell a dead one's."""
    import secrets
    import socket

    return f"{name}{STAGING_INFIX}{os.getpid()}-{secrets.token_hex(4)}@{socket.gethostname()}"


def _owner_is_dead(staging: str) -> bool:
    """True when the process that wrote ``staging`` ran on this host and is gone (other hosts: unknown, False)."""
    import re
    import socket

    match = re.search(r"-(\d+)-[0-9a-f]+@([^@]*)$", staging)
    if match is None or match[2] != socket.gethostname():
        return False
    try:
        os.kill(int(match[1]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def remove_stale_ingests(name: str) -> list[str]:
    """Deletes what killed ingests into ``name`` left behind (their staging datasets); returns their names.

    Only staging datasets whose process is known to be gone are touched (same host, pid not running); FiftyOne also
    deletes non-persistent datasets by itself once no other client is connected.
    """
    import glob

    import fiftyone as fo

    removed = []
    for staging in fo.list_datasets(f"{glob.escape(name)}{STAGING_INFIX}*"):
        if staging.startswith(name + STAGING_INFIX) and _owner_is_dead(staging):
            try:
                fo.delete_dataset(staging)
                removed.append(staging)
            except ValueError:  # deleted meanwhile
                pass
    return removed


def _publish(dataset: "fo.Dataset", name: str, overwrite: bool) -> None:
    """Gives the finished staging ``dataset`` its ``name`` and makes it persistent, in one database write."""
    import fiftyone as fo

    if overwrite and fo.dataset_exists(name):
        fo.delete_dataset(name)
    dataset._doc.persistent = True
    try:
        dataset.name = name  # one update of the dataset document: name, slug and persistent together
    except Exception as e:  # the name was taken meanwhile (unique index) by another process
        dataset._doc.reload()
        raise ValueError(f"dataset {name!r} already exists (created meanwhile by another process); pass "
                         "overwrite=True (--overwrite) to replace it") from e


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

    The samples go into a temporary, non-persistent dataset (``<name>.ingest-partial-<pid>-...``) that takes the
    name ``name`` and becomes persistent in one write once it is complete, so a kill in the middle never leaves a
    half dataset under ``name`` (with ``overwrite``, the previous dataset stays until the new one is whole). A rerun
    starts clean: it first deletes the staging datasets of killed ingests into the same name
    (:func:`remove_stale_ingests`), so no sample is ever written twice.

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
    if fo.dataset_exists(name) and not overwrite:
        raise ValueError(f"dataset {name!r} already exists; pass overwrite=True (--overwrite) to replace it")
    remove_stale_ingests(name)
    importer = importer_cls(root, strict=strict, **importer_kwargs)
    dataset = fo.Dataset(_staging_name(name), persistent=False)
    try:
        dataset.add_importer(importer, progress=progress)
        if not dataset.has_field("split"):  # loaders without an official split set None, which FiftyOne doesn't declare
            dataset.add_sample_field("split", fo.StringField)
        dataset.info["sardata_dataset"] = key
        report = importer.report()
        dataset.info["ingest_problems"] = report["problems"]
        dataset.info["ingest_labels"] = report["labels"]
        dataset.save()
        _publish(dataset, name, overwrite)
    except BaseException:
        dataset.delete()
        raise
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

"""FiftyOne sample documents built as plain BSON dicts, for the loaders' fast write path.

A loader's ``_build_sample`` may return one of these dicts instead of a :class:`fiftyone.Sample`: the importer
(:meth:`sardata.datasets._base.SarDatasetImporter.import_samples`) then inserts it as it is, the way FiftyOne's own
``FiftyOneDatasetImporter`` writes the documents of an exported dataset, without building (and validating, and
rebuilding from the database) the mongoengine objects of every sample and label. Each function here returns exactly
what the FiftyOne class of the same name gives from ``to_mongo()`` (same keys, same order; ``tests/test_ingest.py``
compares them), so the stored documents are the ones :meth:`fiftyone.core.dataset.Dataset.add_samples` would store.

Only the label types the loaders write are here; attributes are passed as keyword arguments (dynamic attributes).
"""

from __future__ import annotations

import random
from typing import Any

from bson import ObjectId

_rand = random.Random()


def detection(label: str, bounding_box: list[float], **attributes) -> dict:
    """``fo.Detection(label=..., bounding_box=..., **attributes).to_mongo()``."""
    return {"_id": ObjectId(), "_cls": "Detection", "attributes": {}, "tags": [], "label": label,
            "bounding_box": bounding_box, **attributes}


def detections(items: list[dict]) -> dict:
    """``fo.Detections(detections=...).to_mongo()`` of :func:`detection` dicts."""
    return {"_cls": "Detections", "detections": items}


def polyline(label: str, points: list, closed: bool, filled: bool, **attributes) -> dict:
    """``fo.Polyline(label=..., points=..., closed=..., filled=..., **attributes).to_mongo()``."""
    return {"_id": ObjectId(), "_cls": "Polyline", "attributes": {}, "tags": [], "label": label, "points": points,
            "closed": bool(closed), "filled": bool(filled), **attributes}


def polylines(items: list[dict]) -> dict:
    """``fo.Polylines(polylines=...).to_mongo()`` of :func:`polyline` dicts."""
    return {"_cls": "Polylines", "polylines": items}


def image_metadata(width: int, height: int, num_channels: int, size_bytes: int) -> dict:
    """``fo.ImageMetadata(width=..., height=..., num_channels=..., size_bytes=...).to_mongo()``."""
    return {"_cls": "ImageMetadata", "size_bytes": int(size_bytes), "width": int(width), "height": int(height),
            "num_channels": int(num_channels)}


def dynamic_document(**fields) -> dict:
    """``fo.DynamicEmbeddedDocument(**fields).to_mongo()``."""
    return {"_cls": "DynamicEmbeddedDocument", **fields}


def sample(filepath: str, tags: list[str] | None = None, metadata: dict | None = None, **fields: Any) -> dict:
    """The document of ``fo.Sample(filepath, tags=..., metadata=..., **fields)`` (None-valued fields omitted, as
    FiftyOne omits them when it adds a sample); ``filepath`` is normalised as ``fo.Sample`` does."""
    import fiftyone.core.media as fom  # deferred: this module stays cheap to import
    import fiftyone.core.storage as fos

    filepath = fos.normalize_path(filepath)
    doc: dict[str, Any] = {"filepath": filepath, "tags": list(tags or [])}
    if metadata is not None:
        doc["metadata"] = metadata
    doc["_media_type"] = fom.get_media_type(filepath)
    doc["_rand"] = _rand.random() * 0.001 + 0.999  # fiftyone.core.odm.sample._generate_rand
    doc.update((k, v) for k, v in fields.items() if v is not None)
    return doc


def signature(doc: dict) -> tuple:
    """The part of a sample document that decides the dataset schema FiftyOne infers from it: the top-level fields
    that have a value, each with its type (the embedded document class for labels and metadata; the element type for
    lists). Two documents with the same signature add the same fields to the schema."""
    out = []
    for key, value in doc.items():
        if isinstance(value, dict):
            kind: Any = ("doc", value.get("_cls"))
        elif isinstance(value, list):
            kind = ("list", type(value[0]).__name__ if value else None)
        else:
            kind = type(value).__name__
        out.append((key, kind))
    return tuple(sorted(out))

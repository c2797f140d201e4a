"""What every exporter shares: the export plan (samples × replicas), atomic export directories, hardlinked replicas,
the manifest and the overwrite rule.

Flow of :func:`exporters.export_view`: :func:`build_plan` reads the view in bulk (``values()``, not per-sample
documents) → the format module writes into a temporary directory beside ``out_dir``, recording each file's sample id
→ :func:`exporters.contract.write_manifest` records what was written (:func:`plan_manifest`) with checksums →
:func:`atomic_export_dir` renames the temporary directory onto ``out_dir``. The replica rule, the manifest and the
sample-id mapping are the export contract, :mod:`exporters.contract`. A kill
at any point leaves either the previous export or nothing under ``out_dir`` (plus, at worst, a hidden
``.<name>.sardata-tmp-<pid>-*`` directory that the next export removes).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from exporters.contract import CONTRACT_VERSION, replica_name
from sardata._io import atomic_dir

_SPLIT_NAME = re.compile(r"[A-Za-z0-9._-]+")


@dataclass
class ExportItem:
    """One sample of the plan, exported ``count`` times (replica 0 is the original, 1.. are hardlinks)."""

    sample_id: str
    filepath: str
    image_path: str
    split: str
    label: object
    count: int
    width: int | None = None
    height: int | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class ExportPlan:
    """The samples to export with their splits and replication counts, plus what goes in the manifest."""

    items: list
    dataset_name: str
    view_repr: str
    label_field: str
    balance_run: str | None
    split_field: str | None
    image_source: str
    seed: int
    mask_targets: dict = field(default_factory=dict)
    dataset_classes: list = field(default_factory=list)

    @property
    def splits(self) -> list[str]:
        return sorted({item.split for item in self.items})

    def classes(self) -> list[str]:
        """Class names: the dataset's (declared, else every label in the whole dataset, sorted), then any other label
        found in the plan. Dataset-wide, so class ids agree between exports of different views of one dataset."""
        names = set()
        for item in self.items:
            names.update(label_names(item.label))
        known = set(self.dataset_classes)
        return list(self.dataset_classes) + sorted(names - known)


#: Label classes read as raw documents (attribute views), which is several times faster than building FiftyOne Label
#: objects for every sample; other types (Segmentation: its mask needs decoding) are read as Label objects.
RAW_KINDS = ("Detections", "Classification", "Polylines", "Classifications")
_LIST_ATTRS = ("detections", "polylines", "classifications", "keypoints")


class RawLabel:
    """Read-only attribute view over a label's raw database document (``values(..., _raw=True)``).

    Exposes what the exporters use: ``.label``, ``.bounding_box``, ``.points``, ``.detections`` (as RawLabels),
    dynamic attributes through ``obj["cx"]``, and ``has_field``; ``kind`` is the label class name.
    """

    __slots__ = ("_doc",)

    def __init__(self, doc: dict):
        self._doc = doc

    @property
    def kind(self) -> str:
        return self._doc.get("_cls", "")

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name == "id":
            return str(self._doc.get("_id"))
        value = self._doc.get(name)
        if name in _LIST_ATTRS and value is not None:
            return [RawLabel(v) for v in value]
        return value

    def has_field(self, name: str) -> bool:
        return name in self._doc

    def __getitem__(self, name):
        if name not in self._doc:
            raise KeyError(name)
        return getattr(self, name)


def label_kind(label) -> str | None:
    """Class name of a label (``Detections``, ``Classification``, ...), for Label objects and RawLabels alike."""
    if label is None:
        return None
    return label.kind if isinstance(label, RawLabel) else type(label).__name__


def _label_values(samples, path: str) -> list:
    """Label values of a field, as RawLabels for :data:`RAW_KINDS`, else as FiftyOne Label objects."""
    doc_type = getattr(samples.get_field(path), "document_type", None)
    if doc_type is not None and doc_type.__name__ in RAW_KINDS:
        return [None if v is None else RawLabel(v) for v in samples.values(path, _raw=True)]
    return samples.values(path)


def label_names(label) -> list[str]:
    """Class names in one label (a list for Detections/Polylines, one for a Classification)."""
    if label is None:
        return []
    for attr in ("detections", "polylines", "classifications", "keypoints"):
        objects = getattr(label, attr, None)
        if objects is not None:
            return [o.label for o in objects if o.label is not None]
    name = getattr(label, "label", None)
    return [name] if name is not None else []


def build_plan(
    samples,
    label_field: str = "ground_truth",
    balance_run: str | None = None,
    split_field: str | None = "split",
    image_source: str = "display",
    seed: int = 0,
    extra_fields: tuple = (),
    need_size: bool = False,
) -> ExportPlan:
    """Reads a view in bulk into an :class:`ExportPlan`.

    Args:
        samples: FiftyOne dataset or view.
        label_field ("ground_truth"): label field to export.
        balance_run (None): balance run whose counts give the replicas (None = each sample once; count 0 = left out).
        split_field ("split"): field naming each sample's split (None or missing values → ``all``).
        image_source ("display"): ``display`` (``filepath``, 8-bit) or ``original`` (``sar_path``).
        seed (0): recorded in the manifest.
        extra_fields (()): other sample fields to carry in ``ExportItem.extra`` (missing fields → None).
        need_size (False): fill width/height, computing metadata when missing.
    """
    from sardata.views.balance import replication_counts

    if image_source not in ("display", "original"):
        raise ValueError(f"image_source {image_source!r}; expected 'display' or 'original'")
    schema = samples.get_field_schema()
    if label_field not in schema:
        raise ValueError(f"label field {label_field!r} not found on {samples._dataset.name!r}; fields: {sorted(schema)}")
    if need_size and samples.count("metadata.width") < len(samples):
        samples.compute_metadata()
    ids = samples.values("id")
    filepaths = samples.values("filepath")
    labels = _label_values(samples, label_field)
    sar_paths = samples.values("sar_path") if "sar_path" in schema else [None] * len(ids)
    splits = samples.values(split_field) if split_field and split_field in schema else [None] * len(ids)
    widths = samples.values("metadata.width") if need_size else [None] * len(ids)
    heights = samples.values("metadata.height") if need_size else [None] * len(ids)
    extras = {f: (_label_values(samples, f) if f in schema else [None] * len(ids)) for f in extra_fields}
    counts = replication_counts(samples, balance_run)
    items = []
    for i, sample_id in enumerate(ids):
        count = counts[sample_id]
        if count <= 0:
            continue
        if image_source == "original" and sar_paths[i]:
            image_path = sar_paths[i]
        else:
            image_path = filepaths[i]
        split = str(splits[i]) if splits[i] is not None else "all"
        if not _SPLIT_NAME.fullmatch(split) or split in (".", ".."):
            # split values become directory names: refuse anything that could leave the export directory
            raise ValueError(f"sample {sample_id}: split {split!r} is not a plain name (letters, digits, . _ -)")
        items.append(
            ExportItem(
                sample_id=sample_id,
                filepath=filepaths[i],
                image_path=image_path,
                split=split,
                label=labels[i],
                count=int(count),
                width=widths[i],
                height=heights[i],
                extra={f: v[i] for f, v in extras.items()},
            )
        )
    dataset = samples._dataset
    mask_targets = dict(dataset.mask_targets.get(label_field) or dataset.default_mask_targets or {})
    return ExportPlan(
        dataset_classes=dataset_classes(samples, label_field),
        items=items,
        dataset_name=dataset.name,
        view_repr=_view_repr(samples),
        label_field=label_field,
        balance_run=balance_run,
        split_field=split_field,
        image_source=image_source,
        seed=seed,
        mask_targets={str(k): v for k, v in mask_targets.items()},
    )


def dataset_classes(samples, label_field: str) -> list[str]:
    """The classes of ``label_field`` over the whole dataset: declared (``classes``/``default_classes``), else the
    sorted distinct labels of every sample (not just the view)."""
    from sardata.views.balance import resolve_label_path

    dataset = samples._dataset
    declared = dataset.classes.get(label_field) or dataset.default_classes
    if declared:
        return [str(c) for c in declared]
    path = resolve_label_path(dataset, label_field)
    if not path.endswith(".label"):
        return []
    try:
        return sorted(str(v) for v in dataset.distinct(path) if v is not None)
    except ValueError:  # labels without a ``label`` attribute (segmentation masks)
        return []


def _view_repr(samples) -> str:
    stages = getattr(samples, "_stages", [])
    return "[" + ", ".join(repr(s) for s in stages) + "]"


class UniqueNames:
    """Hands out unique file stems per directory key: ``img``, ``img-1``, ... (merged datasets repeat stems)."""

    def __init__(self):
        self._taken: dict[str, set] = {}

    def stem(self, key: str, stem: str) -> str:
        taken = self._taken.setdefault(key, set())
        candidate, n = stem, 0
        while candidate in taken:
            n += 1
            candidate = f"{stem}-{n}"
        taken.add(candidate)
        return candidate


def place_replicas(src: str | os.PathLike, out_dir: Path, stem: str, ext: str, count: int) -> list[str]:
    """Copies ``src`` as ``<stem><ext>`` and hardlinks ``count - 1`` replicas to it; returns the file names.

    The first copy is a real copy (the export must not alias the source dataset: a trainer editing files in place
    would change the originals); replicas are hardlinks of that copy, falling back to copies across filesystems.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    first = out_dir / replica_name(stem, 0, ext)
    shutil.copyfile(src, first)
    return link_replicas(first, count)


def link_replicas(first: Path, count: int) -> list[str]:
    """Hardlinks replicas ``1 .. count-1`` of the written file ``first`` beside it; returns all ``count`` names."""
    stem, ext = first.name[: len(first.name) - len(first.suffix)], first.suffix
    names = [replica_name(stem, k, ext) for k in range(count)]
    for name in names[1:]:
        link(first, first.parent / name)
    return names


def link(first: Path, target: Path) -> None:
    """Hardlink ``target`` to ``first``, or copy it when hardlinks are not possible (other filesystem, FAT...)."""
    try:
        os.link(first, target)
    except OSError:
        shutil.copyfile(first, target)


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f)


def request_fingerprint(samples, plan: ExportPlan, fmt: str, options: dict) -> str:
    """Identity of an export request: same dataset content (ids, last modification), view, options → same hash.

    Two exports with the same fingerprint would write the same files, so a repeated export is a no-op.
    """
    modified = samples.values("last_modified_at") if "last_modified_at" in samples.get_field_schema() else []
    payload = {
        "format": fmt,
        "contract": CONTRACT_VERSION,
        "dataset": plan.dataset_name,
        "view": plan.view_repr,
        "options": options,
        "items": [(it.sample_id, it.split, it.count, it.image_path) for it in plan.items],
        "last_modified": max((str(m) for m in modified if m is not None), default=""),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def plan_counts(plan: ExportPlan) -> dict:
    """Exported image and label counts per split and class, replicas included."""
    images: Counter = Counter()
    classes: dict = {}
    for item in plan.items:
        images[item.split] += item.count
        per_split = classes.setdefault(item.split, Counter())
        for name in label_names(item.label):
            per_split[name] += item.count
    return {
        "images": dict(sorted(images.items())),
        "classes": {s: dict(sorted(c.items())) for s, c in sorted(classes.items())},
        "samples": len(plan.items),
        "replicas": sum(it.count for it in plan.items),
    }


def plan_manifest(plan: ExportPlan, fmt: str, fingerprint: str, extra: dict | None = None) -> dict:
    """The manifest fields of an export of ``plan`` (``extra``: what the format module returned, with its
    ``sample_ids``); :func:`exporters.contract.write_manifest` adds the checksums and writes it."""
    from sardata import __version__

    manifest = {
        "format": fmt,
        "dataset": plan.dataset_name,
        "view_stages": plan.view_repr,
        "label_field": plan.label_field,
        "balance_run": plan.balance_run,
        "split_field": plan.split_field,
        "image_source": plan.image_source,
        "seed": plan.seed,
        "counts": plan_counts(plan),
        "fingerprint": fingerprint,
        "sardata_version": __version__,
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **(extra or {}),
    }
    return manifest


def atomic_export_dir(out_dir: str | os.PathLike, overwrite: bool = False):
    """Yields a temporary directory beside ``out_dir``; on success it replaces ``out_dir`` atomically
    (:func:`sardata._io.atomic_dir`).

    On any exception the temporary directory is removed and ``out_dir`` is left as it was. An existing ``out_dir`` is
    replaced only with ``overwrite=True`` (the caller decides about identical exports before calling this).
    """
    out_dir = Path(out_dir).absolute()
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists and holds a different export; pass overwrite=True (--overwrite)")
    return atomic_dir(out_dir, overwrite=True)

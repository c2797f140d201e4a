"""What every sardata loader shares: a tolerant FiftyOne importer base, problem reports, SAR sample fields.

A loader module (``sardata/datasets/<name>.py``) subclasses :class:`SarDatasetImporter` and implements
``_scan()`` (cheap: list the records, parse annotations) and ``_build_sample(record)`` (per sample: read pixels,
stats, display PNG). The base runs ``_build_sample`` in a thread pool, keeps order, and turns any exception into an
:class:`IngestProblem` naming the file, so one broken file never aborts an ingest of thousands (``strict=True``
makes the first problem fatal instead).

``_build_sample`` returns a :class:`fiftyone.Sample` or, on the fast path, the sample's document as a plain dict
(:mod:`sardata.datasets._docs`). The importer is a FiftyOne ``BatchDatasetImporter``: ``add_importer`` calls
:meth:`SarDatasetImporter.import_samples`, which writes the documents in large ``insert_many`` batches and lets
FiftyOne infer and validate the schema only on the first sample of each new shape (:func:`_docs.signature`); the
importer still iterates as :class:`fiftyone.Sample` objects for code that reads it directly.
"""

from __future__ import annotations

import gc
import os
import warnings
from collections import Counter
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator

import fiftyone as fo
import fiftyone.utils.data as foud
import numpy as np

from sardata import archive, sarimage
from sardata.datasets import _docs, _voc


class DatasetNotFoundError(FileNotFoundError):
    """The dataset root does not hold the expected layout."""

    def __init__(self, name: str, root: str | os.PathLike, missing: str):
        super().__init__(
            f"{name} not found at {root}: missing {missing}. Pass the directory that contains it, or the dataset's "
            f"zip/tar archive, as the dataset root (or write a synthetic copy with `sardata synth {name.lower()} OUT`)."
        )


class IngestError(ValueError):
    """Raised in strict mode on the first problem; the message names the file and the reason."""


@dataclass
class IngestProblem:
    """One file that was skipped (or partly ingested) and why."""

    path: str
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def sar_sample_fields(
    source: str | os.PathLike,
    array: np.ndarray | None = None,
    kind: str = "amplitude",
    display_array: np.ndarray | None = None,
    compute_stats: bool = True,
    display_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """The fields every SAR sample carries: ``filepath`` (displayable), ``sar_path``, ``sar_stats``, ``metadata``.

    Args:
        source: the original file (kept as ``sar_path`` for training and statistics).
        array (None): its pixels if already read; read here otherwise.
        kind ("amplitude"): pixel kind of ``array`` for statistics and display (see :func:`sarimage.to_intensity`).
        display_array (None): pixels to render instead of ``array`` (e.g. amplitude of an SLC chip), same kind.
        compute_stats (True): compute speckle statistics.
        display_dir (None): cache directory for display PNGs.
    """
    source = Path(source)
    if array is None:
        array = sarimage.read_image(source)
    shown = array if display_array is None else display_array
    filepath = sarimage.ensure_display_image(source, array=shown, kind=kind, cache_dir=display_dir)
    height, width = array.shape[:2]
    channels = 1 if array.ndim == 2 else array.shape[2]
    fields: dict[str, Any] = {
        "filepath": str(filepath),
        "sar_path": str(source),
        "metadata": fo.ImageMetadata(
            width=int(width), height=int(height), num_channels=int(channels), size_bytes=source.stat().st_size
        ),
    }
    if compute_stats:
        stats = sarimage.speckle_stats(shown, kind=kind)
        fields["sar_stats"] = fo.DynamicEmbeddedDocument(**stats.to_dict())
    return fields


def sar_sample_doc_fields(
    source: str | os.PathLike, width: int, height: int, channels: int, display_dir: str | os.PathLike | None = None
) -> dict[str, Any]:
    """:func:`sar_sample_fields` of an 8-bit image whose size is already known, as document values
    (:mod:`sardata.datasets._docs`) and without statistics: ``filepath``, ``sar_path``, ``metadata``.

    A file the App cannot show as it is (PNG bytes behind a ``.jpg``) is read once more for its grey display PNG.
    """
    source = Path(source)
    if sarimage.is_displayable(source):
        filepath = source
    else:
        filepath = sarimage.ensure_display_image(source, array=sarimage.read_gray_jpeg(source)[0], cache_dir=display_dir)
    return {
        "filepath": str(filepath),
        "sar_path": str(source),
        "metadata": _docs.image_metadata(width, height, channels, source.stat().st_size),
    }


class SarDatasetImporter(foud.BatchDatasetImporter, foud.GenericSampleDatasetImporter):
    """Base importer for the sardata loaders: writes batches of sample documents, or yields :class:`fiftyone.Sample`
    objects when iterated.

    Args:
        dataset_dir: the dataset root.
        strict (False): raise on the first problem instead of reporting it and going on.
        compute_stats (True): compute ``sar_stats`` for every sample.
        display_dir (None): where cached 8-bit display PNGs go (default ``$SARDATA_CACHE/display``).
        num_workers (None): threads decoding images (default: number of CPUs, at most 8).
        shuffle (False): randomly shuffle the order of the samples.
        seed (None): random seed used when shuffling.
        max_samples (None): maximum number of samples to import.
    """

    #: Human-readable dataset name, used in messages.
    NAME: ClassVar[str] = "SAR dataset"

    def __init__(
        self,
        dataset_dir,
        strict=False,
        compute_stats=True,
        display_dir=None,
        num_workers=None,
        shuffle=False,
        seed=None,
        max_samples=None,
    ):
        super().__init__(dataset_dir=dataset_dir, shuffle=shuffle, seed=seed, max_samples=max_samples)
        self.dataset_dir = os.path.abspath(os.path.expanduser(str(dataset_dir)))
        self.strict = strict
        self.compute_stats = compute_stats
        self.display_dir = display_dir
        self.num_workers = num_workers or min(8, os.cpu_count() or 1)
        self.problems: list[IngestProblem] = []
        self.archives: list[str] = []  # the archive(s) the layout was extracted from, if any
        self.label_counts: dict[str, Counter] = {}
        self._records: list[Any] = []
        self._iter: Iterator[fo.Sample] | None = None
        self._pool: ThreadPoolExecutor | None = None

    # ---------------------------------------------------------------- for subclasses

    def _verify(self) -> None:
        """Raises :class:`DatasetNotFoundError` when the root lacks the layout. Default: the root must exist."""
        if not os.path.isdir(self.dataset_dir):
            raise DatasetNotFoundError(self.NAME, self.dataset_dir, "the directory itself")

    def _scan(self) -> list[Any]:
        """Lists the records to import (parse annotation files here; report bad ones with :meth:`_problem`)."""
        raise NotImplementedError

    def _build_sample(self, record: Any) -> fo.Sample | dict:
        """Builds one sample (reads pixels): a :class:`fiftyone.Sample`, or its document (:func:`_docs.sample`).
        Raise an exception with a clear message to skip the record."""
        raise NotImplementedError

    def _dataset_info(self) -> dict:
        """Extra dataset info (``classes``, ``mask_targets``, ...)."""
        return {}

    def _problem(self, path: str | os.PathLike, reason: str) -> None:
        """Reports a problem with one file; raises in strict mode."""
        problem = IngestProblem(str(path), reason)
        if self.strict:
            raise IngestError(f"{problem.path}: {problem.reason}")
        self.problems.append(problem)
        warnings.warn(f"{self.NAME}: skipped {problem.path}: {problem.reason}", stacklevel=2)

    def _count_label(self, label: str, status: str) -> None:
        """Counts one annotated label as ``kept``, ``clipped`` or ``dropped`` (the ingest summary prints these)."""
        self.label_counts.setdefault(str(label), Counter())[status] += 1

    def _take_voc_objects(self, path, annotation_objects, size, classes) -> list:
        """Resolves one VOC file's objects (:func:`sardata.datasets._voc.resolve_objects`), counting every label and
        reporting each dropped one as a problem naming the file; returns ``[(object, half-open span, clipped), ...]``
        for the kept ones (``clipped``: the box reached past the image and was clipped to it)."""
        _, resolved = _voc.resolve_objects(annotation_objects, size, classes)
        kept = []
        for i, (obj, verdict) in enumerate(resolved):
            self._count_label(obj.name, verdict.status)
            if verdict.status == "dropped":
                self._problem(path, f"object {i + 1}: {verdict.reason}; object dropped")
            else:
                kept.append((obj, verdict.span, verdict.status == "clipped"))
        return kept

    # ---------------------------------------------------------------- importer protocol

    def _locate(self) -> None:
        """Finds the layout in TorchGeo's order: extracted → archive → :class:`DatasetNotFoundError`.

        ``dataset_dir`` may be the extracted layout, the dataset's zip/tar archive, or a folder holding the
        archive(s) (OpenSARShip: one zip per scene). An archive is verified and extracted once into
        ``$SARDATA_CACHE/archives`` (:func:`sardata.archive.extract_cached`); the samples then point into that
        cache. An archive holding one top-level folder (``Official-SSDD/``) is entered.
        """
        given = Path(self.dataset_dir)
        if given.is_file():
            if not archive.is_archive(given):
                raise DatasetNotFoundError(self.NAME, given, f"a folder or a {'/'.join(archive.ARCHIVE_SUFFIXES)} "
                                           "archive (this is another kind of file)")
            archives = [given]
        else:
            try:
                return self._verify()
            except DatasetNotFoundError:
                archives = archive.find_archives(given)
                if not archives:
                    raise
        self.archives = [str(a) for a in archives]
        extracted = archive.extract_cached(archives)
        self.dataset_dir = str(extracted)
        try:
            return self._verify()
        except DatasetNotFoundError:
            entries = [p for p in extracted.iterdir() if not p.name.startswith(".")]
            if len(entries) != 1 or not entries[0].is_dir():
                raise
        self.dataset_dir = str(entries[0])
        self._verify()

    def setup(self):
        self._locate()
        self.problems = []
        self.label_counts = {}
        with _old_objects_frozen():
            self._records = self._preprocess_list(list(self._scan()))

    def __len__(self):
        return len(self._records)

    def __iter__(self):
        self._iter = self._generate()
        return self

    def __next__(self) -> fo.Sample:
        if self._iter is None:
            self.__iter__()
        result = next(self._iter)
        return fo.Sample.from_dict(result) if isinstance(result, dict) else result

    def _safe_build(self, record: Any) -> fo.Sample | dict | IngestProblem:
        try:
            return self._build_sample(record)
        except Exception as e:  # one broken file must not abort the ingest
            path = getattr(record, "path", None) or getattr(record, "image_path", None) or str(record)
            reason = str(e) if isinstance(e, (ValueError, OSError)) else f"{type(e).__name__}: {e}"
            return IngestProblem(str(path), reason)

    def _safe_build_doc(self, record: Any) -> dict | IngestProblem:
        """:meth:`_safe_build` as a document (a :class:`fiftyone.Sample` is converted here, in the worker)."""
        result = self._safe_build(record)
        if isinstance(result, fo.Sample):
            result = {k: v for k, v in result.to_mongo_dict().items() if v is not None}
        return result

    def _executor(self) -> ThreadPoolExecutor:
        """The importer's worker threads (``num_workers``), shut down by :meth:`close`."""
        self._pool = self._pool or ThreadPoolExecutor(max_workers=self.num_workers)
        return self._pool

    def _generate(self, build=None) -> Iterator[fo.Sample | dict]:
        # map() keeps the order; decoding releases the GIL so threads overlap the I/O and the numpy work
        for result in self._executor().map(build or self._safe_build, self._records):
            if isinstance(result, IngestProblem):
                self._problem(result.path, result.reason)
                continue
            yield result

    #: Documents written per ``insert_many`` (also what a kill can leave half-written in a staging dataset).
    INSERT_BATCH: ClassVar[int] = 256

    def import_samples(self, dataset: fo.Dataset, tags=None, progress=None) -> list[str]:
        """Adds every sample to ``dataset`` (FiftyOne's ``BatchDatasetImporter`` protocol; ``add_importer`` calls it
        between ``setup()`` and ``close()``) and the importer's dataset info, as ``add_importer`` does for others.

        Documents go to the database in ``insert_many`` batches of :attr:`INSERT_BATCH`, in record order. The first
        document of each new :func:`_docs.signature` goes through ``dataset.add_samples`` instead, so FiftyOne
        itself expands the schema from it and validates it, exactly as if every sample were added that way (with
        ``dynamic=False`` FiftyOne reads the schema off the first sample that has a field, so later samples of the
        same signature add nothing to it). What is not done per sample, as in FiftyOne's own
        ``FiftyOneDatasetImporter``: validating the values nested in labels against the schema (the loaders build
        them with :mod:`sardata.datasets._docs`, whose output is tested against FiftyOne's classes).
        """
        import fiftyone.core.utils as fou
        from pymongo.errors import BulkWriteError

        tags = [tags] if isinstance(tags, str) else list(tags or [])
        coll = dataset._sample_collection
        dataset_id = dataset._doc.id
        seen: set[tuple] = set()
        pending: list[dict] = []
        ids: list[str] = []

        def flush():
            if pending:
                try:
                    coll.insert_many(pending, ordered=True)  # adds `_id` to each dict
                except BulkWriteError as e:  # name the reason, as add_samples does
                    raise ValueError(e.details["writeErrors"][0]["errmsg"]) from e
                ids.extend(str(d["_id"]) for d in pending)
                pending.clear()

        with _old_objects_frozen(), fou.ProgressBar(total=len(self), progress=progress) as pb:
            for doc in pb(self._generate(self._safe_build_doc)):
                if tags:  # as FiftyOne's importers do: sample.tags.extend(tags)
                    doc["tags"] = list(doc.get("tags") or []) + tags
                sig = _docs.signature(doc)
                if sig not in seen:  # a new shape: FiftyOne expands the schema from it and validates it
                    flush()
                    ids.extend(dataset.add_samples([fo.Sample.from_dict(doc)], progress=False))
                    seen.add(sig)
                    continue
                now = _utcnow()
                doc["_dataset_id"] = dataset_id
                doc["created_at"] = now
                doc["last_modified_at"] = now
                pending.append(doc)
                if len(pending) >= self.INSERT_BATCH:
                    flush()
            flush()
        if self.has_dataset_info:
            info = self.get_dataset_info()
            if info:
                foud.parse_dataset_info(dataset, info)
        return ids

    def close(self, *args):
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    @property
    def has_sample_field_schema(self):
        return False

    @property
    def has_dataset_info(self):
        return True

    def get_dataset_info(self):
        info = {"sardata_source": self.NAME, "sardata_root": self.dataset_dir}
        if self.archives:
            info["sardata_archives"] = list(self.archives)
        info.update(self._dataset_info())
        return info

    def report(self) -> dict:
        """The problems and label counts so far, as plain data (``load`` stores them in ``dataset.info``
        as ``ingest_problems`` and ``ingest_labels``: ``{class: {"kept": n, "clipped": n, "dropped": n}}``)."""
        labels = {
            name: {status: int(counts.get(status, 0)) for status in ("kept", "clipped", "dropped")}
            for name, counts in sorted(self.label_counts.items())
        }
        return {"problems": [p.to_dict() for p in self.problems], "labels": labels}


@contextmanager
def _old_objects_frozen():
    """Keeps the objects that exist now (FiftyOne's, mongoengine's, ... modules: about a million) out of the garbage
    collector's full passes while the block runs (:func:`gc.freeze`, undone by :func:`gc.unfreeze` at the end).

    Building thousands of samples triggers several full collections, each walking that whole heap: half the CPU of
    building the documents. New objects are still collected as usual. Left alone when the process froze objects
    itself (``gc.get_freeze_count()``) or disabled the collector.
    """
    if gc.get_freeze_count() or not gc.isenabled():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _utcnow():
    """The timestamp ``add_samples`` stores in ``created_at`` / ``last_modified_at`` (naive UTC)."""
    from datetime import datetime

    return datetime.utcnow()


def iter_files(root: str | os.PathLike, suffixes: Iterable[str]) -> list[Path]:
    """Files under ``root`` with one of ``suffixes`` (case-insensitive), sorted for deterministic order."""
    suffixes = {s.lower() for s in suffixes}
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)

"""What every sardata loader shares: a tolerant FiftyOne importer base, problem reports, SAR sample fields.

A loader module (``sardata/datasets/<name>.py``) subclasses :class:`SarDatasetImporter` and implements
``_scan()`` (cheap: list the records, parse annotations) and ``_build_sample(record)`` (per sample: read pixels,
stats, display PNG). The base runs ``_build_sample`` in a thread pool, keeps order, and turns any exception into an
:class:`IngestProblem` naming the file, so one broken file never aborts an ingest of thousands (``strict=True``
makes the first problem fatal instead).
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator

import fiftyone as fo
import fiftyone.utils.data as foud
import numpy as np

from sardata import archive, sarimage
from sardata.datasets import _voc


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


class SarDatasetImporter(foud.GenericSampleDatasetImporter):
    """Base importer for the sardata loaders (yields :class:`fiftyone.Sample` objects).

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

    def _build_sample(self, record: Any) -> fo.Sample:
        """Builds one sample (reads pixels). Raise an exception with a clear message to skip the record."""
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
        self._records = self._preprocess_list(list(self._scan()))

    def __len__(self):
        return len(self._records)

    def __iter__(self):
        self._iter = self._generate()
        return self

    def __next__(self) -> fo.Sample:
        if self._iter is None:
            self.__iter__()
        return next(self._iter)

    def _safe_build(self, record: Any) -> fo.Sample | IngestProblem:
        try:
            return self._build_sample(record)
        except Exception as e:  # one broken file must not abort the ingest
            path = getattr(record, "path", None) or getattr(record, "image_path", None) or str(record)
            reason = str(e) if isinstance(e, (ValueError, OSError)) else f"{type(e).__name__}: {e}"
            return IngestProblem(str(path), reason)

    def _generate(self) -> Iterator[fo.Sample]:
        self._pool = self._pool or ThreadPoolExecutor(max_workers=self.num_workers)
        # map() keeps the order; decoding releases the GIL so threads overlap the I/O and the numpy work
        for result in self._pool.map(self._safe_build, self._records):
            if isinstance(result, IngestProblem):
                self._problem(result.path, result.reason)
                continue
            yield result

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


def iter_files(root: str | os.PathLike, suffixes: Iterable[str]) -> list[Path]:
    """Files under ``root`` with one of ``suffixes`` (case-insensitive), sorted for deterministic order."""
    suffixes = {s.lower() for s in suffixes}
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)

"""FUSAR-Ship 1.0 (Gaofen-3 ship chips matched with AIS): a tolerant FiftyOne importer.

Hou et al., "FUSAR-Ship: building a high-resolution SAR-AIS matchup dataset of Gaofen-3 for ship detection and
recognition", Sci. China Inf. Sci. 2020 (release "FUSAR-Ship Dataset version 1.0", Fudan University, 2020).

Dataset features: Gaofen-3 L1A, 5243 chips of 512×512 uint8 with the ship at the centre, 15 categories and their
subcategories, AIS MMSI and size per chip.

Dataset format::

    <root>/<Category>/<SubCategory>/Ship_C<xx>S<yy>N<zzzz>.tiff    uint8, single channel
    <root>/meta.csv      tab-separated: id mmsi length width polarMode centerLookAngle heightspace widthspace path

``path`` is ``Category\\SubCategory`` (Windows separator). meta.csv has rows whose chips do not exist (6358 rows for
5243 chips): they are counted in ``dataset.info["meta_rows_without_chip"]``, not reported as errors. Chips without a
row are ingested with their category from the folders.

Dataset classes: the top-level folder (``ground_truth``), with ``subcategory`` beside it. No official split
(``split`` is None).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fiftyone as fo
import numpy as np

from sardata import sarimage
from sardata.datasets._base import DatasetNotFoundError, SarDatasetImporter, iter_files
from sardata.safepath import UnsafePathError, safe_join
from sardata.datasets._base import sar_sample_fields
from sardata.datasets.taxonomy import FUSAR_CATEGORIES

SOURCE = "fusar"
META_FILE = "meta.csv"
_CHIP_ID = re.compile(r"^Ship_C(?P<c>\d+)S(?P<s>\d+)N(?P<n>\d+)$", re.IGNORECASE)
#: meta.csv column → (sample field, type).
_META_COLUMNS: dict[str, tuple[str, type]] = {
    "mmsi": ("mmsi", int),
    "length": ("length", float),
    "width": ("width", float),
    "polarmode": ("polar_mode", str),
    "centerlookangle": ("center_look_angle", float),
    "heightspace": ("height_space", float),
    "widthspace": ("width_space", float),
}


@dataclass
class FusarChip:
    """One chip file and its meta.csv row (None when the row is missing)."""

    path: Path
    chip_id: str
    category: str
    subcategory: str | None
    meta: dict[str, Any] | None


def _typed(value: str, kind: type) -> Any:
    value = value.strip()
    if value == "" or value.lower() == "nan":
        return None
    if kind is int:
        number = float(value)
        if not number.is_integer():
            raise ValueError(f"{value!r} is not an integer")
        return int(number)
    if kind is float:
        number = float(value)
        return number if np.isfinite(number) else None
    return value


class FUSARShipImporter(SarDatasetImporter):
    """Imports FUSAR-Ship chips (one sample per ``.tif``/``.tiff`` chip under ``<Category>/<SubCategory>/``).

    Args:
        dataset_dir: the ``FUSAR_Ship1.0`` folder (or its parent).
        strict (False): raise on the first problem instead of reporting it.
        compute_stats (True): compute ``sar_stats``.
        display_dir (None): cache directory for display PNGs.
        num_workers (None): decoding threads.
        shuffle (False): shuffle the samples.
        seed (None): shuffle seed.
        max_samples (None): import at most this many samples.
    """

    NAME = "FUSAR-Ship"

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
        super().__init__(
            dataset_dir, strict=strict, compute_stats=compute_stats, display_dir=display_dir,
            num_workers=num_workers, shuffle=shuffle, seed=seed, max_samples=max_samples,
        )
        self._counts: dict[str, Any] = {}
        self._classes: list[str] = []

    # ------------------------------------------------------------------ discovery

    @property
    def root(self) -> Path:
        """The folder holding meta.csv and the category folders (the given root, or its only subfolder with them)."""
        root = Path(self.dataset_dir)
        if not (root / META_FILE).is_file() and root.is_dir():
            inner = [p for p in root.iterdir() if p.is_dir() and (p / META_FILE).is_file()]
            if len(inner) == 1:
                return inner[0]
        return root

    def _verify(self) -> None:
        super()._verify()
        root = self.root
        if not (root / META_FILE).is_file() and not iter_files(root, (".tif", ".tiff")):
            raise DatasetNotFoundError(self.NAME, self.dataset_dir, f"{META_FILE} and <Category>/<SubCategory>/*.tiff")

    def _read_meta(self) -> dict[str, dict[str, Any]]:
        """meta.csv rows by id; bad rows are reported and left out."""
        root = self.root
        path = root / META_FILE
        rows: dict[str, dict[str, Any]] = {}
        self._counts.update(meta_rows=0, duplicate_meta_rows=0)
        if not path.is_file():
            for other in ("meta.xls", "meta.xlsx"):
                if (root / other).is_file():
                    self._problem(root / other, f"spreadsheet metadata is not read; save it as {META_FILE} "
                                  "(tab-separated) to get the AIS fields")
            return rows
        try:
            text = path.read_bytes().decode("utf-8-sig", errors="replace")
        except OSError as e:
            self._problem(path, f"cannot read ({e.strerror})")
            return rows
        lines = text.splitlines()
        if not lines:
            self._problem(path, "empty file")
            return rows
        delimiter = "\t" if "\t" in lines[0] else ","
        reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)
        header = [h.strip().lower() for h in next(reader)]
        missing = {"id", "path"} - set(header)
        if missing:
            self._problem(path, f"header lacks column(s) {sorted(missing)}; got {header}")
            return rows
        for line_no, values in self._csv_rows(reader, path):
            if not values or all(not v.strip() for v in values):
                continue
            where = f"{path} line {line_no}"
            if len(values) != len(header):
                self._problem(where, f"{len(values)} fields, the header has {len(header)}; row ignored")
                continue
            raw = dict(zip(header, values))
            chip_id = raw["id"].strip()
            meta_path = raw["path"].strip()
            try:
                folder = safe_join(root, meta_path)
                meta = {field: _typed(raw[column], kind) for column, (field, kind) in _META_COLUMNS.items()
                        if column in raw}
            except (ValueError, UnsafePathError) as e:
                self._problem(where, f"bad value ({e}); row ignored")
                continue
            self._counts["meta_rows"] += 1
            if chip_id in rows:
                self._counts["duplicate_meta_rows"] += 1
                continue
            meta["meta_path"] = meta_path
            meta["_folder"] = folder
            rows[chip_id] = meta
        return rows

    def _csv_rows(self, reader, path: Path):
        """``(line number, values)`` of each row; a row the csv module rejects (e.g. a field over its size limit) is
        reported and skipped instead of ending the whole file."""
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                self._problem(f"{path} line {reader.line_num}", f"unreadable row ({e}); row ignored")
                continue
            yield reader.line_num, values

    def _scan(self) -> list[FusarChip]:
        root = self.root.resolve()
        self._counts = {}
        meta = self._read_meta()
        chips: list[FusarChip] = []
        seen_ids: set[str] = set()
        for path in iter_files(root, (".tif", ".tiff")):
            parts = path.relative_to(root).parts
            if any(part.startswith(".") for part in parts):  # hidden: OS sidecars, half-written output
                continue
            if len(parts) < 2:
                self._problem(path, "chip is not inside a <Category>/ folder; skipped")
                continue
            category, subcategory = parts[0], (parts[1] if len(parts) > 2 else None)
            chip_id = path.stem
            row = meta.get(chip_id)
            if row is not None:
                expected = row["_folder"]
                if expected != path.parent.resolve():
                    self._problem(path, f"meta.csv puts {chip_id} in {row['meta_path']!r}; the folder "
                                  f"{'/'.join(parts[:-1])!r} is used for the label")
            seen_ids.add(chip_id)
            chips.append(FusarChip(path, chip_id, category, subcategory, row))
        without_chip = sorted(set(meta) - seen_ids)
        self._counts.update(
            chips=len(chips),
            chips_without_meta=sum(1 for c in chips if c.meta is None),
            meta_rows_without_chip=len(without_chip),
            meta_ids_without_chip_examples=without_chip[:20],
        )
        seen_categories = {c.category for c in chips}
        self._classes = [c for c in FUSAR_CATEGORIES if c in seen_categories]
        self._classes += sorted(seen_categories - set(FUSAR_CATEGORIES))
        return chips

    # ------------------------------------------------------------------ samples

    def _build_sample(self, record: FusarChip) -> fo.Sample:
        array = sarimage.read_image(record.path)
        if array.ndim == 3:
            if not all(np.array_equal(array[..., 0], array[..., i]) for i in range(1, array.shape[2])):
                raise ValueError(f"{record.path}: expected a single-channel chip, got shape {array.shape}")
            array = array[..., 0]  # grey saved as RGB/RGBA: one channel carries it all
        fields = sar_sample_fields(record.path, array=array, kind="amplitude",
                                   compute_stats=self.compute_stats, display_dir=self.display_dir)
        match = _CHIP_ID.match(record.chip_id)
        meta = {k: v for k, v in (record.meta or {}).items() if not k.startswith("_")}
        return fo.Sample(
            **fields,
            ground_truth=fo.Classification(label=record.category),
            subcategory=record.subcategory,
            split=None,
            source=SOURCE,
            chip_id=record.chip_id,
            category_index=int(match["c"]) if match else None,
            subcategory_index=int(match["s"]) if match else None,
            has_meta=record.meta is not None,
            **meta,
        )

    def _dataset_info(self) -> dict:
        return {"classes": list(self._classes), **self._counts}

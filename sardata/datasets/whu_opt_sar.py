"""WHU-OPT-SAR land-use segmentation (GF-1 optical + GF-3 SAR tiles), sliced into patches for FiftyOne.

Dataset features:
    * 100 co-registered tile pairs of 5556 × 3704 pixels at 5 m, Hubei province, China
    * optical: GF-1, 4 bands (R, G, B, NIR); SAR: GF-3, 1 band
    * dense labels, 8 values (below); official 80/20 split by tile
    * `https://github.com/AmberHen/WHU-OPT-SAR-dataset`; cite Li et al., "MCANet", JAG 2022,
      doi 10.1016/j.jag.2021.102638

Dataset format::

    <root>/optical/<tile>.tif   (H, W, 4) or (4, H, W)
    <root>/sar/<tile>.tif       (H, W)
    <root>/lbl/<tile>.tif       (H, W) label values
    <root>/The division of the dataset.txt   optional: ``train:`` / names / blank / ``test:`` / names, CRLF

The root may also be the folder that contains ``whu-opt-sar/``.

Dataset classes (label value → name): 0 background, 10 farmland, 20 city, 30 village, 40 water, 50 forest, 60 road,
70 others. Any other value (derived tilings use 255 for padding) is reported once per tile as a problem with the
label file and mapped to background; the patch keeps the count in ``invalid_label_pixels``.

Ingest: every tile is cut into non-overlapping ``patch_size`` squares from the top-left corner; the incomplete
right and bottom borders (5556 mod 256 = 180 columns, 3704 mod 256 = 120 rows for full tiles) are dropped, as in
seed 003. One sample per patch:

* ``sar_path``: the SAR patch as a lossless TIFF (dtype kept); ``filepath``: its cached 8-bit display PNG
* ``optical_path``: the optical patch as a lossless TIFF (H, W, bands)
* ``ground_truth``: :class:`fiftyone.Segmentation` whose ``mask_path`` is a PNG of the raw label values
  (0..70; the dataset's ``mask_targets`` name them)
* ``tile_id``, ``window`` = ``[x, y, width, height]`` in tile pixels, ``split``, ``source`` = ``"whu_opt_sar"``
* ``class_fractions`` (class name → fraction of the patch's pixels), ``dominant_class``, ``invalid_label_pixels``

Split: from the official split file when the root holds it (tiles it does not list get ``split=None`` and are
reported); otherwise a seeded 80/20 tile split: the sorted tile names found on disk are permuted with
``numpy.random.default_rng(split_seed)`` and the first ``round(0.2·n)`` are ``test``.

Patch files go to ``<cache>/whu_opt_sar/<tile>_<key>/`` (``<cache>`` = :func:`sardata.sarimage.default_cache_dir`),
where ``key`` hashes the three tile files' paths, sizes and mtimes, so a rerun reuses them and an edited tile gets new
ones. Tiles are memory-mapped when stored uncompressed (the usual case) and otherwise decoded once and kept only
while their patches are being built (at most ``num_workers + 1`` tiles in memory).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import fiftyone as fo
import numpy as np

from sardata import sarimage
from sardata.sarimage import SarReadError
from sardata._io import atomic_path
from sardata.datasets._base import DatasetNotFoundError, SarDatasetImporter, sar_sample_fields

#: Label value → class name (the dataset's README).
CLASS_VALUES: dict[int, str] = {
    0: "background",
    10: "farmland",
    20: "city",
    30: "village",
    40: "water",
    50: "forest",
    60: "road",
    70: "others",
}
#: Class names in label-value order.
CLASSES: list[str] = list(CLASS_VALUES.values())
#: The official split file's name (with its spaces).
SPLIT_FILE_NAME = "The division of the dataset.txt"
#: Tile folders, in the order their problems are checked.
MODALITIES = ("sar", "optical", "lbl")
TILE_SUFFIXES = (".tif", ".tiff")

_VALID_LABEL = np.zeros(256, dtype=bool)
_VALID_LABEL[list(CLASS_VALUES)] = True
_SPLIT_HEADER = re.compile(r"^(train|training|val|valid|validation|test|testing)\s*:\s*$", re.IGNORECASE)
_SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                "test": "test", "testing": "test"}


# --------------------------------------------------------------------------------------------- split file


def parse_split_file(path: str | os.PathLike) -> dict[str, str]:
    """Reads the official split file into ``{tile_id: "train" | "val" | "test"}`` (tile ids without extension).

    Accepts CRLF or LF, a UTF-8 BOM, blank lines anywhere and ``train:``/``test:`` (or ``val:``) headers in any case.

    Raises:
        ValueError: a tile name before any header, or one tile listed under two splits (names file and line).
    """
    path = Path(path)
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    splits: dict[str, str] = {}
    current = None
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        header = _SPLIT_HEADER.match(line)
        if header:
            current = _SPLIT_NAMES[header.group(1).lower()]
            continue
        if current is None:
            raise ValueError(f"{path}:{line_no}: tile name {line!r} before any 'train:'/'test:' header")
        tile_id = _tile_stem(line)
        if splits.get(tile_id, current) != current:
            raise ValueError(f"{path}:{line_no}: tile {tile_id} is listed under both {splits[tile_id]} and {current}")
        splits[tile_id] = current
    return splits


def seeded_split(tile_ids: list[str], seed: int = 0, test_fraction: float = 0.2) -> dict[str, str]:
    """80/20 tile split used when there is no split file: permute the sorted ids, the first ``round(f·n)`` are test."""
    ordered = sorted(tile_ids)
    n_test = round(test_fraction * len(ordered))
    test = set(np.random.default_rng(seed).permutation(len(ordered))[:n_test].tolist())
    return {tile_id: ("test" if i in test else "train") for i, tile_id in enumerate(ordered)}


def _tile_stem(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return base[: -len(Path(base).suffix)] if Path(base).suffix.lower() in TILE_SUFFIXES else base


# --------------------------------------------------------------------------------------------- TIFF access


@dataclass(frozen=True)
class TiffLayout:
    """Size of one tile file, from its header."""

    height: int
    width: int
    bands: int
    dtype: str


def read_tiff_layout(path: str | os.PathLike) -> TiffLayout:
    """Reads a TIFF's header (no pixels) and checks that its pixel data lies inside the file.

    Raises:
        SarReadError: not a TIFF, unreadable header, no Y/X axes, or truncated (data runs past the end of the file).
    """
    import tifffile

    path = Path(path)
    fmt = sarimage.sniff_format(path)
    if fmt != "tiff":
        raise SarReadError(f"{path}: not a TIFF ({fmt} bytes)")
    file_size = path.stat().st_size
    try:
        with tifffile.TiffFile(str(path)) as tif:
            series = tif.series[0]
            axes, shape = series.axes, series.shape
            data_end = 0
            for page in series.pages:
                if page is None:
                    continue
                ends = [o + c for o, c in zip(page.dataoffsets, page.databytecounts)]
                data_end = max([data_end, *ends])
            dtype = str(series.dtype)
    except Exception as e:  # tifffile raises many types on corrupt headers
        raise SarReadError(f"{path}: cannot read TIFF header ({type(e).__name__}: {e})") from e
    if data_end > file_size:
        raise SarReadError(f"{path}: truncated TIFF (pixel data runs to byte {data_end}, file has {file_size} bytes)")
    if "Y" not in axes or "X" not in axes:
        raise SarReadError(f"{path}: TIFF axes {axes!r} have no Y/X image plane")
    bands = int(np.prod([n for a, n in zip(axes, shape) if a not in "YX"], dtype=np.int64))
    return TiffLayout(int(shape[axes.index("Y")]), int(shape[axes.index("X")]), bands, dtype)


def read_tile(path: str | os.PathLike) -> np.ndarray:
    """A tile's pixels as ``(H, W)`` or ``(H, W, C)``: a read-only memory map when uncompressed, else decoded.

    Raises:
        SarReadError: the pixels cannot be decoded (names the file).
    """
    import tifffile

    path = str(path)
    try:
        with tifffile.TiffFile(path) as tif:
            axes = tif.series[0].axes
        try:
            array = tifffile.memmap(path, mode="r")
        except ValueError:  # compressed or not contiguous: decode it once
            array = tifffile.imread(path)
    except Exception as e:
        raise SarReadError(f"{path}: cannot read pixels ({type(e).__name__}: {e})") from e
    array = np.moveaxis(array, [axes.index("Y"), axes.index("X")], [0, 1])
    if array.ndim > 3:
        array = array.reshape(array.shape[0], array.shape[1], -1)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    return array


def write_tiff_atomic(path: Path, array: np.ndarray) -> Path:
    """Writes a patch as an uncompressed TIFF (bands last), atomically."""
    import tifffile

    kwargs: dict = {"photometric": "minisblack"}
    if array.ndim == 3:
        kwargs = {"photometric": "rgb", "extrasamples": ["unspecified"] * (array.shape[2] - 3)}
        if array.shape[2] < 3:
            kwargs = {"photometric": "minisblack", "planarconfig": "contig"}
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, array, **kwargs)
    return path


# --------------------------------------------------------------------------------------------- records


@dataclass
class Tile:
    """One tile triple that passed the header checks."""

    tile_id: str
    sar_path: Path
    optical_path: Path
    lbl_path: Path
    width: int
    height: int
    split: str | None
    cache_key: str = ""


@dataclass
class PatchRecord:
    """One patch to build: its tile and top-left corner."""

    tile: Tile
    x: int
    y: int
    size: int

    @property
    def path(self) -> str:
        return str(self.tile.sar_path)


@dataclass
class _TileArrays:
    sar: np.ndarray
    optical: np.ndarray
    lbl: np.ndarray


@dataclass
class _CacheEntry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrays: _TileArrays | None = None
    error: Exception | None = None
    users: int = 0


class _TileCache:
    """Tile pixels shared by the patch workers: loaded once, dropped when their last patch is built.

    ``max_tiles`` bounds memory when the records are shuffled (least recently used idle tiles are dropped; a dropped
    tile is read again if more of its patches come).
    """

    def __init__(self, load, pending: Counter, max_tiles: int):
        self._load = load
        self._pending = pending
        self._max_tiles = max(1, max_tiles)
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _CacheEntry] = OrderedDict()

    def acquire(self, tile: Tile) -> _TileArrays:
        with self._lock:
            entry = self._entries.setdefault(tile.tile_id, _CacheEntry())
            self._entries.move_to_end(tile.tile_id)
            entry.users += 1
            self._evict_idle()
        with entry.lock:
            if entry.arrays is None and entry.error is None:
                try:
                    entry.arrays = self._load(tile)
                except Exception as e:
                    entry.error = e
        if entry.error is not None:
            self.release(tile)
            raise entry.error
        return entry.arrays

    def release(self, tile: Tile) -> None:
        with self._lock:
            entry = self._entries.get(tile.tile_id)
            if entry is None:
                return
            entry.users -= 1
            self._pending[tile.tile_id] -= 1
            if self._pending[tile.tile_id] <= 0 and entry.users <= 0:
                del self._entries[tile.tile_id]
            self._evict_idle()

    def _evict_idle(self) -> None:
        """Drops least recently used tiles nobody is reading until at most ``max_tiles`` remain (lock held)."""
        idle = [key for key, e in self._entries.items() if e.users <= 0]
        while len(self._entries) > self._max_tiles and idle:
            del self._entries[idle.pop(0)]

    def __len__(self) -> int:
        return len(self._entries)


# --------------------------------------------------------------------------------------------- importer


class WHUOptSarImporter(SarDatasetImporter):
    """WHU-OPT-SAR tiles → one FiftyOne sample per SAR patch (see the module docstring for fields and split).

    Args:
        dataset_dir: the dataset root (holds ``optical/``, ``sar/``, ``lbl/``, or a ``whu-opt-sar/`` folder that does).
        strict (False): raise on the first problem instead of reporting it and going on.
        compute_stats (True): compute ``sar_stats`` for every patch.
        display_dir (None): where cached 8-bit display PNGs go (default ``$SARDATA_CACHE/display``).
        num_workers (None): threads building patches (default: number of CPUs, at most 8).
        shuffle (False): randomly shuffle the order of the samples.
        seed (None): random seed used when shuffling.
        max_samples (None): maximum number of samples to import.
        patch_size (256): side of the square patches; incomplete border patches are dropped.
        split_seed (0): seed of the 80/20 tile split used when the root has no split file.
        patch_dir (None): where patch files go (default ``<cache>/whu_opt_sar``).
    """

    NAME: ClassVar[str] = "WHU-OPT-SAR"
    SOURCE: ClassVar[str] = "whu_opt_sar"

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
        patch_size=256,
        split_seed=0,
        patch_dir=None,
    ):
        super().__init__(
            dataset_dir,
            strict=strict,
            compute_stats=compute_stats,
            display_dir=display_dir,
            num_workers=num_workers,
            shuffle=shuffle,
            seed=seed,
            max_samples=max_samples,
        )
        if int(patch_size) < 1:
            raise ValueError(f"patch_size must be a positive number of pixels, got {patch_size!r}")
        self.patch_size = int(patch_size)
        self.split_seed = split_seed
        self.patch_dir = patch_dir
        self.split_source: str | None = None
        self._reported: set[tuple[str, str]] = set()
        self._reported_lock = threading.Lock()
        self._label_checked: set[str] = set()
        self._cache: _TileCache | None = None

    # ---------------------------------------------------------------- layout and scan

    def _verify(self) -> None:
        root = Path(self.dataset_dir)
        if not all((root / m).is_dir() for m in MODALITIES) and all(
            (root / "whu-opt-sar" / m).is_dir() for m in MODALITIES
        ):
            self.dataset_dir = str(root / "whu-opt-sar")
            root = Path(self.dataset_dir)
        missing = [f"{m}/" for m in MODALITIES if not (root / m).is_dir()]
        if missing:
            raise DatasetNotFoundError(self.NAME, root, "the tile folder(s) " + ", ".join(missing))

    def setup(self):
        self._reported = set()
        self._label_checked = set()
        super().setup()
        pending = Counter(record.tile.tile_id for record in self._records)
        self._cache = _TileCache(self._load_tile, pending, max_tiles=self.num_workers + 1)

    def _scan(self) -> list[PatchRecord]:
        root = Path(self.dataset_dir)
        files = {m: _tile_files(root / m) for m in MODALITIES}
        tile_ids = sorted(set().union(*files.values()))
        splits = self._splits(root, tile_ids)
        records: list[PatchRecord] = []
        for tile_id in tile_ids:
            tile = self._check_tile(tile_id, {m: files[m].get(tile_id) for m in MODALITIES}, splits)
            if tile is None:
                continue
            ny, nx = tile.height // self.patch_size, tile.width // self.patch_size
            if nx == 0 or ny == 0:
                self._problem(
                    tile.lbl_path,
                    f"tile is {tile.width} × {tile.height}, smaller than patch_size {self.patch_size}; no patches",
                )
                continue
            for row in range(ny):
                for col in range(nx):
                    records.append(PatchRecord(tile, col * self.patch_size, row * self.patch_size, self.patch_size))
        return records

    def _splits(self, root: Path, tile_ids: list[str]) -> dict[str, str] | None:
        """Tile → split from the official file when present, else the seeded 80/20 split; None if the file is bad."""
        split_file = next((p for p in root.iterdir() if p.name.lower() == SPLIT_FILE_NAME.lower()), None)
        if split_file is None:
            self.split_source = f"seeded 80/20 by tile (split_seed={self.split_seed})"
            return seeded_split(tile_ids, seed=self.split_seed)
        self.split_source = f"official ({split_file.name})"
        try:
            return parse_split_file(split_file)
        except ValueError as e:
            self._problem(split_file, f"{e}; every split left empty")
            return None

    def _check_tile(self, tile_id: str, paths: dict[str, Path | None], splits: dict | None) -> Tile | None:
        """Header checks of one tile triple; reports and returns None when the tile cannot be used."""
        present = [p for p in paths.values() if p is not None]
        missing = [m for m, p in paths.items() if p is None]
        if missing:
            self._problem(present[0], f"tile {tile_id} has no {', '.join(f'{m}/{tile_id}.tif' for m in missing)}; "
                                      "tile skipped")
            return None
        layouts = {}
        for modality, path in paths.items():
            try:
                layouts[modality] = read_tiff_layout(path)
            except ValueError as e:
                self._problem(path, f"{e}; tile {tile_id} skipped")
                return None
        reference = layouts["lbl"]
        mismatched = False
        for modality in ("sar", "optical"):
            layout = layouts[modality]
            if (layout.width, layout.height) != (reference.width, reference.height):
                self._problem(paths[modality], f"{modality} tile is {layout.width} × {layout.height} but "
                                               f"lbl/{paths['lbl'].name} is {reference.width} × {reference.height}; "
                                               f"tile {tile_id} skipped")
                mismatched = True
        for modality in ("sar", "lbl"):
            if layouts[modality].bands != 1:
                self._problem(paths[modality], f"{modality} tile has {layouts[modality].bands} bands, expected 1; "
                                               f"tile {tile_id} skipped")
                mismatched = True
        if mismatched:
            return None
        split = None if splits is None else splits.get(tile_id)
        if splits is not None and split is None:
            self._problem(paths["lbl"], f"tile {tile_id} is not listed in the split file; ingested with split=None")
        key = hashlib.sha1()
        for path in paths.values():
            st = path.stat()
            key.update(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return Tile(tile_id, paths["sar"], paths["optical"], paths["lbl"], reference.width, reference.height,
                    split, key.hexdigest()[:12])

    # ---------------------------------------------------------------- pixels

    def _load_tile(self, tile: Tile) -> _TileArrays:
        arrays = _TileArrays(read_tile(tile.sar_path), read_tile(tile.optical_path), read_tile(tile.lbl_path))
        with self._reported_lock:
            first_time = tile.tile_id not in self._label_checked
            self._label_checked.add(tile.tile_id)
        if first_time:
            self._report_invalid_labels(tile, arrays.lbl)
        return arrays

    def _report_invalid_labels(self, tile: Tile, lbl: np.ndarray) -> None:
        """Reports label values outside the 8 classes, once per tile (they are mapped to background).

        Works in row blocks: a whole-tile ``bincount`` would make a 160 MB int64 copy of a 20 MB label tile.
        """
        bad_counts: Counter = Counter()
        for y0 in range(0, lbl.shape[0], 512):
            block = np.asarray(lbl[y0 : y0 + 512])
            valid = _valid_labels(block)
            if not valid.all():
                values, counts = np.unique(block[~valid], return_counts=True)
                bad_counts.update(dict(zip(values.tolist(), counts.tolist())))
        bad = sorted(bad_counts.items())
        if bad:
            listed = ", ".join(f"{v}: {c} px" for v, c in bad)
            self._problem(tile.lbl_path, f"label values outside the 8 classes ({listed}) mapped to background (0)")

    def _build_sample(self, record: PatchRecord) -> fo.Sample:
        tile, x, y, size = record.tile, record.x, record.y, record.size
        arrays = self._cache.acquire(tile)
        try:
            window = (slice(y, y + size), slice(x, x + size))
            sar = np.array(arrays.sar[window])
            optical = np.array(arrays.optical[window])
            raw_label = np.array(arrays.lbl[window])
        finally:
            self._cache.release(tile)
        mask, invalid_pixels = to_class_mask(raw_label)

        out_dir = self._patch_root() / f"{tile.tile_id}_{tile.cache_key}"
        stem = f"{tile.tile_id}_x{x}_y{y}_s{size}"
        sar_path = _ensure(out_dir / f"{stem}_sar.tif", lambda p: write_tiff_atomic(p, sar))
        optical_path = _ensure(out_dir / f"{stem}_optical.tif", lambda p: write_tiff_atomic(p, optical))
        mask_path = _ensure(out_dir / f"{stem}_lbl.png", lambda p: sarimage.write_png_atomic(mask, p))

        fractions = class_fractions(mask)
        fields = sar_sample_fields(
            sar_path, array=sar, kind="amplitude", compute_stats=self.compute_stats, display_dir=self.display_dir
        )
        sample = fo.Sample(**fields)
        sample["ground_truth"] = fo.Segmentation(mask_path=str(mask_path))
        sample["optical_path"] = str(optical_path)
        sample["split"] = tile.split
        sample["source"] = self.SOURCE
        sample["tile_id"] = tile.tile_id
        sample["window"] = [x, y, size, size]
        sample["class_fractions"] = fo.DynamicEmbeddedDocument(**fractions)
        sample["dominant_class"] = max(fractions, key=fractions.get)
        sample["invalid_label_pixels"] = invalid_pixels
        return sample

    def _patch_root(self) -> Path:
        return Path(self.patch_dir) if self.patch_dir else sarimage.default_cache_dir() / "whu_opt_sar"

    # ---------------------------------------------------------------- reporting

    def _problem(self, path, reason: str) -> None:
        # a tile that fails to decode fails every one of its patches with the same message: report it once
        with self._reported_lock:
            if (str(path), reason) in self._reported:
                return
            self._reported.add((str(path), reason))
        super()._problem(path, reason)

    def _dataset_info(self) -> dict:
        return {
            "classes": CLASSES,
            "mask_targets": {"ground_truth": dict(CLASS_VALUES)},
            "default_mask_targets": dict(CLASS_VALUES),
            "patch_size": self.patch_size,
            "split_source": self.split_source,
        }


# --------------------------------------------------------------------------------------------- helpers


def to_class_mask(raw_label: np.ndarray) -> tuple[np.ndarray, int]:
    """Raw label patch → uint8 mask of the 8 class values (others → 0 background) and the count of such pixels."""
    raw = np.asarray(raw_label)
    valid = _valid_labels(raw)
    mask = np.where(valid, raw, 0).astype(np.uint8)
    return mask, int(valid.size - np.count_nonzero(valid))


def _valid_labels(raw: np.ndarray) -> np.ndarray:
    """Boolean array: which pixels hold one of the 8 class values (a table lookup for uint8 labels)."""
    return _VALID_LABEL[raw] if raw.dtype == np.uint8 else np.isin(raw, list(CLASS_VALUES))


def class_fractions(mask: np.ndarray) -> dict[str, float]:
    """Fraction of the mask's pixels in each class, keyed by class name (all eight, summing to 1)."""
    counts = np.bincount(mask.ravel(), minlength=256)
    return {name: float(counts[value]) / mask.size for value, name in CLASS_VALUES.items()}


def _tile_files(folder: Path) -> dict[str, Path]:
    """Tile id → TIFF in one modality folder; hidden files (macOS ``._X.tif`` resource forks) are not tiles."""
    return {
        p.stem: p
        for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix.lower() in TILE_SUFFIXES and not p.name.startswith(".")
    }


def _ensure(path: Path, write) -> Path:
    """Writes ``path`` with ``write(path)`` unless a previous ingest already did (writers are atomic)."""
    if not path.exists():
        write(path)
    return path

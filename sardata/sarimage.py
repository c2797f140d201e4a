"""SAR pixel handling: read what the datasets contain, convert units, remap for display, speckle statistics.

SAR files come as float32 GeoTIFF (GRD amplitude, SLC complex as re/im band pairs), 8/16-bit TIFF, JPEG and PNG,
and sometimes with an extension that lies (OpenSARShip v1.0 ``Patch_RGB/*.tif`` are PNG bytes). Everything here
sniffs the magic bytes instead of trusting the extension.

Units: *amplitude* ``A`` (DN or |z|), *intensity* ``I = A²`` (power, sigma0), *dB* ``10·log10(I)``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from sardata._io import atomic_path

#: Smallest intensity used before taking a log, so zeros (padding, SLC nulls) stay finite.
EPS = 1e-10

_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "png",
    b"\xff\xd8\xff": "jpeg",
    b"II*\x00": "tiff",
    b"MM\x00*": "tiff",
    b"II+\x00": "tiff",  # BigTIFF
    b"MM\x00+": "tiff",
}
_EXT_FORMAT = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".tif": "tiff", ".tiff": "tiff"}


class SarReadError(ValueError):
    """A SAR image file cannot be read; the message names the file and the reason."""


def sniff_format(path: str | os.PathLike) -> str:
    """Returns ``"png"``, ``"jpeg"`` or ``"tiff"`` from the file's magic bytes.

    Raises:
        SarReadError: the file is empty, missing or of an unknown format.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise SarReadError(f"{path}: cannot open ({e.strerror})") from e
    if not head:
        raise SarReadError(f"{path}: empty file")
    for magic, fmt in _MAGIC.items():
        if head.startswith(magic):
            return fmt
    raise SarReadError(f"{path}: unknown image format (magic bytes {head[:4]!r})")


def extension_lies(path: str | os.PathLike) -> bool:
    """True when the file's content format differs from what its extension says (e.g. PNG bytes in a .tif)."""
    expected = _EXT_FORMAT.get(Path(path).suffix.lower())
    return expected is not None and sniff_format(path) != expected


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Reads any of the datasets' image files as a numpy array, ``(H, W)`` or ``(H, W, C)``, dtype preserved.

    TIFFs are read with tifffile (float32, uint16, multi-band, planar or contiguous); PNG/JPEG with Pillow.
    Truncated or corrupt files raise :class:`SarReadError` naming the file.
    """
    fmt = sniff_format(path)
    try:
        if fmt == "tiff":
            import tifffile

            arr = tifffile.imread(str(path))
            # Planar multi-band TIFFs come as (C, H, W); SAR chips have few bands and many pixels.
            if arr.ndim == 3 and arr.shape[0] <= 4 and arr.shape[2] > 4:
                arr = np.moveaxis(arr, 0, -1)
        else:
            if fmt == "png":
                # verify() checks chunk CRCs, so truncation is caught even when a library has set
                # PIL's global ImageFile.LOAD_TRUNCATED_IMAGES (which makes load() pad silently)
                with Image.open(path) as im:
                    im.verify()
            with Image.open(path) as im:
                im.load()
                arr = np.asarray(im)
    except SarReadError:
        raise
    except Exception as e:  # corrupt data surfaces as many exception types across decoders
        raise SarReadError(f"{path}: cannot decode {fmt} ({type(e).__name__}: {e})") from e
    if arr.size == 0:
        raise SarReadError(f"{path}: image has no pixels")
    return arr


def read_gray_jpeg(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Reads an 8-bit SAR JPEG as one grey band, returning ``(array (H, W) uint8, channels in the file)``.

    SSDD stores grey as RGB with R = G = B. For a JPEG, ``draft("L")`` makes libjpeg decode the luma plane only,
    which equals every RGB channel when R = G = B and skips the colour conversion (about half the decode time).
    Other formats fall back to :func:`read_image` (first band).
    """
    path = str(path)
    if sniff_format(path) != "jpeg":
        array = read_image(path)
        channels = 1 if array.ndim == 2 else array.shape[2]
        return (array if array.ndim == 2 else array[..., 0]), channels
    return _jpeg_luma(path, np.asarray)


def _jpeg_luma(path: str, use):
    """``(use(grey image), channels in the file)`` of a JPEG decoded at full resolution as its luma plane only
    (``draft("L")`` at the image's own size: no DCT scaling); any decode failure is a :class:`SarReadError`."""
    try:
        with Image.open(path) as image:
            channels = len(image.getbands())
            image.draft("L", image.size)
            image.load()
            return use(image if image.mode == "L" else image.convert("L")), channels
    except Exception as e:  # truncated/corrupt JPEGs surface as OSError, SyntaxError, ...
        raise SarReadError(f"{path}: cannot decode jpeg ({type(e).__name__}: {e})") from e


def read_gray_histogram(path: str | os.PathLike) -> tuple[np.ndarray, tuple[int, int], int]:
    """The 256-bin histogram of an 8-bit SAR image's grey band: ``(counts (256,) int64, (width, height), channels)``.

    Same pixels as :func:`read_gray_jpeg` (a full-resolution luma decode for a JPEG, no DCT scaling), counted in C by
    Pillow's ``histogram()`` without making a numpy copy of the image; other formats go through
    :func:`read_gray_jpeg`. Only for 8-bit images (SSDD, SAR-AIRcraft); raises :class:`SarReadError` as the readers do.
    """
    path = str(path)
    if sniff_format(path) != "jpeg":
        gray, channels = read_gray_jpeg(path)
        if gray.dtype != np.uint8:
            raise SarReadError(f"{path}: expected an 8-bit image, got {gray.dtype}")
        return np.bincount(gray.ravel(), minlength=256), (int(gray.shape[1]), int(gray.shape[0])), channels
    (counts, size), channels = _jpeg_luma(path, lambda gray: (np.asarray(gray.histogram(), dtype=np.int64), gray.size))
    if size[0] * size[1] == 0:
        raise SarReadError(f"{path}: image has no pixels")
    return counts, (int(size[0]), int(size[1])), channels


# --------------------------------------------------------------------------------------------- unit conversion


def amplitude_to_intensity(amplitude: np.ndarray) -> np.ndarray:
    return np.square(np.asarray(amplitude, dtype=np.float64))


def intensity_to_amplitude(intensity: np.ndarray) -> np.ndarray:
    return np.sqrt(np.clip(np.asarray(intensity, dtype=np.float64), 0, None))


def intensity_to_db(intensity: np.ndarray) -> np.ndarray:
    return 10.0 * np.log10(np.clip(np.asarray(intensity, dtype=np.float64), EPS, None))


def db_to_intensity(db: np.ndarray) -> np.ndarray:
    return np.power(10.0, np.asarray(db, dtype=np.float64) / 10.0)


def amplitude_to_db(amplitude: np.ndarray) -> np.ndarray:
    return intensity_to_db(amplitude_to_intensity(amplitude))


def db_to_amplitude(db: np.ndarray) -> np.ndarray:
    return intensity_to_amplitude(db_to_intensity(db))


def complex_pairs_to_amplitude(bands: np.ndarray) -> np.ndarray:
    """``(H, W, 2k)`` re/im interleaved bands → ``(H, W, k)`` amplitude ``|re + j·im|`` (SLC chips)."""
    if bands.ndim != 3 or bands.shape[-1] % 2:
        raise ValueError(f"expected (H, W, 2k) re/im bands, got shape {bands.shape}")
    re = bands[..., 0::2].astype(np.float64)
    im = bands[..., 1::2].astype(np.float64)
    return np.hypot(re, im).astype(np.float32)


def to_intensity(arr: np.ndarray, kind: str) -> np.ndarray:
    """Converts pixel values of the given ``kind`` to linear intensity.

    Args:
        arr: pixel values.
        kind: ``"amplitude"`` (DN, |z|, 8-bit display amplitude), ``"intensity"`` (sigma0, power) or ``"db"``.
    """
    if kind == "amplitude":
        return amplitude_to_intensity(arr)
    if kind == "intensity":
        return np.asarray(arr, dtype=np.float64)
    if kind == "db":
        return db_to_intensity(arr)
    raise ValueError(f"unknown pixel kind {kind!r}; expected one of 'amplitude', 'intensity', 'db'")


# --------------------------------------------------------------------------------------------- display


def display_uint8(
    arr: np.ndarray, kind: str = "amplitude", low: float = 2.0, high: float = 98.0
) -> np.ndarray:
    """8-bit display image: convert to dB, clip at the ``low``/``high`` percentiles of finite pixels, scale to 0–255.

    8-bit inputs are already display images and are returned unchanged. Multi-band inputs are reduced to their first
    band (the App shows one channel; callers pick the band order). Non-finite pixels map to 0.
    """
    arr = np.asarray(arr)
    if arr.dtype == np.uint8:
        return arr
    if arr.ndim == 3:
        arr = arr[..., 0]
    db = intensity_to_db(to_intensity(arr, kind)) if kind != "db" else np.asarray(arr, dtype=np.float64)
    finite = np.isfinite(db)
    if not finite.any():
        return np.zeros(db.shape, dtype=np.uint8)
    lo, hi = np.percentile(db[finite], [low, high])
    if hi <= lo:
        hi = lo + 1e-6
    scaled = (np.where(finite, db, lo) - lo) / (hi - lo)
    return (np.clip(scaled, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def is_displayable(path: str | os.PathLike) -> bool:
    """True when a browser shows the file as it is: a JPEG or PNG whose extension tells the truth."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".png", ".jpg", ".jpeg"):
        return False
    try:
        return sniff_format(path) == _EXT_FORMAT[suffix]
    except SarReadError:
        return False


def write_png_atomic(image: np.ndarray, out_path: str | os.PathLike) -> Path:
    """Writes an 8-bit image as PNG atomically (:func:`sardata._io.atomic_path`): a kill never leaves half a PNG."""
    with atomic_path(out_path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
    return Path(out_path)


def default_cache_dir() -> Path:
    """sardata's cache root: ``$SARDATA_CACHE`` or ``~/.cache/sardata``."""
    return Path(os.environ.get("SARDATA_CACHE", Path.home() / ".cache" / "sardata"))


def display_cache_path(source: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the cached 8-bit PNG of ``source`` lives; keyed by absolute path, size and mtime so edits invalidate it."""
    source = Path(source).resolve()
    st = source.stat()
    key = hashlib.sha1(f"{source}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "display"
    return root / key[:2] / f"{source.stem[:60]}_{key[:12]}.png"


def ensure_display_image(
    source: str | os.PathLike,
    array: np.ndarray | None = None,
    kind: str = "amplitude",
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Returns a path the App can show for ``source``: the file itself when displayable, else a cached 8-bit PNG.

    Args:
        source: the original SAR file.
        array (None): its pixels when already read (saves a second read); the display band must be first.
        kind ("amplitude"): pixel kind of ``array`` (see :func:`to_intensity`).
        cache_dir (None): where PNGs go (default ``$SARDATA_CACHE/display``).
    """
    if is_displayable(source):
        return Path(source)
    out = display_cache_path(source, cache_dir)
    if out.exists():
        return out
    if array is None:
        array = read_image(source)
    return write_png_atomic(display_uint8(array, kind=kind), out)


# --------------------------------------------------------------------------------------------- statistics


@dataclass
class SpeckleStats:
    """Speckle statistics of one image, computed on linear intensity.

    ``enl`` (equivalent number of looks) = mean² / variance of intensity: 1 for single-look fully developed speckle,
    L for an L-look image over a homogeneous area; lower over heterogeneous scenes.
    """

    mean: float
    std: float
    cv: float
    enl: float
    mean_db: float
    min: float
    max: float
    nonfinite_fraction: float
    zero_fraction: float

    def to_dict(self) -> dict:
        return asdict(self)


def speckle_stats(arr: np.ndarray, kind: str = "amplitude", band: int | None = 0) -> SpeckleStats:
    """Speckle statistics of ``arr`` (pixel ``kind`` as in :func:`to_intensity`).

    Args:
        arr: ``(H, W)`` or ``(H, W, C)`` pixels.
        kind ("amplitude"): pixel kind.
        band (0): band used for multi-band input; ``None`` pools all bands.
    """
    arr = np.asarray(arr)
    if arr.ndim == 3 and band is not None:
        arr = arr[..., band]
    values = arr.astype(np.float64).ravel()
    finite = np.isfinite(values)
    nonfinite_fraction = float(1.0 - finite.mean()) if values.size else 1.0
    values = values[finite]
    if values.size == 0:
        nan = float("nan")
        return SpeckleStats(nan, nan, nan, nan, nan, nan, nan, nonfinite_fraction, nan)
    intensity = to_intensity(values, kind)
    mean = float(intensity.mean())
    var = float(intensity.var())
    std = var**0.5
    return SpeckleStats(
        mean=mean,
        std=std,
        cv=std / mean if mean > 0 else float("nan"),
        enl=mean * mean / var if var > 0 else float("inf"),
        mean_db=float(10.0 * np.log10(max(mean, EPS))),
        min=float(values.min()),
        max=float(values.max()),
        nonfinite_fraction=nonfinite_fraction,
        zero_fraction=float((values == 0).mean()),
    )

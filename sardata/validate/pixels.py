"""SAR pixels: unreadable files, non-finite values, constant images, saturated fractions, extensions that lie; and
the per-file facts the leakage checks reuse (content hash, a cheap image signature), from one read of each file.

The file read is ``sar_path`` (the original SAR file) when the samples have it, else ``filepath``. Readings chosen:
an image is *constant* when its finite pixels all have one value; *saturated* is the fraction of pixels at the
maximum of an integer dtype (255 for 8-bit), flagged from ``saturation_warning`` (default 5 %: a few bright ship or
corner-reflector pixels saturate legitimately, a whole region does not); the signature is the 16 × 16 block mean of
``log1p`` of the first band, standardised to zero mean and unit norm, so that cosine similarity compares image
content irrespective of gain.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from sardata import sarimage
from sardata.validate.findings import Finding

SATURATION_WARNING = 0.05
SIGNATURE_SIDE = 16


@dataclass
class PixelFacts:
    """What one read of a file tells."""

    path: str
    sha256: str | None = None
    error: str | None = None
    nonfinite_fraction: float = 0.0
    constant: bool = False
    saturated_fraction: float = 0.0
    extension_lies: bool = False
    signature: np.ndarray | None = None


def signature(array: np.ndarray, side: int = SIGNATURE_SIDE) -> np.ndarray | None:
    """Unit-norm, zero-mean ``side²`` block-mean signature of ``log1p(|first band|)``; None for a flat image."""
    band = array if array.ndim == 2 else array[..., 0]
    band = np.log1p(np.abs(np.nan_to_num(band.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)))
    h, w = band.shape
    if h < side or w < side:
        return None
    rows, cols = np.linspace(0, h, side + 1).astype(int), np.linspace(0, w, side + 1).astype(int)
    # block sums through a 2-D cumulative sum: exact block means for any image size
    c = np.pad(band.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = c[rows[1:]][:, cols[1:]] - c[rows[:-1]][:, cols[1:]] - c[rows[1:]][:, cols[:-1]] + c[rows[:-1]][:, cols[:-1]]
    areas = np.outer(np.diff(rows), np.diff(cols))
    v = (sums / areas).ravel()
    v = v - v.mean()
    norm = np.linalg.norm(v)
    return (v / norm).astype(np.float32) if norm > 1e-8 else None


def read_facts(path: str) -> PixelFacts:
    facts = PixelFacts(path)
    try:
        with open(path, "rb") as f:
            facts.sha256 = hashlib.sha256(f.read()).hexdigest()
        facts.extension_lies = sarimage.extension_lies(path)
        # 8-bit JPEGs (SSDD, SAR-AIRcraft) hold grey as R = G = B: decoding the luma plane alone is exact and ~2× faster
        array = sarimage.read_gray_jpeg(path)[0] if sarimage.sniff_format(path) == "jpeg" else sarimage.read_image(path)
    except (OSError, ValueError) as e:
        facts.error = str(e)
        return facts
    if np.iscomplexobj(array):
        array = np.abs(array)
    finite = np.isfinite(array) if array.dtype.kind == "f" else None
    if finite is not None:
        facts.nonfinite_fraction = float(1.0 - finite.mean())
        values = array[finite]
    else:
        values = array.ravel()
    facts.constant = values.size == 0 or bool(values.min() == values.max())
    if array.dtype.kind in "ui":
        facts.saturated_fraction = float((array == np.iinfo(array.dtype).max).mean())
    facts.signature = None if facts.constant else signature(array)
    return facts


def read_all(samples, num_workers: int | None = None, progress: bool = True) -> tuple[list[str], list[PixelFacts]]:
    """``(sample ids, facts)`` for every sample, files read in a thread pool (decoders release the GIL)."""
    field = "sar_path" if samples.has_field("sar_path") else "filepath"
    ids, paths, fallback = samples.values(["id", field, "filepath"])
    paths = [p or q for p, q in zip(paths, fallback)]
    workers = num_workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        facts = list(tqdm(pool.map(read_facts, paths), total=len(paths), desc="validate pixels", disable=not progress))
    return ids, facts


def check_pixels(ids: list[str], facts: list[PixelFacts], saturation_warning: float = SATURATION_WARNING) -> list[Finding]:
    """Pixel findings from :func:`read_all`'s facts."""
    rules = [
        ("unreadable_image", "error", "files that cannot be read", lambda f: f.error is not None,
         lambda f: {"path": f.path, "error": f.error}),
        ("nonfinite_pixels", "error", "images with NaN or infinite pixels", lambda f: f.nonfinite_fraction > 0,
         lambda f: {"path": f.path, "fraction": round(f.nonfinite_fraction, 4)}),
        ("constant_image", "error", "images whose pixels all have one value", lambda f: f.error is None and f.constant,
         lambda f: {"path": f.path}),
        ("saturated_pixels", "warning", f"images with ≥ {saturation_warning:.0%} of pixels at the dtype's maximum",
         lambda f: f.saturated_fraction >= saturation_warning,
         lambda f: {"path": f.path, "fraction": round(f.saturated_fraction, 4)}),
        ("extension_lies", "warning", "files whose content format differs from their extension",
         lambda f: f.extension_lies, lambda f: {"path": f.path, "format": sarimage.sniff_format(f.path)}),
    ]
    findings = []
    for kind, severity, text, test, example in rules:
        hits = [(sid, f) for sid, f in zip(ids, facts) if test(f)]
        if hits:
            findings.append(Finding(kind, severity, f"{len(hits)} {text}", [sid for sid, _ in hits],
                                    details={"examples": [example(f) for _, f in hits[:5]]}))
    return findings

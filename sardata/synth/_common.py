"""Shared building blocks of the synthetic SAR generators.

Scenes are built in linear *intensity* (reflectivity σ⁰-like), then multiplied by unit-mean gamma speckle
(L looks), which is the standard multiplicative speckle model: ``I = σ · n``, ``n ~ Gamma(L, 1/L)``.
Ships are bright ellipses with cross-shaped sidelobes (the sinc response of a point scatterer after SAR focusing),
land is a textured, brighter region bounded by a fractal coastline, and harbours add bright man-made lines.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from sardata._io import atomic_dir, write_bytes

# --------------------------------------------------------------------------------------------- backgrounds


def speckle(rng: np.random.Generator, shape: tuple[int, ...], looks: float = 1.0) -> np.ndarray:
    """Unit-mean gamma speckle with ``looks`` looks (ENL = looks over a homogeneous area)."""
    return rng.gamma(shape=looks, scale=1.0 / looks, size=shape)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: int = 16) -> np.ndarray:
    """Smooth random field in [0, 1] (bilinear upsampling of a coarse uniform grid), for textures."""
    h, w = shape
    gh, gw = max(2, h // scale + 2), max(2, w // scale + 2)
    grid = rng.random((gh, gw))
    ys = np.linspace(0, gh - 1.001, h)
    xs = np.linspace(0, gw - 1.001, w)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    a = grid[y0][:, x0]
    b = grid[y0][:, x0 + 1]
    c = grid[y0 + 1][:, x0]
    d = grid[y0 + 1][:, x0 + 1]
    return a * (1 - fy) * (1 - fx) + b * (1 - fy) * fx + c * fy * (1 - fx) + d * fy * fx


def coastline_mask(
    rng: np.random.Generator, shape: tuple[int, int], land_fraction: float = 0.35, side: str | None = None
) -> np.ndarray:
    """Boolean land mask: a wiggly coastline entering from one side, covering about ``land_fraction`` of the image."""
    h, w = shape
    side = side or rng.choice(["top", "bottom", "left", "right"])
    length, depth = (w, h) if side in ("top", "bottom") else (h, w)
    t = np.arange(length)
    line = np.full(length, land_fraction * depth)
    for octave in range(1, 5):  # fractal-ish coast: sum of random sinusoids
        amp = depth * 0.08 / octave
        line += amp * np.sin(2 * np.pi * (octave * rng.uniform(0.5, 1.5)) * t / length + rng.uniform(0, 2 * np.pi))
    line = np.clip(line, 1, depth - 1)
    grid = np.arange(depth)[:, None] < line[None, :]  # (depth, length): land near the side's edge
    if side == "top":
        return grid
    if side == "bottom":
        return grid[::-1]
    if side == "left":
        return grid.T
    return grid.T[:, ::-1]


def sea_clutter(rng: np.random.Generator, shape: tuple[int, int], level: float = 0.02) -> np.ndarray:
    """Mean sea reflectivity with gentle swell modulation (before speckle)."""
    return level * (0.7 + 0.6 * smooth_noise(rng, shape, scale=max(8, min(shape) // 6)))


def land_reflectivity(rng: np.random.Generator, shape: tuple[int, int], level: float = 0.25) -> np.ndarray:
    """Land: brighter, heterogeneous (fields and buildings), before speckle."""
    tex = smooth_noise(rng, shape, scale=12) * 0.7 + smooth_noise(rng, shape, scale=4) * 0.3
    out = level * (0.3 + 1.4 * tex)
    # bright point scatterers (buildings, cranes)
    n = int(shape[0] * shape[1] / 400)
    ys, xs = rng.integers(0, shape[0], n), rng.integers(0, shape[1], n)
    out[ys, xs] += level * rng.uniform(5, 30, n)
    return out


def add_harbour(rng: np.random.Generator, refl: np.ndarray, land: np.ndarray, n_piers: int = 3) -> None:
    """Adds bright straight piers/quays from the coast into the sea (in place); marks them as land."""
    h, w = land.shape
    ys, xs = np.nonzero(land)
    if len(ys) == 0:
        return
    for _ in range(n_piers):
        i = rng.integers(len(ys))
        y, x = ys[i], xs[i]
        angle = rng.uniform(0, np.pi)
        length = rng.integers(min(h, w) // 8, min(h, w) // 3)
        for s in range(length):
            yy, xx = int(y + s * np.sin(angle)), int(x + s * np.cos(angle))
            if 0 <= yy < h and 0 <= xx < w:
                refl[max(0, yy - 1) : yy + 2, max(0, xx - 1) : xx + 2] = refl.max() * 0.8
                land[max(0, yy - 1) : yy + 2, max(0, xx - 1) : xx + 2] = True


# --------------------------------------------------------------------------------------------- targets


def ship_footprint(length: float, width: float, angle_deg: float, size: int | None = None) -> np.ndarray:
    """Soft ellipse-with-pointed-bow ship footprint of ``length`` × ``width`` pixels rotated by ``angle_deg``."""
    size = size or int(np.ceil(max(length, width) * 1.5)) + 3
    c = (size - 1) / 2
    yy, xx = np.mgrid[0:size, 0:size] - c
    th = np.deg2rad(angle_deg)
    u = xx * np.cos(th) + yy * np.sin(th)  # along the hull
    v = -xx * np.sin(th) + yy * np.cos(th)
    half_w = (width / 2) * np.sqrt(np.clip(1 - (u / (length / 2)) ** 2, 0, 1))
    half_w = np.where(u > length / 4, half_w * (1 - (u - length / 4) / (length / 4 + 1e-6) * 0.6), half_w)
    # half_w is 0 beyond the ends; the length test keeps the +0.5 tolerance from drawing a line past bow and stern
    return ((np.abs(v) <= half_w + 0.5) & (np.abs(u) <= length / 2)).astype(np.float64)


def paste_target(
    refl: np.ndarray, footprint: np.ndarray, cy: float, cx: float, brightness: float,
    rng: np.random.Generator, sidelobes: bool = True,
) -> tuple[int, int, int, int]:
    """Adds a bright target (footprint × brightness, with scatterer texture) centred at (cy, cx), in place.

    With ``sidelobes``, adds the cross-shaped sinc sidelobes of the brightest scatterer along range and azimuth.
    Returns the target's tight box ``(xmin, ymin, xmax, ymax)`` in pixel coordinates (inclusive), clipped.
    """
    h, w = refl.shape
    fh, fw = footprint.shape
    y0, x0 = int(round(cy - fh / 2)), int(round(cx - fw / 2))
    ys, xs = np.nonzero(footprint > 0)
    ys, xs = ys + y0, xs + x0
    keep = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    ys, xs = ys[keep], xs[keep]
    if len(ys) == 0:
        return (0, 0, 0, 0)
    refl[ys, xs] += brightness * rng.uniform(0.4, 1.6, len(ys))
    if sidelobes:
        py, px = int(np.clip(cy, 0, h - 1)), int(np.clip(cx, 0, w - 1))
        span = int(max(fh, fw) * 1.5)
        k = np.arange(-span, span + 1)
        lobe = brightness * 0.6 * np.sinc(k / 2.0) ** 2
        ok = (py + k >= 0) & (py + k < h)
        refl[(py + k)[ok], px] += lobe[ok]
        ok = (px + k >= 0) & (px + k < w)
        refl[py, (px + k)[ok]] += lobe[ok]
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def aircraft_footprint(length: float, wingspan: float, angle_deg: float, tail_ratio: float = 0.35) -> np.ndarray:
    """Cross-shaped aircraft footprint: fuselage, swept wings, tailplane; rotated by ``angle_deg``."""
    size = int(np.ceil(max(length, wingspan) * 1.5)) + 3
    c = (size - 1) / 2
    yy, xx = np.mgrid[0:size, 0:size] - c
    th = np.deg2rad(angle_deg)
    u = xx * np.cos(th) + yy * np.sin(th)
    v = -xx * np.sin(th) + yy * np.cos(th)
    fuselage = (np.abs(u) <= length / 2) & (np.abs(v) <= max(1.0, length * 0.06))
    wing_u = u + np.abs(v) * 0.35  # swept back
    wings = (np.abs(wing_u) <= max(1.0, length * 0.08)) & (np.abs(v) <= wingspan / 2)
    tail_u = u + length * 0.42 + np.abs(v) * 0.3
    tail = (np.abs(tail_u) <= max(1.0, length * 0.05)) & (np.abs(v) <= wingspan * tail_ratio / 2)
    return (fuselage | wings | tail).astype(np.float64)


# --------------------------------------------------------------------------------------------- output


def to_uint8_amplitude(intensity: np.ndarray, low_db: float | None = None, high_db: float | None = None) -> np.ndarray:
    """Quantises intensity to an 8-bit amplitude image in dB (how SSDD/SAR-Aircraft JPEGs look)."""
    db = 10 * np.log10(np.clip(intensity, 1e-8, None))
    lo = np.percentile(db, 1) if low_db is None else low_db
    hi = np.percentile(db, 99.8) if high_db is None else high_db
    return (np.clip((db - lo) / max(hi - lo, 1e-6), 0, 1) * 255 + 0.5).astype(np.uint8)


def atomic_root(out_dir: str | os.PathLike, root_name: str):
    """Yields a temporary directory inside ``out_dir``; on success it replaces ``out_dir/root_name``
    (:func:`sardata._io.atomic_dir`, overwriting an older copy).

    A killed or failed generation never leaves a half-written dataset looking complete.
    """
    return atomic_dir(Path(out_dir) / root_name, overwrite=True)


def write_truth(root: str | os.PathLike, truth: dict) -> Path:
    """Writes ``synth_truth.json`` beside the data: the ground truth the real dataset lacks."""
    path = Path(root) / "synth_truth.json"
    write_bytes(path, json.dumps(truth, indent=1, sort_keys=True).encode())
    return path


def read_truth(root: str | os.PathLike) -> dict:
    return json.loads((Path(root) / "synth_truth.json").read_text())

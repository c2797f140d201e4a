"""The synthetic SSDD scene model: what is in one image and how hard it is, by named difficulty preset.

A scene is built in linear intensity (σ⁰-like reflectivity) and multiplied by unit-mean gamma speckle of L looks
(``I = σ · n``, ``n ~ Gamma(L, 1/L)``); :mod:`sardata.synth.ssdd` writes it as an 8-bit linear-amplitude JPEG.
Every modelling choice, and the real statistic or appearance of SSDD (Zhang et al., Remote Sens. 2021; the SL-SSDD
masks, Ke et al. 2025; the four real SSDD images in ``../shared/data/real/ssdd``) it imitates:

* **Scene mix.** An image is inshore (it contains land) with probability 0.2: SL-SSDD has land in 211 of 1160 images
  (18 %). The scene is the image's first random draw, so it does not depend on the preset.
* **Land fraction** (``default``): of the images with land, 68 % cover 20–80 % of the image (SL-SSDD: 143 of 211
  above 20 %; the copied masks range 0.25–0.81) and the rest are slivers, log-uniform over 1–20 % (the other 68 of
  211). The coast enters from one side or a corner, a sum of random sinusoids whose amplitude shrinks with the land
  depth so a sliver stays a sliver. ``land_masks=DIR`` takes real coastlines instead (see :func:`load_land_masks`).
* **Sea clutter.** Mean level varies per image (0.01–0.05, as before); swell is a smooth ±30 % modulation; a
  lognormal texture (σ 0.2–0.5 in log-intensity) at two scales gives the heavy-tailed, K-like amplitude statistics of
  real sea (a pure gamma-speckled constant would be too easy for a CFAR). With the preset's probability the image
  has **wind-roughened patches**: smooth, elongated regions (along a random wind direction) 2–8 dB brighter and more
  textured, as in SSDD's sea images with bright streaky areas (elongated along the image axis nearer the wind).
* **Ships.** Sizes (log-uniform length within a class): 20 % small (5–16 px, beam 0.25–0.4 of the length, at
  least 2 px), 55 % medium (16–60 px), 25 % large (60–160 px); fleets (6 % of offshore images, 5–12 ships) are small
  and medium boats. The real SSDD boxes in ``../shared/data/real/ssdd`` are 14–156 px long (median box area about
  2900 px²); SSDD as a whole is dominated by COCO-small ships (box area under 32²). Counts: 1 + Poisson(0.6) ships
  per offshore image, 1–5 berthed or sailing per inshore image plus rafted ones (SSDD: 2456 ships in 1160 images).
  Brightness is set as signal-to-clutter ratio over the local mean sea: a small ship is dim (3–8 dB over the
  clutter — a few slightly brighter pixels under 1–4-look speckle and sea texture) with probability
  2·``dim_ship_fraction`` = 0.5, a medium one with 0.125, a large one never; the others are 10–25 dB.
  One to three dominant scatterers (superstructure) per bright ship are 3–6 dB over the hull; those of ships of
  15 dB and more throw the sidelobe streaks below. ``ship_scr_db`` in the truth is each ship's mean reflectivity
  over the clutter under it, as painted (before speckle).
* **Harbours** (inshore): 0–4 piers from the coast into the sea (3–6 px wide, 20–120 px long, 8–18 dB over the
  sea, textured, marked as land) with a bright pier head. Ships are **berthed** along piers and quays (80 % of
  inshore ships), parallel to them, 0–1 px off; with ``touching_probability`` a second ship is moored alongside the
  first (rafted, 0–1 px apart), so ships touch each other and the pier as in SSDD's harbour images.
* **Land.** Three surface types mixed by a smooth field: urban/industrial (8–18 dB over the sea, blocky), vegetation
  (0–6 dB) and, with ``dark_land_probability``, dark flat land (fields, sand, wet mudflats: 2–8 dB *below* the sea).
  **Ship-like scatterers on land**: buildings and container stacks (rotated rectangles of ship sizes and
  brightness), oil tanks (bright discs and rings, r 3–8 px), cranes (bright 1–2 px lines with a cross-bar), denser
  within 40 px of the coast where harbours are.
* **Azimuth ambiguities.** Every reflectivity more than 10× the sea level (bright ships, land, piers) is copied
  ±40–160 px along the azimuth axis (rows or columns, per image), 18–25 dB down (a typical spaceborne azimuth
  ambiguity-to-signal ratio) and smeared along azimuth: ghost ships and ghost harbours in open water, the classic
  false alarms of SAR ship detection.
* **Streaks.** The brightest scatterers throw 1-px sidelobe streaks along range and azimuth, 22–32 dB down, decaying
  over 20–120 px; and a few isolated 1-px line segments (20–80 px, 4–10 dB over the sea) lie in the sea, like the
  thin horizontal streaks of the real SSDD image 000002.
* **Looks.** ENL drawn per image from the preset's range (``default`` 1–4, as SSDD mixes RadarSat-2, TerraSAR-X and
  Sentinel-1 products).

Presets (:data:`PRESETS`): ``default`` (the above), ``easy`` (large bright ships, calm 3–5-look sea, plain land: for
fast learning unit tests), ``coast_hard`` (every coast a 1–5 % sliver, dark land in most coasts, bright
wind-roughened sea in most images, 1–4 looks: for scene tagging that must not rely on "land is bright").
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
from matplotlib.path import Path as MplPath
from PIL import Image

from sardata.synth import _common as C


@dataclasses.dataclass(frozen=True)
class Preset:
    """The knobs of scene difficulty (module docstring). Ranges are ``(low, high)`` of uniform draws."""

    name: str
    looks: tuple[float, float] = (1.0, 4.0)
    sea_texture: tuple[float, float] = (0.2, 0.5)  # std of the lognormal sea texture (log-intensity)
    wind_probability: float = 0.35  # images with wind-roughened patches
    wind_gain_db: tuple[float, float] = (2.0, 8.0)
    wind_cover: tuple[float, float] = (0.15, 0.5)  # fraction of the image roughened
    size_mix: tuple[float, float, float] = (0.2, 0.55, 0.25)  # small, medium, large ships
    dim_ship_fraction: float = 0.25  # dim (3–8 dB) probability: small ships 2×, medium 0.5×, large 0
    dim_scr_db: tuple[float, float] = (3.0, 8.0)
    bright_scr_db: tuple[float, float] = (10.0, 25.0)
    sliver_probability: float = 0.32  # coasts covering little of the image
    sliver_fraction: tuple[float, float] = (0.01, 0.20)  # log-uniform
    bulk_fraction: tuple[float, float] = (0.20, 0.80)
    dark_land_probability: float = 0.3  # coasts with fields/sand/mudflats darker than the sea
    dark_land_cover: tuple[float, float] = (0.2, 0.5)
    land_scatterers: float = 1.0  # density multiplier of ship-like scatterers on land
    urban_gain_db: tuple[float, float] = (8.0, 18.0)
    piers: tuple[int, int] = (0, 4)
    berth_probability: float = 0.8
    touching_probability: float = 0.35
    ghosts: bool = True
    streaks: bool = True


PRESETS: dict[str, Preset] = {
    "default": Preset("default"),
    "easy": Preset(
        "easy", looks=(3.0, 5.0), sea_texture=(0.05, 0.15), wind_probability=0.0, size_mix=(0.0, 0.8, 0.2),
        dim_ship_fraction=0.0, bright_scr_db=(15.0, 25.0), sliver_probability=0.0, bulk_fraction=(0.2, 0.6),
        dark_land_probability=0.0, land_scatterers=0.0, urban_gain_db=(6.0, 10.0), piers=(0, 2),
        touching_probability=0.0, ghosts=False, streaks=False,
    ),
    "coast_hard": Preset(
        "coast_hard", wind_probability=0.8, wind_gain_db=(4.0, 10.0), wind_cover=(0.3, 0.7), sliver_probability=1.0,
        sliver_fraction=(0.01, 0.05), dark_land_probability=0.8, dark_land_cover=(0.3, 0.8), piers=(0, 2),
    ),
}


def get_preset(preset: str | Preset) -> Preset:
    if isinstance(preset, Preset):
        return preset
    if preset not in PRESETS:
        raise ValueError(f"unknown SSDD preset {preset!r}; expected one of {sorted(PRESETS)}")
    return PRESETS[preset]


# --------------------------------------------------------------------------------------------- geometry


def hull_polygon(cx: float, cy: float, length: float, beam: float, angle_deg: float) -> np.ndarray:
    """Ship outline (9 points, continuous pixel coordinates): square-ish stern, parallel sides, pointed bow."""
    u = np.array([-0.5, -0.45, 0.2, 0.42, 0.5, 0.42, 0.2, -0.45, -0.5]) * length
    v = np.array([-0.42, -0.5, -0.5, -0.25, 0.0, 0.25, 0.5, 0.5, 0.42]) * beam
    th = np.deg2rad(angle_deg)
    return np.stack([cx + u * np.cos(th) - v * np.sin(th), cy + u * np.sin(th) + v * np.cos(th)], axis=1)


def rectangle(cx: float, cy: float, length: float, width: float, angle_deg: float) -> np.ndarray:
    u = np.array([-0.5, 0.5, 0.5, -0.5]) * length
    v = np.array([-0.5, -0.5, 0.5, 0.5]) * width
    th = np.deg2rad(angle_deg)
    return np.stack([cx + u * np.cos(th) - v * np.sin(th), cy + u * np.sin(th) + v * np.cos(th)], axis=1)


def polygon_mask(polygon: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, int, int]:
    """Pixels whose centres lie inside ``polygon``: ``(local mask, y0, x0)`` over the polygon's bounding window."""
    x0, y0 = int(np.floor(polygon[:, 0].min())), int(np.floor(polygon[:, 1].min()))
    x1, y1 = int(np.floor(polygon[:, 0].max())) + 1, int(np.floor(polygon[:, 1].max())) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, shape[1]), min(y1, shape[0])
    if x1 <= x0 or y1 <= y0:
        return np.zeros((0, 0)), y0, x0
    yy, xx = np.mgrid[y0:y1, x0:x1]
    centres = np.stack([xx.ravel() + 0.5, yy.ravel() + 0.5], axis=1)
    inside = MplPath(polygon).contains_points(centres).reshape(yy.shape)
    return inside.astype(np.float64), y0, x0


def _field(rng: np.random.Generator, shape: tuple[int, int], scale_y: float, scale_x: float) -> np.ndarray:
    """Smooth random field, roughly N(0, 1), correlated over ``scale_y`` × ``scale_x`` pixels (bilinear grid)."""
    h, w = shape
    gh, gw = max(2, int(h / scale_y) + 2), max(2, int(w / scale_x) + 2)
    grid = rng.standard_normal((gh, gw))
    ys, xs = np.linspace(0, gh - 1.001, h), np.linspace(0, gw - 1.001, w)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    f = (grid[y0][:, x0] * (1 - fy) * (1 - fx) + grid[y0][:, x0 + 1] * (1 - fy) * fx
         + grid[y0 + 1][:, x0] * fy * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fy * fx)
    f = f - f.mean()
    return f / max(float(f.std()), 1e-9)


def _rotated_field(rng, shape, along: float, across: float, angle_deg: float) -> np.ndarray:
    """An anisotropic smooth field, elongated along ``angle_deg`` (0 or 90 approximated by axis scales)."""
    if abs(np.cos(np.deg2rad(angle_deg))) >= abs(np.sin(np.deg2rad(angle_deg))):
        return _field(rng, shape, across, along)
    return _field(rng, shape, along, across)


# --------------------------------------------------------------------------------------------- land


def draw_land_fraction(rng: np.random.Generator, p: Preset) -> float:
    """Target land fraction of an inshore scene: a sliver (log-uniform) or a bulk coast (uniform), per the preset."""
    if rng.random() < p.sliver_probability:
        lo, hi = p.sliver_fraction
        return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    return float(rng.uniform(*p.bulk_fraction))


def coast_mask(rng: np.random.Generator, shape: tuple[int, int], fraction: float) -> np.ndarray:
    """Land mask covering about ``fraction`` of the image: a wiggly coast from one side, or a corner for slivers."""
    h, w = shape
    if fraction < 0.2 and rng.random() < 0.4:  # a corner: land where x/a + y/b < 1 (wiggled), area ≈ a·b/2
        a = np.sqrt(2 * fraction * h * w * rng.uniform(0.5, 2.0) * w / h)
        b = 2 * fraction * h * w / a
        yy, xx = np.mgrid[0:h, 0:w]
        wiggle = 0.08 * _field(rng, shape, 20, 20)
        land = xx / a + yy / b + wiggle < 1
        flip_y, flip_x = rng.random() < 0.5, rng.random() < 0.5
        land = land[::-1] if flip_y else land
        return np.ascontiguousarray(land[:, ::-1] if flip_x else land)
    side = rng.choice(["top", "bottom", "left", "right"])
    length, depth = (w, h) if side in ("top", "bottom") else (h, w)
    mean_depth = fraction * depth
    t = np.arange(length)
    line = np.full(length, mean_depth)
    for octave in range(1, 6):
        amp = min(depth * 0.08, mean_depth * 0.6) / octave
        line += amp * np.sin(2 * np.pi * octave * rng.uniform(0.5, 1.5) * t / length + rng.uniform(0, 2 * np.pi))
    line = np.clip(line, 0.5, depth - 1)
    grid = np.arange(depth)[:, None] + 0.5 < line[None, :]
    mask = {"top": grid, "bottom": grid[::-1], "left": grid.T, "right": grid.T[:, ::-1]}[side]
    return np.ascontiguousarray(mask)


def load_land_masks(directory: str | os.PathLike) -> list[np.ndarray]:
    """Land masks (True = land) from the PNGs under ``directory``, in SL-SSDD's convention (0 = land, 255 = sea).

    Masks without any land are skipped (an inshore scene needs a coast). Raises ``ValueError`` naming the directory
    when none has land, ``FileNotFoundError`` when it has no PNG.
    """
    directory = Path(directory)
    files = sorted(directory.rglob("*.png"))
    if not files:
        raise FileNotFoundError(f"no PNG land masks under {directory}")
    masks = []
    for path in files:
        with Image.open(path) as im:
            land = np.asarray(im.convert("L")) < 128
        if land.any() and not land.all():
            masks.append(land)
    if not masks:
        raise ValueError(f"none of the {len(files)} masks under {directory} has both land (0) and sea (255)")
    return masks


def _land_reflectivity(rng, land: np.ndarray, sea_level: float, p: Preset) -> np.ndarray:
    """Land σ⁰ of three mixed surface types (urban, vegetation, dark flat land), before speckle."""
    shape = land.shape
    mix = _field(rng, shape, 40, 40)
    urban_db = rng.uniform(*p.urban_gain_db) + 4.0 * _field(rng, shape, 2.5, 2.5) * (p.land_scatterers > 0)
    veg_db = rng.uniform(1.0, 6.0) + 2.0 * _field(rng, shape, 6, 6)
    db = np.where(mix > rng.uniform(-0.3, 0.8), urban_db, veg_db)
    if rng.random() < p.dark_land_probability:
        cover = rng.uniform(*p.dark_land_cover)
        dark = _field(rng, shape, 30, 30) < _quantile_threshold(cover)
        db = np.where(dark, -rng.uniform(2.0, 8.0) + 1.0 * _field(rng, shape, 10, 10), db)
    return sea_level * 10 ** (db / 10)


def _quantile_threshold(cover: float) -> float:
    """Threshold below which a standardised smooth field covers about ``cover`` of the image."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(min(max(cover, 1e-3), 1 - 1e-3))


def _paste(refl: np.ndarray, polygon: np.ndarray, level: float, rng, texture=(0.5, 1.5), occupancy=None) -> np.ndarray:
    mask, y0, x0 = polygon_mask(polygon, refl.shape)
    if mask.size == 0:
        return mask
    m = mask > 0
    window = refl[y0 : y0 + m.shape[0], x0 : x0 + m.shape[1]]
    window[m] = level * rng.uniform(*texture, int(m.sum()))
    if occupancy is not None:
        occupancy[y0 : y0 + m.shape[0], x0 : x0 + m.shape[1]] |= m
    return mask


def _land_scatterers(rng, refl, land, coast_dist, sea_level, p: Preset) -> None:
    """Ship-like bright scatterers on land: buildings/containers, oil tanks, cranes (in place)."""
    h, w = land.shape
    n_land = int(land.sum())
    if p.land_scatterers <= 0 or n_land == 0:
        return
    near = land & (coast_dist < 40)
    ys_near, xs_near = np.nonzero(near)
    ys_all, xs_all = np.nonzero(land)
    n = int(rng.poisson(p.land_scatterers * (n_land / 2500 + 2)))
    for _ in range(min(n, 80)):
        pool = (ys_near, xs_near) if len(ys_near) and rng.random() < 0.7 else (ys_all, xs_all)
        i = int(rng.integers(len(pool[0])))
        cy, cx = pool[0][i] + 0.5, pool[1][i] + 0.5
        level = sea_level * 10 ** (rng.uniform(*p.bright_scr_db) / 10)
        kind = rng.random()
        if kind < 0.55:  # building / container stack: ship-sized rotated rectangle
            length = float(np.exp(rng.uniform(np.log(5), np.log(40))))
            _paste(refl, rectangle(cx, cy, length, length * rng.uniform(0.2, 0.6), rng.uniform(0, 180)), level, rng)
        elif kind < 0.8:  # oil tank: a bright disc or ring
            r = rng.uniform(3, 8)
            y0, y1, x0, x1 = int(max(cy - r, 0)), int(min(cy + r + 1, h)), int(max(cx - r, 0)), int(min(cx + r + 1, w))
            yy, xx = np.mgrid[y0:y1, x0:x1]
            d = np.hypot(yy + 0.5 - cy, xx + 0.5 - cx)
            ring = (d <= r) & ((d >= r - 1.5) | (rng.random() < 0.5))
            refl[y0:y1, x0:x1][ring] = level * rng.uniform(0.5, 1.5, int(ring.sum()))
        else:  # crane: a thin bright line with a cross-bar
            angle = rng.uniform(0, 180)
            length = rng.uniform(10, 30)
            _paste(refl, rectangle(cx, cy, length, rng.uniform(1.0, 2.0), angle), level, rng)
            _paste(refl, rectangle(cx, cy, length * 0.4, 1.2, angle + 90), level, rng)


def _piers(rng, refl, land, sea_level, p: Preset) -> list[tuple[float, float, float, float, float]]:
    """Bright piers from the coast into the sea (in place, marked as land). Returns (cx, cy, length, width, angle)."""
    h, w = land.shape
    out = []
    coast_y, coast_x = np.nonzero(land & ~_erode(land))
    if len(coast_y) == 0:
        return out
    for _ in range(int(rng.integers(p.piers[0], p.piers[1] + 1))):
        i = int(rng.integers(len(coast_y)))
        y, x = coast_y[i], coast_x[i]
        normal = _sea_normal(land, y, x)  # radians, towards the sea
        angle = np.degrees(normal) + rng.uniform(-20, 20)
        length, width = rng.uniform(20, min(120, 0.4 * min(h, w))), rng.uniform(3, 6)
        cx = x + 0.5 + np.cos(np.deg2rad(angle)) * (length / 2 - 2)
        cy = y + 0.5 + np.sin(np.deg2rad(angle)) * (length / 2 - 2)
        level = sea_level * 10 ** (rng.uniform(8, 18) / 10)
        poly = rectangle(cx, cy, length, width, angle)
        mask = _paste(refl, poly, level, rng, occupancy=land)
        if mask.size:
            hx, hy = cx + np.cos(np.deg2rad(angle)) * length / 2, cy + np.sin(np.deg2rad(angle)) * length / 2
            _paste(refl, rectangle(hx, hy, width * 1.6, width * 1.6, angle), level * 3, rng, occupancy=land)
            out.append((cx, cy, length, width, angle))
    return out


def _erode(mask: np.ndarray) -> np.ndarray:
    out = mask.copy()
    out[1:] &= mask[:-1]
    out[:-1] &= mask[1:]
    out[:, 1:] &= mask[:, :-1]
    out[:, :-1] &= mask[:, 1:]
    return out


def _sea_normal(land: np.ndarray, y: int, x: int, r: int = 6) -> float:
    """Direction (radians) from land towards sea at (y, x): minus the local land-mask gradient."""
    window = land[max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1].astype(float)
    if min(window.shape) < 2:
        return 0.0
    gy, gx = np.gradient(window)
    gy, gx = float(gy.mean()), float(gx.mean())
    if abs(gx) + abs(gy) < 1e-9:
        return float(np.arctan2(land.shape[0] / 2 - y, land.shape[1] / 2 - x))
    return float(np.arctan2(-gy, -gx))


def _distance_to_coast(land: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    if not land.any():
        return np.full(land.shape, np.inf)
    return ndimage.distance_transform_edt(land) + ndimage.distance_transform_edt(~land)


# --------------------------------------------------------------------------------------------- sea


def _sea(rng, shape: tuple[int, int], level: float, p: Preset) -> np.ndarray:
    """Sea σ⁰: swell, lognormal two-scale texture and, sometimes, wind-roughened patches (before speckle)."""
    h, w = shape
    swell = 1 + 0.3 * np.clip(_field(rng, shape, min(h, w) / 5, min(h, w) / 5) / 2, -1, 1)
    sigma = rng.uniform(*p.sea_texture)
    z = (_field(rng, shape, 3, 3) + _field(rng, shape, 12, 12)) / np.sqrt(2)
    sea = level * swell * np.exp(sigma * z - sigma**2 / 2)
    if rng.random() < p.wind_probability:
        wind = rng.uniform(0, 180)
        patches = _rotated_field(rng, shape, rng.uniform(60, 150), rng.uniform(15, 40), wind)
        weight = np.clip((patches - _quantile_threshold(1 - rng.uniform(*p.wind_cover))) / 0.5, 0, 1)
        streaky = np.exp(0.4 * _rotated_field(rng, shape, 20, 4, wind) - 0.08)
        gain = 10 ** (rng.uniform(*p.wind_gain_db) / 10)
        sea *= 1 + (gain * streaky - 1) * weight
    return sea


# --------------------------------------------------------------------------------------------- ships

_SIZE_CLASSES = ((5.0, 16.0, (0.25, 0.4)), (16.0, 60.0, (0.15, 0.3)), (60.0, 160.0, (0.13, 0.22)))


def _ship_size(rng, p: Preset, small_only: bool = False) -> tuple[float, float, int]:
    mix = np.asarray(p.size_mix, float)
    if small_only and mix[0] > 0:  # a fleet of small boats
        mix = np.array([0.6, 0.4, 0.0])
    k = int(rng.choice(3, p=mix / mix.sum()))
    lo, hi, ratio = _SIZE_CLASSES[k]
    length = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    return length, max(2.0, length * rng.uniform(*ratio)), k


def _place_ships(rng, land: np.ndarray | None, piers: list, inshore: bool, shape, p: Preset) -> list[tuple]:
    """Ship parameters ``(cx, cy, length, beam, angle)``: open sea, fleets, or berthed at quays/piers and rafted."""
    h, w = shape
    occupancy = np.zeros(shape, bool)
    land = np.zeros(shape, bool) if land is None else land
    ships: list[tuple] = []

    def fits(s, touching: bool) -> bool:
        poly = hull_polygon(*s)
        if poly.min() < 1 or poly[:, 0].max() > w - 1 or poly[:, 1].max() > h - 1:
            return False
        mask, y0, x0 = polygon_mask(poly, shape)
        m = mask > 0
        if m.sum() < 2:
            return False
        sl = (slice(y0, y0 + m.shape[0]), slice(x0, x0 + m.shape[1]))
        if (land[sl] & m).sum() > 0.02 * m.sum():
            return False
        if touching:
            if (occupancy[sl] & m).any():
                return False
        else:
            g = 2
            big = occupancy[max(0, y0 - g) : y0 + m.shape[0] + g, max(0, x0 - g) : x0 + m.shape[1] + g]
            if big.any():
                return False
        occupancy[sl] |= m
        return True

    coast_y, coast_x = np.nonzero(_grow(land, 2) & ~land) if inshore else (np.array([]), np.array([]))
    if inshore:
        n_ships, fleet = int(rng.integers(1, 6)), False
    else:
        fleet = rng.random() < 0.06
        n_ships = int(rng.integers(5, 13)) if fleet else 1 + int(rng.poisson(0.6))
    for _ in range(n_ships * 30):
        if len(ships) >= n_ships:
            break
        length, beam, _k = _ship_size(rng, p, small_only=fleet)
        berth = inshore and rng.random() < p.berth_probability
        if berth and piers and rng.random() < 0.5:  # alongside a pier
            pcx, pcy, plen, pwid, pang = piers[int(rng.integers(len(piers)))]
            side = rng.choice([-1.0, 1.0])
            t = rng.uniform(-0.4, 0.4) * plen
            off = pwid / 2 + beam / 2 + rng.uniform(0.0, 1.0)
            th = np.deg2rad(pang)
            cx = pcx + t * np.cos(th) - side * off * np.sin(th)
            cy = pcy + t * np.sin(th) + side * off * np.cos(th)
            angle, normal = pang + rng.choice([0.0, 180.0]), th + side * np.pi / 2
        elif berth and len(coast_y):  # alongside the quay
            i = int(rng.integers(len(coast_y)))
            normal = _sea_normal(land, int(coast_y[i]), int(coast_x[i]))
            off = beam / 2 + rng.uniform(0.0, 1.0)
            cx, cy = coast_x[i] + 0.5 + np.cos(normal) * off, coast_y[i] + 0.5 + np.sin(normal) * off
            angle = np.degrees(normal) + 90.0
        else:
            cx, cy, angle, normal, berth = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0, 180), 0.0, False
        ship = (float(cx), float(cy), length, beam, float(angle % 360))
        if not fits(ship, touching=berth):
            continue
        ships.append(ship)
        if berth and len(ships) < n_ships + 2 and rng.random() < p.touching_probability:  # rafted alongside
            beam2, length2 = beam * rng.uniform(0.7, 1.3), length * rng.uniform(0.7, 1.3)
            off2 = beam / 2 + beam2 / 2 + rng.uniform(0.0, 1.0)
            s2 = (float(cx + np.cos(normal) * off2), float(cy + np.sin(normal) * off2), length2, max(2.0, beam2),
                  float(angle % 360))
            if fits(s2, touching=True):
                ships.append(s2)
    return ships


def _grow(mask: np.ndarray, r: int) -> np.ndarray:
    out = mask.copy()
    for _ in range(r):
        nxt = out.copy()
        nxt[1:] |= out[:-1]
        nxt[:-1] |= out[1:]
        nxt[:, 1:] |= out[:, :-1]
        nxt[:, :-1] |= out[:, 1:]
        out = nxt
    return out


def _paint_ships(rng, refl: np.ndarray, ships: list, p: Preset) -> tuple[list[float], list[tuple]]:
    """Ships over the local clutter at their drawn SCR (dB); returns the SCRs and the bright points (y, x, σ)."""
    scrs, points = [], []
    for cx, cy, length, beam, angle in ships:
        mask, y0, x0 = polygon_mask(hull_polygon(cx, cy, length, beam, angle), refl.shape)
        m = mask > 0
        window = refl[y0 : y0 + m.shape[0], x0 : x0 + m.shape[1]]
        clutter = float(window[m].mean())
        small = length < 16
        p_dim = min(1.0, 2 * p.dim_ship_fraction) if small else (0.5 * p.dim_ship_fraction if length < 60 else 0.0)
        scr = rng.uniform(*(p.dim_scr_db if rng.random() < p_dim else p.bright_scr_db))
        boost = clutter * (10 ** (scr / 10) - 1)
        window[m] += boost * rng.uniform(0.4, 1.6, int(m.sum()))
        ys, xs = np.nonzero(m)
        if scr >= 10:  # dominant scatterers (superstructure) of the bright ships
            for j in rng.choice(len(ys), size=min(len(ys), int(rng.integers(1, 4))), replace=False):
                window[ys[j], xs[j]] *= 10 ** (rng.uniform(3, 6) / 10)
                if scr >= 15:
                    points.append((y0 + ys[j], x0 + xs[j], float(window[ys[j], xs[j]])))
        scrs.append(round(float(10 * np.log10(window[m].mean() / clutter)), 2))  # as painted, before speckle
    return scrs, points


# --------------------------------------------------------------------------------------------- artefacts


def _ghosts(rng, refl: np.ndarray, sea_level: float, axis: int) -> None:
    """Azimuth ambiguities: bright reflectivity copied ±d along ``axis``, 18–25 dB down and smeared (in place)."""
    from scipy.ndimage import uniform_filter1d

    bright = np.where(refl > 10 * sea_level, refl, 0.0)
    if not bright.any():
        return
    d = int(rng.uniform(40, 160))
    if d >= refl.shape[axis]:
        return
    smeared = uniform_filter1d(bright, size=int(rng.integers(3, 10)), axis=axis, mode="constant")
    for sign in (1, -1):
        ghost = smeared * 10 ** (-rng.uniform(18, 25) / 10)
        src = [slice(None)] * 2
        dst = [slice(None)] * 2
        src[axis], dst[axis] = (slice(0, -d), slice(d, None)) if sign > 0 else (slice(d, None), slice(0, -d))
        refl[tuple(dst)] += ghost[tuple(src)]


def _streaks(rng, refl: np.ndarray, land: np.ndarray | None, sea_level: float, points: list, range_axis: int) -> None:
    """Sidelobe streaks of the brightest scatterers along both axes, and thin line segments in the sea (in place)."""
    h, w = refl.shape
    for y, x, peak in sorted(points, key=lambda t: -t[2])[:8]:
        for axis in (0, 1):
            L = rng.uniform(20, 120)
            k = np.arange(-int(3 * L), int(3 * L) + 1)
            k = k[np.abs(k) >= 2]
            lobe = peak * 10 ** (-rng.uniform(22, 32) / 10) * np.exp(-np.abs(k) / L)
            if axis == 0:
                ok = (y + k >= 0) & (y + k < h)
                refl[(y + k)[ok], x] += lobe[ok]
            else:
                ok = (x + k >= 0) & (x + k < w)
                refl[y, (x + k)[ok]] += lobe[ok]
    for _ in range(int(rng.poisson(1.5))):
        length = int(rng.uniform(20, 80))
        level = sea_level * 10 ** (rng.uniform(4, 10) / 10)
        if range_axis == 1:
            y, x0 = int(rng.integers(h)), int(rng.integers(max(1, w - length)))
            seg = (y, slice(x0, x0 + length))
        else:
            x, y0 = int(rng.integers(w)), int(rng.integers(max(1, h - length)))
            seg = (slice(y0, y0 + length), x)
        sea = ~land[seg] if land is not None else True
        refl[seg] += level * sea * rng.uniform(0.5, 1.5, refl[seg].shape)


# --------------------------------------------------------------------------------------------- scene


def render_scene(rng: np.random.Generator, inshore: bool, preset: str | Preset = "default",
                 land_masks: list[np.ndarray] | None = None) -> tuple[np.ndarray, float, dict]:
    """One scene in linear intensity (speckled): ``(intensity, sea_level, truth)``.

    ``truth``: ``scene``, ``land_fraction``, ``width``, ``height``, ``ships`` (cx, cy, length, beam, angle),
    ``ship_scr_db``, ``looks``, ``land_source`` ("synthetic", or the index of the real mask used).
    """
    p = get_preset(preset)
    w, h = int(rng.integers(320, 551)), int(rng.integers(250, 451))
    land, land_source = None, None
    if inshore and land_masks:
        k = int(rng.integers(len(land_masks)))
        land = land_masks[k]
        land = land[::-1] if rng.random() < 0.5 else land
        land = np.ascontiguousarray(land[:, ::-1] if rng.random() < 0.5 else land)
        h, w = land.shape
        land_source = k
    sea_level = rng.uniform(0.01, 0.05)
    refl = _sea(rng, (h, w), sea_level, p)
    piers: list = []
    if inshore:
        if land is None:
            fraction = draw_land_fraction(rng, p)
            land = coast_mask(rng, (h, w), fraction)
            land_source = "synthetic"
            if not land.any():  # a sliver rounded away: keep at least a strip of coast
                land[: max(1, int(fraction * h)), :] = True
        land = land.copy()
        refl = np.where(land, _land_reflectivity(rng, land, sea_level, p), refl)
        _land_scatterers(rng, refl, land, _distance_to_coast(land), sea_level, p)
        piers = _piers(rng, refl, land, sea_level, p)
    ships = _place_ships(rng, land, piers, inshore, (h, w), p)
    scrs, points = _paint_ships(rng, refl, ships, p)
    azimuth = int(rng.integers(2))
    if p.ghosts:
        _ghosts(rng, refl, sea_level, azimuth)
    if p.streaks:
        _streaks(rng, refl, land, sea_level, points, 1 - azimuth)
    looks = float(rng.uniform(*p.looks))
    intensity = refl * C.speckle(rng, (h, w), looks=looks)
    truth = {
        "scene": "inshore" if inshore else "offshore",
        "land_fraction": float(land.mean()) if land is not None else 0.0,
        "width": w,
        "height": h,
        "ships": [[round(float(v), 4) for v in s] for s in ships],
        "ship_scr_db": scrs,
        "looks": round(looks, 3),
        "land_source": land_source,
    }
    return intensity, sea_level, truth

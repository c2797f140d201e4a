"""Synthetic WHU-OPT-SAR: co-registered GF-1-like optical (R,G,B,NIR) and GF-3-like SAR tiles with land-use labels.

Writes the real layout (see PROVENANCE.md section 5)::

    whu-opt-sar/
      optical/<tile>.tif   uint8 (H, W, 4) R,G,B,NIR, contiguous
      sar/<tile>.tif       uint8 (H, W) amplitude in dB, 8-bit like the released GF-3 tiles
      lbl/<tile>.tif       uint8 (H, W): 0 background, 10 farmland, 20 city, 30 village, 40 water, 50 forest,
                           60 road, 70 others
      The division of the dataset.txt   the split in the official format (CRLF, ``train:`` / blank / ``test:``)
      synth_truth.json     per tile: class pixel histogram, split, size

Tiles are named like the real map sheets (``NH49E001013``). Every tile is a **scene**, ``urban``, ``rural`` or
``mixed`` (in turn, so each appears about equally often; the split keeps every scene in the test set once there are
enough test tiles), and the scene sets the class mixture (seed 003's premise, which its scene-level auxiliary task
relies on):

* ``urban``: one large city covering much of the tile, a dense road grid, a park of forest, little farmland, no
  villages;
* ``rural``: farmland with many small villages, forest on the hills, lakes, a few roads, no city;
* ``mixed``: a town of moderate size, villages in the surrounding farmland, forest and water.

City and village have the **same** local SAR and optical appearance (reflectivity, point-scatterer density,
colour): only their context (extent, the roads and farmland around them, the scene) tells them apart, as seed 003's
Fig. 2 argues for the real tiles. The land-use map is drawn at quarter resolution (terrain noise → forest on hills,
lakes in hollows, farmland elsewhere, built-up areas per scene, "others" and unlabelled background patches),
upsampled, then crossed at full resolution by a river and roads. Each class gets its own SAR reflectivity and texture
(water dark and smooth, forest textured mid-grey, built-up bright with point scatterers, farmland in parcels, roads
dark lines) times unit-mean gamma speckle, and its own optical colour. Pixels are made in row blocks so a full-size
tile never needs more than a few of its own size in memory. ``synth_truth.json`` records each tile's scene.

Default: 4 tiles of 768 × 512 (3 train / 1 test, 6 patches of 256² each), well under a second each. ``full=True``:
100 tiles of 5556 × 3704 as released, 80/20 split; that is ~12 GB on disk (≈120 MB per tile) and slow: ≈5 s and
350 MB of memory per tile measured here, ~8 minutes for the 100 tiles.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from sardata._io import atomic_path, write_bytes
from sardata.synth._common import smooth_noise, speckle, write_truth

#: Label value → class name (the dataset's README).
CLASS_VALUES = {0: "background", 10: "farmland", 20: "city", 30: "village", 40: "water", 50: "forest", 60: "road",
                70: "others"}
SPLIT_FILE_NAME = "The division of the dataset.txt"
FULL_TILE_SIZE = (5556, 3704)  # (width, height)
SMALL_TILE_SIZE = (768, 512)
FULL_TILE_COUNT = 100
SMALL_TILE_COUNT = 4
#: Scene types, assigned to the tiles in turn (after a seeded shuffle of the tile order).
SCENES = ("urban", "rural", "mixed")

#: Land-use map resolution divisor: regions are drawn on a grid this much coarser than the tile.
_COARSE = 4
#: Rows generated at a time for the full-resolution pixels (bounds memory for 5556-wide tiles).
_BLOCK_ROWS = 256

# Mean SAR reflectivity (linear intensity) per class, before texture and speckle. City (20) and village (30) are
# built-up land of the same look: only context separates them.
_SAR_SIGMA = {0: 0.05, 10: 0.06, 20: 0.22, 30: 0.22, 40: 0.004, 50: 0.12, 60: 0.008, 70: 0.09}
# Share of built-up pixels that are very bright dihedral returns (the same for city and village).
_SCATTER_DENSITY = 0.015
# Mean optical R, G, B, NIR digital numbers per class.
_OPTICAL_MEAN = {
    0: (105, 100, 95, 80),
    10: (115, 140, 80, 125),
    20: (160, 155, 145, 100),
    30: (160, 155, 145, 100),
    40: (35, 55, 75, 15),
    50: (45, 85, 45, 155),
    60: (135, 135, 135, 85),
    70: (165, 150, 110, 100),
}
# dB range mapped to 0..255 in the 8-bit SAR tiles (fixed, so tiles are radiometrically comparable).
_SAR_DB_RANGE = (-28.0, 2.0)
_SAR_LOOKS = 2.0


def generate(
    out_dir: Path,
    n: int | None = None,
    seed: int = 0,
    full: bool = False,
    tile_size: tuple[int, int] | None = None,
) -> Path:
    """Writes a synthetic WHU-OPT-SAR under ``out_dir/whu-opt-sar`` and returns that root.

    Args:
        out_dir: output directory (created).
        n (None): number of tiles (default 4, or 100 with ``full``).
        seed (0): random seed; output is deterministic for a seed.
        full (False): real tile size 5556 × 3704 and 100 tiles (~12 GB, slow).
        tile_size (None): ``(width, height)`` of every tile, overriding the default.
    """
    n_tiles = n if n is not None else (FULL_TILE_COUNT if full else SMALL_TILE_COUNT)
    if n_tiles < 1:
        raise ValueError(f"n must be at least 1, got {n_tiles}")
    width, height = tile_size or (FULL_TILE_SIZE if full else SMALL_TILE_SIZE)
    if width < 16 or height < 16:
        raise ValueError(f"tile_size must be at least 16 × 16, got {width} × {height}")
    root = Path(out_dir) / "whu-opt-sar"
    for sub in ("optical", "sar", "lbl"):
        (root / sub).mkdir(parents=True, exist_ok=True)

    tile_ids = tile_names(n_tiles)
    scenes = assign_scenes(tile_ids, np.random.default_rng([seed, 104729]))
    splits = _split_tiles(tile_ids, np.random.default_rng([seed, 7919]), scenes)
    truth_tiles = {}
    for index, tile_id in enumerate(_progress(tile_ids, "synth whu_opt_sar tiles")):
        rng = np.random.default_rng([seed, index])
        label = land_use_map(rng, (height, width), scenes[tile_id])
        sar, optical = render_tile(rng, label)
        _write_tiff(root / "lbl" / f"{tile_id}.tif", label)
        _write_tiff(root / "sar" / f"{tile_id}.tif", sar)
        _write_tiff(root / "optical" / f"{tile_id}.tif", optical, photometric="rgb", extrasamples=["unspecified"])
        counts = np.bincount(label.ravel(), minlength=256)
        truth_tiles[tile_id] = {
            "split": splits[tile_id],
            "scene": scenes[tile_id],
            "width": width,
            "height": height,
            "histogram": {name: int(counts[value]) for value, name in CLASS_VALUES.items()},
        }
    write_bytes(root / SPLIT_FILE_NAME, format_split_file(splits).encode("ascii"))
    write_truth(
        root,
        {
            "dataset": "whu_opt_sar",
            "seed": seed,
            "tile_size": [width, height],
            "scenes": list(SCENES),
            "classes": {str(value): name for value, name in CLASS_VALUES.items()},
            "tiles": truth_tiles,
        },
    )
    return root


# --------------------------------------------------------------------------------------------- names and split


def tile_names(n: int) -> list[str]:
    """``n`` distinct map-sheet-like tile names (``NH49E001013`` style: sheet, row, column), sorted."""
    return [f"NH49E{1 + i // 24:03d}{1 + i % 24:03d}" for i in range(n)]


def assign_scenes(tile_ids: list[str], rng: np.random.Generator) -> dict[str, str]:
    """``{tile: scene}``: :data:`SCENES` in turn over a seeded shuffle of the tiles (balanced within one tile)."""
    order = rng.permutation(len(tile_ids))
    return {tile_ids[i]: SCENES[rank % len(SCENES)] for rank, i in enumerate(order)}


def _split_tiles(tile_ids: list[str], rng: np.random.Generator,
                 scenes: dict[str, str] | None = None) -> dict[str, str]:
    """80/20 train/test by tile, as the official split (at least one test tile once there are two tiles).

    With ``scenes``, test tiles are taken from the scenes in turn, so every scene is tested once there are as many
    test tiles as scenes.
    """
    n_test = round(0.2 * len(tile_ids))
    if len(tile_ids) >= 2:
        n_test = max(1, n_test)
    order = rng.permutation(len(tile_ids)).tolist()
    if scenes:
        by_scene = {scene: [i for i in order if scenes[tile_ids[i]] == scene] for scene in SCENES}
        order = [i for rank in range(len(tile_ids)) for scene in SCENES
                 if rank < len(by_scene[scene]) for i in [by_scene[scene][rank]]]
    test = set(order[:n_test])
    return {tile_id: ("test" if i in test else "train") for i, tile_id in enumerate(tile_ids)}


def format_split_file(splits: dict[str, str]) -> str:
    """The split file text in the official format: CRLF, ``train:``, names, blank, ``test:``, names, blank.

    Names are listed in the order of ``splits`` (the generator passes them sorted; the real file is not).
    """
    lines = ["train:"] + [f"{t}.tif" for t, s in splits.items() if s == "train"] + [""]
    lines += ["test:"] + [f"{t}.tif" for t, s in splits.items() if s == "test"] + [""]
    return "\r\n".join(lines) + "\r\n"


# --------------------------------------------------------------------------------------------- land-use map


def land_use_map(rng: np.random.Generator, shape: tuple[int, int], scene: str = "mixed") -> np.ndarray:
    """A uint8 label map of ``shape`` (H, W) with the eight WHU-OPT-SAR label values, for a :data:`SCENES` scene."""
    if scene not in SCENES:
        raise ValueError(f"scene must be one of {SCENES}, got {scene!r}")
    height, width = shape
    ch, cw = math.ceil(height / _COARSE), math.ceil(width / _COARSE)
    coarse = np.full((ch, cw), 10, dtype=np.uint8)  # farmland is the matrix of the Hubei plains
    side = min(ch, cw)

    terrain = smooth_noise(rng, (ch, cw), scale=max(6, side // 3))
    forest_share = {"urban": 0.1, "rural": 0.3, "mixed": 0.25}[scene] * rng.uniform(0.7, 1.3)
    coarse[terrain >= np.quantile(terrain, 1 - forest_share)] = 50  # forest on the hills (a park in a city)
    coarse[terrain <= np.quantile(terrain, rng.uniform(0.03, 0.08))] = 40  # lakes in the hollows

    blob_noise = smooth_noise(rng, (ch, cw), scale=max(3, side // 12))
    if scene != "rural":  # one city: most of an urban tile, a town in a mixed one
        radius = (rng.uniform(0.45, 0.6) if scene == "urban" else rng.uniform(0.15, 0.25)) * side
        centre = (0.5 + rng.uniform(-0.1, 0.1)) if scene == "urban" else rng.uniform(0.3, 0.7)
        cy, cx = centre * ch, (0.5 + rng.uniform(-0.15, 0.15) if scene == "urban" else rng.uniform(0.3, 0.7)) * cw
        _paint_blob(coarse, 20, cy, cx, radius, blob_noise, over=(10, 50))
    n_villages = {"urban": 0, "rural": 4, "mixed": 2}[scene] * max(1, ch * cw // 1500)
    for _ in range(n_villages):
        y, x = rng.uniform(0, ch), rng.uniform(0, cw)
        if coarse[int(y), int(x)] == 10:  # villages sit in the farmland
            _paint_blob(coarse, 30, y, x, rng.uniform(2.0, 5.0), blob_noise, over=(10,))

    others = smooth_noise(rng, (ch, cw), scale=max(3, side // 10))
    coarse[(others >= np.quantile(others, 0.97)) & (coarse == 10)] = 70
    unlabelled = smooth_noise(rng, (ch, cw), scale=max(3, side // 10))
    coarse[unlabelled >= np.quantile(unlabelled, 0.975)] = 0

    label = np.repeat(np.repeat(coarse, _COARSE, axis=0), _COARSE, axis=1)[:height, :width].copy()
    scale = max(1.0, min(height, width) / 1000.0)
    _draw_band(label, 40, rng, width=rng.uniform(6, 12) * scale, curvy=True)  # a river
    n_roads = {"urban": rng.integers(5, 9), "rural": rng.integers(1, 3), "mixed": rng.integers(2, 5)}[scene]
    for _ in range(int(n_roads)):
        _draw_band(label, 60, rng, width=rng.uniform(3, 5) * scale, curvy=False)  # roads cross everything
    return label


def _paint_blob(grid: np.ndarray, value: int, cy: float, cx: float, radius: float, noise: np.ndarray,
                over: tuple[int, ...] | None = None) -> None:
    """Paints an irregular disc (radius modulated by ``noise``) into ``grid`` in place, touching only its window
    (and, with ``over``, only cells holding one of those values)."""
    h, w = grid.shape
    reach = int(radius * 1.4) + 1
    y0, y1 = max(0, int(cy) - reach), min(h, int(cy) + reach + 1)
    x0, x1 = max(0, int(cx) - reach), min(w, int(cx) + reach + 1)
    if y0 >= y1 or x0 >= x1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1]
    dist = np.hypot(yy - cy, xx - cx)
    inside = dist <= radius * (0.6 + 0.8 * noise[y0:y1, x0:x1])
    if over is not None:
        inside &= np.isin(grid[y0:y1, x0:x1], over)
    grid[y0:y1, x0:x1][inside] = value


def _draw_band(label: np.ndarray, value: int, rng: np.random.Generator, width: float, curvy: bool) -> None:
    """Draws a line of ``width`` pixels across the tile (a river when ``curvy``, else a straight road), in place."""
    height, width_px = label.shape
    vertical = bool(rng.integers(2))
    length, across = (height, width_px) if vertical else (width_px, height)
    start = rng.uniform(0.1, 0.9) * across
    slope = rng.uniform(-0.4, 0.4)
    amplitude = rng.uniform(0.03, 0.08) * across if curvy else 0.0
    period = rng.uniform(0.5, 1.5) * length
    phase = rng.uniform(0, 2 * np.pi)
    coords = np.arange(across, dtype=np.float32)
    for t0 in range(0, length, _BLOCK_ROWS):
        t = np.arange(t0, min(length, t0 + _BLOCK_ROWS), dtype=np.float32)
        centre = start + slope * (t - length / 2) + amplitude * np.sin(2 * np.pi * t / period + phase)
        band = np.abs(coords[None, :] - centre[:, None]) <= width / 2
        if vertical:
            label[t0 : t0 + len(t)][band] = value
        else:
            label[:, t0 : t0 + len(t)][band.T] = value


# --------------------------------------------------------------------------------------------- pixels


def render_tile(rng: np.random.Generator, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SAR (uint8, H×W, dB-scaled amplitude) and optical (uint8, H×W×4) images of a label map."""
    height, width = label.shape
    ch, cw = math.ceil(height / _COARSE), math.ceil(width / _COARSE)
    # Textures are drawn coarse and upsampled by index: full-resolution noise fields would cost GBs on 5556² tiles.
    canopy = (0.55 + 0.9 * smooth_noise(rng, (ch, cw), scale=2)).astype(np.float32)
    relief = (0.8 + 0.4 * smooth_noise(rng, (ch, cw), scale=max(4, min(ch, cw) // 6))).astype(np.float32)
    parcel_h, parcel_w = int(rng.integers(20, 48)), int(rng.integers(28, 72))
    parcels = rng.uniform(0.5, 1.6, size=(height // parcel_h + 2, width // parcel_w + 2)).astype(np.float32)
    greenness = rng.uniform(0.75, 1.25, size=parcels.shape).astype(np.float32)
    stagger = rng.integers(0, parcel_w, size=parcels.shape[0])

    sigma_lut = np.zeros(256, dtype=np.float32)
    optical_lut = np.zeros((256, 4), dtype=np.float32)
    for value, sigma in _SAR_SIGMA.items():
        sigma_lut[value] = sigma
        optical_lut[value] = _OPTICAL_MEAN[value]
    lo_db, hi_db = _SAR_DB_RANGE

    sar = np.empty((height, width), dtype=np.uint8)
    optical = np.empty((height, width, 4), dtype=np.uint8)
    cols = np.arange(width)
    for y0 in range(0, height, _BLOCK_ROWS):
        rows = np.arange(y0, min(height, y0 + _BLOCK_ROWS))
        lbl = label[rows]
        coarse_y, coarse_x = rows[:, None] // _COARSE, cols[None, :] // _COARSE
        tex = canopy[coarse_y, coarse_x]
        hill = relief[coarse_y, coarse_x]
        parcel_row = rows // parcel_h
        parcel_col = (cols[None, :] + stagger[parcel_row][:, None]) // parcel_w
        field = parcels[parcel_row[:, None], parcel_col]
        green = greenness[parcel_row[:, None], parcel_col]

        farmland, forest = lbl == 10, lbl == 50
        built = (lbl == 20) | (lbl == 30)
        sigma = sigma_lut[lbl] * hill
        sigma = np.where(farmland, sigma * field, sigma)
        sigma = np.where(forest, sigma * tex, sigma)
        # dihedral returns of buildings: sparse very bright points, as dense in villages as in the city
        scatter = built & (rng.random(lbl.shape) < _SCATTER_DENSITY)
        sigma = np.where(scatter, sigma * rng.uniform(10, 60, lbl.shape).astype(np.float32), sigma)
        intensity = sigma * speckle(rng, lbl.shape, looks=_SAR_LOOKS).astype(np.float32)
        db = 10.0 * np.log10(np.maximum(intensity, 1e-8))
        sar[rows] = (np.clip((db - lo_db) / (hi_db - lo_db), 0, 1) * 255 + 0.5).astype(np.uint8)

        colour = optical_lut[lbl] * (0.85 + 0.3 * (tex[..., None] - 0.55) / 0.9) * hill[..., None]
        colour = np.where(farmland[..., None], colour * (0.8 + 0.2 * field[..., None]), colour)
        colour[..., 1] = np.where(farmland, colour[..., 1] * green, colour[..., 1])
        colour[..., 3] = np.where(farmland, colour[..., 3] * green, colour[..., 3])
        colour += rng.normal(0, 3.0, colour.shape).astype(np.float32)
        optical[rows] = np.clip(colour + 0.5, 0, 255).astype(np.uint8)
    return sar, optical


# --------------------------------------------------------------------------------------------- output


def _write_tiff(path: Path, array: np.ndarray, **kwargs) -> None:
    """Writes an uncompressed TIFF, atomically."""
    import tifffile

    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, array, **kwargs)


def _progress(items: list, desc: str):
    """A tqdm bar when there are enough tiles to wait for."""
    if len(items) < 10:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="tile")

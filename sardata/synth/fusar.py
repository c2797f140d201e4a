"""Synthetic FUSAR-Ship 1.0: ``<Category>/<SubCategory>/Ship_C<xx>S<yy>N<zzzz>.tiff`` chips and ``meta.csv``.

Chips are 512×512 single-channel uint8 TIFFs with the ship at the centre: single-look gamma speckle over sea clutter,
a ship whose size and shape follow its category (cargo long and slender, tankers wide, fishing boats small) drawn
at Gaofen-3 pixel spacing (``heightspace``/``widthspace`` ≈ 1.7 m × 1.1 m), quantised in dB.
Category proportions follow the release (Cargo 2114, Other 1644, Fishing 789, Tanker 248, Unspecified 142, …; 5243
chips with ``full=True``). ``meta.csv`` is tab-separated with Windows ``Category\\SubCategory`` paths, lists ~21%
extra rows whose chips do not exist (6358 rows for 5243 chips in the release) and misses the rows of ~5% of the chips.
Some vessels (MMSI) appear in several chips.

``synth_truth.json``: ``chips[<id>]`` = category, subcategory, MMSI, whether it has a meta.csv row;
``meta_rows_without_chip`` = the ids listed in meta.csv without a chip.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter
from tqdm import tqdm

from sardata._io import write_bytes
from sardata.datasets.taxonomy import FUSAR_CATEGORIES
from sardata.synth._common import (
    atomic_root, paste_target, sea_clutter, speckle, to_uint8_amplitude, write_truth,
)
from sardata.synth.opensarship import ship_mask

ROOT_NAME = "FUSAR_Ship1.0"
CHIP_SIZE = 512
DEFAULT_CHIPS = 40
#: Chips per category in the release, in :data:`FUSAR_CATEGORIES` order (sum 5243).
RELEASE_COUNTS = [2114, 1644, 789, 248, 142, 64, 64, 61, 37, 35, 16, 15, 6, 5, 3]
#: Subcategory folders per category (C01 S01 AggregatesCarrier and S02 BulkCarrier are from the README; the others
#: are plausible names, not confirmed).
SUBCATEGORIES: dict[str, list[str]] = {
    "Cargo": ["AggregatesCarrier", "BulkCarrier", "CementCarrier", "ContainerShip", "GeneralCargo", "OreCarrier"],
    "Other": ["Other", "Barge", "ResearchVessel", "SupplyVessel"],
    "Fishing": ["Fishing", "Trawler"],
    "Tanker": ["OilProductsTanker", "ChemicalTanker", "LPGTanker", "CrudeOilTanker"],
}
#: (length range m, length/width ratio range) per category; the rest use "Other".
_SHAPES = {"Cargo": ((100, 300), (6.0, 7.5)), "Tanker": ((90, 250), (4.3, 5.3)), "Fishing": ((15, 50), (3.5, 4.5)),
           "Other": ((20, 120), (4.0, 6.0))}
EXTRA_ROW_FRACTION = (6358 - 5243) / 5243
MISSING_ROW_FRACTION = 0.05


def category_counts(n: int) -> dict[str, int]:
    """``n`` chips split over the categories in the release's proportions (largest remainder)."""
    total = sum(RELEASE_COUNTS)
    exact = np.array(RELEASE_COUNTS, dtype=float) * n / total
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    return {c: int(k) for c, k in zip(FUSAR_CATEGORIES, counts) if k > 0}


def _chip(rng: np.random.Generator, category: str, spacing: tuple[float, float]) -> tuple[np.ndarray, float, float]:
    """One chip (uint8) and the ship's true length and width in metres."""
    (lo, hi), (rlo, rhi) = _SHAPES.get(category, _SHAPES["Other"])
    length = float(rng.uniform(lo, hi))
    width = length / float(rng.uniform(rlo, rhi))
    refl = sea_clutter(rng, (CHIP_SIZE, CHIP_SIZE), level=0.03)
    side = int(min(CHIP_SIZE, np.ceil(length / min(spacing)) + 8)) | 1
    mask = ship_mask(side, spacing, length, width, float(rng.uniform(0, 180)))
    brightness = {"Fishing": 3.0, "Cargo": 10.0, "Tanker": 10.0}.get(category, 5.0) * float(rng.uniform(0.5, 2.0))
    paste_target(refl, mask, CHIP_SIZE / 2, CHIP_SIZE / 2, brightness, rng)
    refl = gaussian_filter(refl, sigma=1.0)  # the system point-spread function blurs the scatterers
    intensity = refl * speckle(rng, refl.shape, looks=1.0)
    return to_uint8_amplitude(intensity, low_db=-35.0, high_db=25.0), length, width


def _tiff_bytes(chip: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(chip, mode="L").save(buffer, format="TIFF")
    return buffer.getvalue()


def generate(out_dir: Path, n: int | None = None, seed: int = 0, full: bool = False) -> Path:
    """Writes a synthetic FUSAR-Ship under ``out_dir/FUSAR_Ship1.0`` and returns that root.

    Args:
        out_dir: output directory (created).
        n (None): number of chips (default 40; 5243 with ``full``).
        seed (0): random seed; the output is deterministic for a seed.
        full (False): release-sized output (5243 chips in the release's category counts).
    """
    rng = np.random.default_rng(seed)
    n_chips = n if n is not None else (sum(RELEASE_COUNTS) if full else DEFAULT_CHIPS)
    if n_chips < 1:
        raise ValueError(f"n must be at least 1, got {n_chips}")
    out_dir = Path(out_dir)
    truth: dict = {"dataset": "fusar", "seed": seed, "chips": {}, "meta_rows_without_chip": []}
    rows: list[tuple[str, list[str]]] = []
    vessels: list[tuple[str, int, float, float]] = []  # (category, mmsi, length, width) seen so far
    progress = tqdm(total=n_chips, desc="FUSAR-Ship chips", unit="chip", disable=None, leave=False)
    try:
        with atomic_root(out_dir, ROOT_NAME) as tmp:
            for category, count in category_counts(n_chips).items():
                c_number = FUSAR_CATEGORIES.index(category) + 1
                subcategories = SUBCATEGORIES.get(category, [category])
                per_sub = np.bincount(rng.integers(0, len(subcategories), count), minlength=len(subcategories))
                for s_index, (subcategory, sub_count) in enumerate(zip(subcategories, per_sub), start=1):
                    polar_mode = str(rng.choice(["DH", "DH", "DV"]))
                    for k in range(1, int(sub_count) + 1):
                        chip_id = f"Ship_C{c_number:02d}S{s_index:02d}N{k:04d}"
                        spacing = (float(rng.uniform(1.10, 1.13)), float(rng.uniform(1.69, 1.73)))  # width, height
                        chip, length, width = _chip(rng, category, spacing)
                        same = [v for v in vessels if v[0] == category]
                        if same and rng.random() < 0.25:  # the same vessel imaged again
                            _, mmsi, length, width = same[int(rng.integers(len(same)))]
                        else:
                            mmsi = int(rng.integers(100_000_000, 800_000_000))
                            vessels.append((category, mmsi, length, width))
                        write_bytes(tmp / category / subcategory / f"{chip_id}.tiff", _tiff_bytes(chip))
                        progress.update()
                        has_row = rng.random() >= MISSING_ROW_FRACTION
                        row = [str(mmsi), str(round(length)), str(round(width)), polar_mode,
                               f"{rng.uniform(20, 45):.2f}", f"{spacing[1]:.6g}", f"{spacing[0]:.6g}",
                               f"{category}\\{subcategory}"]
                        if has_row:
                            rows.append((chip_id, row))
                        truth["chips"][chip_id] = {"category": category, "subcategory": subcategory, "mmsi": mmsi,
                                                   "has_meta_row": has_row, "length_m": length, "width_m": width,
                                                   "path": f"{category}/{subcategory}/{chip_id}.tiff"}
                    # rows of chips the release does not ship (numbered after the existing ones)
                    n_extra = int(rng.binomial(max(int(sub_count), 1) * 3, EXTRA_ROW_FRACTION / 3))
                    for k in range(int(sub_count) + 1, int(sub_count) + 1 + n_extra):
                        chip_id = f"Ship_C{c_number:02d}S{s_index:02d}N{k:04d}"
                        extra_mmsi = str(int(rng.integers(100_000_000, 800_000_000)))
                        rows.append((chip_id, [extra_mmsi, "0", "0", polar_mode, f"{rng.uniform(20, 45):.2f}",
                                               "1.70", "1.12", f"{category}\\{subcategory}"]))
                        truth["meta_rows_without_chip"].append(chip_id)
            header = ["id", "mmsi", "length", "width", "polarMode", "centerLookAngle", "heightspace", "widthspace",
                      "path"]
            lines = ["\t".join(header)] + ["\t".join([chip_id, *values]) for chip_id, values in sorted(rows)]
            write_bytes(tmp / "meta.csv", ("\r\n".join(lines) + "\r\n").encode())
            write_truth(tmp, truth)
    finally:
        progress.close()
    return out_dir / ROOT_NAME

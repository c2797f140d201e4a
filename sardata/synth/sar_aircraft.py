"""Synthetic SAR-AIRcraft-1.0: aircraft of the seven classes parked on an airfield, in the real VOC layout.

Scene (built in intensity, then gamma speckle): textured grass, a dark runway (smooth asphalt backscatters little)
with bright edge lights, a parallel taxiway, a concrete apron, a bright terminal; aircraft parked nose-in in a row
on the apron and a few taxiing, each an :func:`sardata.synth._common.aircraft_footprint` with the class's real
length and wingspan (metres × the image's pixel scale) and cross sidelobes. The whole layout is then rotated by a
multiple of 90° and maybe mirrored, boxes with it. Class frequencies follow the real dataset's object counts.

Files under ``out_dir/SAR-AIRcraft-1.0``: ``JPEGImages/<7-digit id>.jpg`` (grayscale, mode L),
``Annotations/<id>.xml`` (no indentation, CRLF, only ``<size>`` and ``<object>``, as the real files),
``ImageSets/Main/{train,val,trainval,test}.txt`` and ``synth_truth.json``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from sardata._io import write_bytes
from sardata.synth import _common as C
from sardata.synth.ssdd import write_voc_xml

ROOT_NAME = "SAR-AIRcraft-1.0"
FULL_SIZE = 4368
DEFAULT_SIZE = 20
FULL_IMAGE_SIDES = (800, 1000, 1200, 1500)
#: How often each side occurs in the real dataset (1312, 1085, 1038, 933 images).
FULL_SIDE_WEIGHTS = np.array([1312, 1085, 1038, 933]) / 4368
#: Class → (length range, wingspan range) in metres (published dimensions; "other" spans business jets to cargo).
AIRCRAFT_SIZES = {
    "A220": ((35.0, 38.7), (35.1, 35.1)),
    "A320/321": ((37.6, 44.5), (35.8, 35.8)),
    "A330": ((58.8, 63.7), (60.3, 64.0)),
    "ARJ21": ((33.5, 33.5), (27.3, 27.3)),
    "Boeing737": ((33.6, 42.1), (34.3, 35.9)),
    "Boeing787": ((56.7, 68.3), (60.1, 60.1)),
    "other": ((12.0, 70.0), (12.0, 68.0)),
}
#: Object counts per class in the real dataset (the synthetic class frequencies).
CLASS_COUNTS = {"other": 4264, "A220": 3730, "Boeing787": 2645, "Boeing737": 2557, "A320/321": 1771, "ARJ21": 1187, "A330": 309}


def _draw_class(rng: np.random.Generator) -> str:
    names = list(CLASS_COUNTS)
    weights = np.array([CLASS_COUNTS[k] for k in names], dtype=float)
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


def _aircraft_size(rng: np.random.Generator, label: str, px_per_m: float) -> tuple[float, float]:
    (l0, l1), (s0, s1) = AIRCRAFT_SIZES[label]
    length = rng.uniform(l0, l1)
    span = rng.uniform(s0, s1) if label != "other" else min(s1, max(s0, length * rng.uniform(0.8, 1.15)))
    return length * px_per_m, span * px_per_m


def _airfield(rng: np.random.Generator, side: int, px_per_m: float) -> tuple[np.ndarray, dict]:
    """Axis-aligned airfield reflectivity (runway and taxiway horizontal) and the apron/taxiway rows."""
    refl = C.land_reflectivity(rng, (side, side), level=rng.uniform(0.04, 0.08))  # grass and soil
    runway_y = int(side * rng.uniform(0.06, 0.18))
    runway_half = max(3, int(22 * px_per_m))
    taxi_y = runway_y + runway_half + max(8, int(rng.uniform(60, 110) * px_per_m))
    taxi_half = max(2, int(11 * px_per_m))
    apron_top = taxi_y + taxi_half + max(4, int(10 * px_per_m))
    apron_bottom = int(side * rng.uniform(0.8, 0.9))
    concrete = 0.006 * (0.8 + 0.4 * C.smooth_noise(rng, (side, side), scale=32))
    refl[max(0, runway_y - runway_half) : runway_y + runway_half] = 0.002  # smooth asphalt: specular, dark
    refl[taxi_y - taxi_half : taxi_y + taxi_half] = 0.003
    refl[apron_top:apron_bottom] = concrete[apron_top:apron_bottom]
    lights = np.arange(0, side, max(4, int(30 * px_per_m)))  # runway edge lights: bright point scatterers
    for edge in (runway_y - runway_half, runway_y + runway_half - 1):
        if 0 <= edge < side:
            refl[edge, lights] += 2.0
    refl[apron_bottom:] += 0.4 * (C.smooth_noise(rng, (side - apron_bottom, side), scale=6) > 0.55)  # terminal
    return refl, {"taxi_y": taxi_y, "apron_top": apron_top, "apron_bottom": apron_bottom}


def render_image(rng: np.random.Generator, side: int, px_per_m: float) -> tuple[np.ndarray, list[dict]]:
    """One airfield image (uint8, mode-L pixels) and its aircraft ``{"name", "box"}`` (inclusive pixel boxes)."""
    refl, layout = _airfield(rng, side, px_per_m)
    objects: list[dict] = []
    occupied: list[tuple[float, float, float, float]] = []

    def place(label: str, cx: float, cy: float, angle: float, length: float, span: float) -> None:
        reach = max(length, span) * 0.75 + 2
        if cx - reach < 0 or cy - reach < 0 or cx + reach > side - 1 or cy + reach > side - 1:
            return
        extent = (cx - span / 2, cy - span / 2, cx + span / 2, cy + span / 2)
        if any(extent[0] < o[2] and o[0] < extent[2] and extent[1] < o[3] and o[1] < extent[3] for o in occupied):
            return
        footprint = C.aircraft_footprint(length, span, angle)
        box = C.paste_target(refl, footprint, cy, cx, rng.uniform(0.3, 1.5), rng)
        occupied.append(extent)
        objects.append({"name": label, "box": list(box), "length_px": round(length, 2), "wingspan_px": round(span, 2),
                        "angle": round(angle, 2)})

    # parking row along the apron's far edge, nose towards the terminal
    x = rng.uniform(0.02, 0.1) * side
    while x < side:
        label = _draw_class(rng)
        length, span = _aircraft_size(rng, label, px_per_m)
        if rng.random() < 0.8:
            cy = layout["apron_bottom"] - length / 2 - rng.uniform(2, 8) * px_per_m
            place(label, x + span / 2, cy, 90 + rng.normal(0, 3), length, span)
        x += span + rng.uniform(8, 30) * px_per_m
    # a few aircraft taxiing
    for _ in range(int(rng.integers(0, 3))):
        label = _draw_class(rng)
        length, span = _aircraft_size(rng, label, px_per_m)
        place(label, rng.uniform(0, side), layout["taxi_y"], rng.choice([0.0, 180.0]) + rng.normal(0, 2), length, span)

    image = C.to_uint8_amplitude(refl * C.speckle(rng, (side, side), looks=rng.uniform(2, 4)))
    return _reorient(rng, image, objects)


def _reorient(rng, image: np.ndarray, objects: list[dict]) -> tuple[np.ndarray, list[dict]]:
    """Rotates the scene by k·90° and maybe mirrors it, moving the inclusive boxes along."""
    side = image.shape[0]
    for _ in range(int(rng.integers(0, 4))):  # np.rot90: (y, x) → (side-1-x, y)
        image = np.rot90(image)
        for o in objects:
            xmin, ymin, xmax, ymax = o["box"]
            o["box"] = [ymin, side - 1 - xmax, ymax, side - 1 - xmin]
    if rng.random() < 0.5:
        image = image[:, ::-1]
        for o in objects:
            xmin, ymin, xmax, ymax = o["box"]
            o["box"] = [side - 1 - xmax, ymin, side - 1 - xmin, ymax]
    return np.ascontiguousarray(image), objects


def generate(out_dir: Path, n: int | None = None, seed: int = 0, full: bool = False) -> Path:
    """Writes a synthetic SAR-AIRcraft-1.0 under ``out_dir/SAR-AIRcraft-1.0`` and returns that root.

    Args:
        out_dir: output directory (created).
        n (None): number of images; default 4368 with ``full``, else 20.
        seed (0): random seed; the output is deterministic for a seed (image k depends only on seed and k).
        full (False): real image sizes (800–1500 px square) and pixel scale; otherwise 256–512 px images.
    """
    n = int(n if n is not None else (FULL_SIZE if full else DEFAULT_SIZE))
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    out_dir = Path(out_dir)
    with C.atomic_root(out_dir, ROOT_NAME) as tmp:
        truth = _write_all(tmp, n, seed, full)
        C.write_truth(tmp, {"dataset": "sar_aircraft", "seed": seed, "n": n, "images": truth})
    return out_dir / ROOT_NAME


def _write_all(root: Path, n: int, seed: int, full: bool) -> dict:
    truth: dict = {}
    splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for number in tqdm(range(1, n + 1), desc="synth sar_aircraft", disable=n < 100):
        image_id = f"{number:07d}"
        rng = np.random.default_rng([seed, number])
        if full:
            side = int(FULL_IMAGE_SIDES[rng.choice(4, p=FULL_SIDE_WEIGHTS)])
            px_per_m = rng.uniform(1.2, 1.8)
        else:
            side = int(rng.integers(256, 513))
            px_per_m = rng.uniform(0.7, 1.0)
        image, objects = render_image(rng, side, px_per_m)
        buffer = io.BytesIO()
        Image.fromarray(image, mode="L").save(buffer, format="JPEG", quality=95)
        write_bytes(root / "JPEGImages" / f"{image_id}.jpg", buffer.getvalue())
        write_voc_xml(root / "Annotations" / f"{image_id}.xml", side, side, objects, indent="")
        split = str(rng.choice(["train", "val", "test"], p=[0.7, 0.1, 0.2]))
        splits[split].append(image_id)
        truth[image_id] = {"width": side, "height": side, "px_per_m": round(px_per_m, 4), "split": split, "objects": objects}
    lists = dict(splits, trainval=sorted(splits["train"] + splits["val"]))
    for name, ids in lists.items():
        write_bytes(root / "ImageSets" / "Main" / f"{name}.txt", "".join(f"{i}\n" for i in ids).encode())
    return truth

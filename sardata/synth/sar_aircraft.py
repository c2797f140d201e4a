"""Synthetic SAR-AIRcraft-1.0: aircraft of the seven classes parked on an airfield, in the real VOC layout.

Scene (built in intensity, then gamma speckle): textured grass, a dark runway (smooth asphalt backscatters little)
with bright edge lights, a parallel taxiway, a concrete apron, a terminal with a bright facade and jet bridges,
apron clutter (vehicles, light masts with sidelobes, markings); aircraft parked nose-in in a row on the apron and a
few taxiing. Each aircraft (:func:`aircraft_reflectivity`) is a weak airframe plus its bright scattering centres —
engines, wing roots, nose, tail, wingtip devices — laid out by the class's :data:`AIRCRAFT_MODELS` entry with the
real length and wingspan (metres × the image's pixel scale), jittered per instance. A220, A320/321 and Boeing737
have overlapping sizes and the same sweep; they differ by a few pixels of engine position, nacelle shape, wingtips
and scattering-centre brightness, so they are genuinely hard to tell apart (fine-grained); clutter of aircraft-part
size sits next to them. The whole layout is then rotated by a multiple of 90° and maybe mirrored, boxes with it.
Class frequencies follow the real dataset's object counts (tempered in ``small`` scenes).

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
#: Class → airframe model. Lengths/spans in metres (published dimensions); ``engines`` are spanwise positions as a
#: fraction of the semi-span (``None``: two engines on the rear fuselage); ``sweep`` in degrees; ``tail`` "T" or
#: "low"; ``tips`` bright wingtip devices (sharklets/winglets); ``nacelle`` (along-track length, across width) in
#: metres of the engine return; ``scatter`` the brightness of (nose, wing root, tail) scattering centres relative to
#: the engines. The three narrow-bodies A220, A320/321 and Boeing737 overlap in length and span and share the sweep:
#: they differ in engine position (737 close in, A220 furthest out), nacelle shape (737 flat and long), wingtips and
#: the relative brightness of their scattering centres — a few pixels at SAR-AIRcraft's ~1 m resolution.
AIRCRAFT_MODELS = {
    "A220": dict(length=(35.0, 38.7), span=(35.1, 35.1), sweep=25, engines=(0.38,), tail="low", tips=False,
                 nacelle=(3.4, 2.4), scatter=(0.5, 0.9, 0.6)),
    "A320/321": dict(length=(37.6, 44.5), span=(35.8, 35.8), sweep=25, engines=(0.32,), tail="low", tips=True,
                     nacelle=(3.6, 2.2), scatter=(0.6, 0.6, 0.8)),
    "Boeing737": dict(length=(33.6, 42.1), span=(34.3, 35.9), sweep=25, engines=(0.26,), tail="low", tips=True,
                      nacelle=(4.4, 1.6), scatter=(0.9, 0.5, 0.6)),
    "ARJ21": dict(length=(33.5, 33.5), span=(27.3, 27.3), sweep=25, engines=None, tail="T", tips=True,
                  nacelle=(3.6, 1.8), scatter=(0.5, 0.6, 1.0)),
    "A330": dict(length=(58.8, 63.7), span=(60.3, 64.0), sweep=30, engines=(0.31,), tail="low", tips=True,
                 nacelle=(5.0, 3.2), scatter=(0.6, 0.8, 0.7)),
    "Boeing787": dict(length=(56.7, 68.3), span=(60.1, 60.1), sweep=32, engines=(0.30,), tail="low", tips=False,
                      nacelle=(5.2, 3.4), scatter=(0.7, 0.6, 0.6)),
    "other": dict(length=(12.0, 70.0), span=(12.0, 68.0), sweep=None, engines="random", tail="random", tips=False,
                  nacelle=(3.0, 2.0), scatter=(0.7, 0.7, 0.7)),
}
#: Class → (length range, wingspan range) in metres.
AIRCRAFT_SIZES = {k: (m["length"], m["span"]) for k, m in AIRCRAFT_MODELS.items()}
#: Object counts per class in the real dataset (the synthetic class frequencies).
CLASS_COUNTS = {"other": 4264, "A220": 3730, "Boeing787": 2645, "Boeing737": 2557, "A320/321": 1771, "ARJ21": 1187, "A330": 309}
#: Small scenes (``small=True``): side range in pixels and pixel scale; aircraft of the narrow-body trio are then
#: ~28–45 px long, wide-bodies ~50–70 px. Class draws are tempered (∝ count^0.5) so that A330 is not absent from a
#: few-hundred-image set.
SMALL_SIDES = (144, 176)
SMALL_PX_PER_M = (0.85, 1.0)


def _draw_class(rng: np.random.Generator, temper: float = 1.0) -> str:
    names = list(CLASS_COUNTS)
    weights = np.array([CLASS_COUNTS[k] for k in names], dtype=float) ** temper
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


def _aircraft_size(rng: np.random.Generator, label: str, px_per_m: float) -> tuple[float, float]:
    (l0, l1), (s0, s1) = AIRCRAFT_SIZES[label]
    length = rng.uniform(l0, l1)
    span = rng.uniform(s0, s1) if label != "other" else min(s1, max(s0, length * rng.uniform(0.8, 1.15)))
    return length * px_per_m, span * px_per_m


def _instance(rng: np.random.Generator, label: str) -> dict:
    """One airframe of ``label``: the class model with per-instance jitter (and a random layout for ``other``)."""
    m = dict(AIRCRAFT_MODELS[label])
    if label == "other":  # business jets, turboprops, freighters: anything goes
        kind = rng.choice(["rear", "wing2", "wing4"], p=[0.35, 0.4, 0.25])
        m["engines"] = None if kind == "rear" else (rng.uniform(0.25, 0.45),) if kind == "wing2" else (0.3, 0.6)
        m["sweep"] = float(rng.uniform(5, 35))
        m["tail"] = "T" if kind == "rear" or rng.random() < 0.3 else "low"
        m["tips"] = bool(rng.random() < 0.5)
        m["scatter"] = tuple(rng.uniform(0.4, 1.0, 3))
    if m["engines"] not in (None,):
        m["engines"] = tuple(e + rng.normal(0, 0.015) for e in m["engines"])
    m["sweep"] = float(m["sweep"]) + rng.normal(0, 1.5)
    m["scatter"] = tuple(float(s * rng.uniform(0.8, 1.2)) for s in m["scatter"])
    return m


def _gauss(yy, xx, cy, cx, sy, sx) -> np.ndarray:
    return np.exp(-0.5 * ((yy - cy) / sy) ** 2 - 0.5 * ((xx - cx) / sx) ** 2)


def aircraft_reflectivity(model: dict, length: float, span: float, angle: float, px_per_m: float,
                          rng: np.random.Generator | None = None) -> np.ndarray:
    """Reflectivity patch (square, centred) of one airframe: a weak body plus its bright scattering centres.

    The body (fuselage, swept wings, tailplane) scatters diffusely; SAR sees an aircraft mainly as a handful of
    strong returns: engine intakes/nacelles, the wing–fuselage junction, the nose and the tail, and wingtip devices.
    Coordinates: ``u`` along the fuselage (nose at ``+L/2``), ``v`` across; the patch is rotated by ``angle``.
    """
    size = int(np.ceil(max(length, span) * 1.2)) + 5
    c = (size - 1) / 2
    yy, xx = np.mgrid[0:size, 0:size] - c
    th = np.deg2rad(angle)
    u = xx * np.cos(th) + yy * np.sin(th)
    v = -xx * np.sin(th) + yy * np.cos(th)
    half_fus = max(1.0, 1.9 * px_per_m)
    tan_sweep = np.tan(np.deg2rad(model["sweep"]))
    root_u = 0.08 * length  # wing root (leading edge) slightly ahead of the middle
    chord = max(1.5, 0.14 * length)
    lead = root_u - np.abs(v) * tan_sweep
    wing = (u <= lead) & (u >= lead - chord * (1 - 0.6 * np.abs(v) / (span / 2))) & (np.abs(v) <= span / 2)
    fuselage = (np.abs(u) <= length / 2) & (np.abs(v) <= half_fus * np.sqrt(np.clip(1 - (u / (length / 2)) ** 8, 0, 1)))
    tail_span = span * (0.3 if model["tail"] == "T" else 0.36)
    tail_lead = -0.36 * length - np.abs(v) * tan_sweep
    tail = (u <= tail_lead) & (u >= tail_lead - 0.07 * length) & (np.abs(v) <= tail_span / 2)
    body = (fuselage | wing | tail).astype(np.float64)
    texture = rng.uniform(0.3, 1.7, body.shape) if rng is not None else 1.0
    refl = 0.08 * body * texture  # diffuse airframe: ~10 dB over concrete, far below the scattering centres
    eng_l, eng_w = (max(1.0, d * px_per_m) for d in model["nacelle"])
    if model["engines"] is None:  # two engines on the rear fuselage, either side
        for side in (-1, 1):
            refl += 1.0 * _gauss(u, v, -0.28 * length, side * (half_fus + eng_w * 0.6), eng_l / 2.3, eng_w / 2.3)
    else:
        for frac in model["engines"]:
            for side in (-1, 1):
                ev = side * frac * span / 2
                eu = root_u - abs(ev) * tan_sweep + 0.3 * eng_l  # nacelles sit ahead of the leading edge
                refl += 1.0 * _gauss(u, v, eu, ev, eng_l / 2.3, eng_w / 2.3)
    nose, root, tail_s = model["scatter"]
    refl += nose * _gauss(u, v, length / 2 - 1.5 * px_per_m, 0, 1.0, 1.0)
    for side in (-1, 1):
        refl += root * _gauss(u, v, root_u - chord * 0.5, side * half_fus * 1.3, 1.0, 1.0)
        if model["tips"]:
            refl += 0.8 * _gauss(u, v, root_u - span / 2 * tan_sweep - chord * 0.3, side * span / 2, 0.9, 0.9)
    tail_u = -0.40 * length if model["tail"] == "low" else -0.45 * length
    refl += tail_s * _gauss(u, v, tail_u, 0, 1.2 if model["tail"] == "T" else 1.0, 1.0)
    if model["tail"] == "T":  # the T-tail's horizontal surface at the top of the fin: a bright bar across
        refl += 0.5 * tail_s * _gauss(u, v, tail_u, 0, 0.8, tail_span / 3)
    return refl


def _paste(refl: np.ndarray, patch: np.ndarray, cy: float, cx: float, gain: float) -> tuple[int, int, int, int]:
    """Adds ``patch × gain`` centred at (cy, cx) in place; returns the tight box (inclusive) of ``patch > 0.1``."""
    h, w = refl.shape
    ph, pw = patch.shape
    y0, x0 = int(round(cy - ph / 2)), int(round(cx - pw / 2))
    ys, xs = np.nonzero(patch > 0.02)
    yy, xx = ys + y0, xs + x0
    keep = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
    refl[yy[keep], xx[keep]] += gain * patch[ys[keep], xs[keep]]
    ys, xs = np.nonzero(patch > 0.015)
    yy, xx = np.clip(ys + y0, 0, h - 1), np.clip(xs + x0, 0, w - 1)
    return int(xx.min()), int(yy.min()), int(xx.max()), int(yy.max())


def _add_sidelobes(refl: np.ndarray, cy: float, cx: float, brightness: float, reach: int) -> None:
    """Cross-shaped sinc² sidelobes of a strong scatterer along range and azimuth (in place)."""
    h, w = refl.shape
    py, px = int(np.clip(cy, 0, h - 1)), int(np.clip(cx, 0, w - 1))
    k = np.arange(-reach, reach + 1)
    lobe = brightness * 0.5 * np.sinc(k / 2.0) ** 2
    ok = (py + k >= 0) & (py + k < h)
    refl[(py + k)[ok], px] += lobe[ok]
    ok = (px + k >= 0) & (px + k < w)
    refl[py, (px + k)[ok]] += lobe[ok]


def _airport_clutter(rng: np.random.Generator, refl: np.ndarray, rows: tuple[int, int], px_per_m: float) -> None:
    """Man-made scatterers of an apron (in place): ground vehicles, light masts, service-road markings, parked
    equipment — bright blobs and lines of aircraft-part size that a detector must learn to ignore."""
    side_y, side_x = refl.shape
    top, bottom = rows
    area = (bottom - top) * side_x
    for _ in range(int(rng.poisson(area / 2500))):  # tugs, fuel trucks, baggage carts: 3–12 m, very bright
        y, x = rng.uniform(top, bottom), rng.uniform(0, side_x)
        ln, wd = rng.uniform(3, 12) * px_per_m, rng.uniform(2, 3) * px_per_m
        y0, x0 = int(y), int(x)
        horizontal = rng.random() < 0.5
        hh, ww = (int(max(1, wd)), int(max(2, ln))) if horizontal else (int(max(2, ln)), int(max(1, wd)))
        refl[y0 : y0 + hh, x0 : x0 + ww] += rng.uniform(0.4, 1.5)
    for x in np.arange(rng.uniform(0, 40), side_x, rng.uniform(35, 60) * px_per_m):  # apron light masts
        y = int(np.clip(top + rng.uniform(-3, 3), 0, side_y - 1))
        refl[y, int(x)] += rng.uniform(1.0, 3.0)
        _add_sidelobes(refl, y, x, rng.uniform(0.5, 1.5), 6)
    for _ in range(int(rng.integers(0, 3))):  # painted service-road / stand lines: faint long lines
        y = int(rng.uniform(top, bottom))
        refl[y, :] += 0.02


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
    _terminal(rng, refl, apron_bottom, px_per_m)
    return refl, {"taxi_y": taxi_y, "apron_top": apron_top, "apron_bottom": apron_bottom}


def _apron_chip(rng: np.random.Generator, side: int, px_per_m: float) -> tuple[np.ndarray, dict]:
    """A small scene cut from an apron: concrete, a terminal along the bottom edge, a taxiway line above."""
    refl = 0.006 * (0.8 + 0.4 * C.smooth_noise(rng, (side, side), scale=24))
    taxi_y = int(rng.uniform(0.05, 0.15) * side)
    refl[max(0, taxi_y - 4) : taxi_y + 4] = 0.003
    apron_bottom = int(side * rng.uniform(0.84, 0.92))
    _terminal(rng, refl, apron_bottom, px_per_m)
    return refl, {"taxi_y": taxi_y, "apron_top": taxi_y + 6, "apron_bottom": apron_bottom}


def _terminal(rng: np.random.Generator, refl: np.ndarray, apron_bottom: int, px_per_m: float) -> None:
    """Terminal and hangars below ``apron_bottom``: bright roofs, a very bright dihedral facade edge, and jet
    bridges (bright bars) reaching onto the apron (in place)."""
    side_y, side_x = refl.shape
    roof = 0.15 + 0.4 * (C.smooth_noise(rng, (side_y - apron_bottom, side_x), scale=6) > 0.55)
    refl[apron_bottom:] += roof
    refl[apron_bottom, :] += rng.uniform(0.8, 2.0)  # facade–ground dihedral
    for x in np.arange(rng.uniform(10, 40) * px_per_m, side_x, rng.uniform(40, 55) * px_per_m):  # jet bridges
        length = int(rng.uniform(8, 20) * px_per_m)
        x0 = int(x)
        refl[max(0, apron_bottom - length) : apron_bottom, x0 : x0 + max(1, int(2.5 * px_per_m))] += rng.uniform(0.3, 0.9)


def render_image(rng: np.random.Generator, side: int, px_per_m: float, temper: float = 1.0,
                 chip: bool = False) -> tuple[np.ndarray, list[dict]]:
    """One airfield image (uint8, mode-L pixels) and its aircraft ``{"name", "box"}`` (inclusive pixel boxes).

    Args:
        rng: random generator.
        side: image side in pixels.
        px_per_m: pixel scale.
        temper (1.0): class draws ∝ real count ** temper.
        chip (False): a small apron scene without runway (see :func:`_apron_chip`).
    """
    refl, layout = (_apron_chip if chip else _airfield)(rng, side, px_per_m)
    objects: list[dict] = []
    occupied: list[tuple[float, float, float, float]] = []

    def place(label: str, cx: float, cy: float, angle: float, length: float, span: float) -> None:
        patch = aircraft_reflectivity(_instance(rng, label), length, span, angle, px_per_m, rng)
        half = patch.shape[0] / 2
        if cx - half * 0.8 < 0 or cy - half * 0.8 < 0 or cx + half * 0.8 > side - 1 or cy + half * 0.8 > side - 1:
            return
        extent = (cx - span / 2, cy - span / 2, cx + span / 2, cy + span / 2)
        if any(extent[0] < o[2] and o[0] < extent[2] and extent[1] < o[3] and o[1] < extent[3] for o in occupied):
            return
        box = _paste(refl, patch, cy, cx, rng.uniform(0.6, 1.6))
        _add_sidelobes(refl, cy, cx, rng.uniform(0.2, 0.8), int(max(length, span) * 0.8))
        occupied.append(extent)
        objects.append({"name": label, "box": list(box), "length_px": round(length, 2), "wingspan_px": round(span, 2),
                        "angle": round(angle, 2)})

    # parking rows along the apron's far edge (and a second row in chips), nose towards the terminal
    rows = [layout["apron_bottom"]]
    if chip:
        rows.append(int(layout["apron_bottom"] * rng.uniform(0.45, 0.55)))
    for row in rows:
        x = rng.uniform(0.0, 0.1) * side
        while x < side:
            label = _draw_class(rng, temper)
            length, span = _aircraft_size(rng, label, px_per_m)
            if rng.random() < 0.85:
                cy = row - length / 2 - rng.uniform(2, 8) * px_per_m
                place(label, x + span / 2, cy, 90 + rng.normal(0, 3), length, span)
            x += span + rng.uniform(6, 25) * px_per_m
    # a few aircraft taxiing
    for _ in range(int(rng.integers(0, 2 if chip else 3))):
        label = _draw_class(rng, temper)
        length, span = _aircraft_size(rng, label, px_per_m)
        place(label, rng.uniform(0, side), layout["taxi_y"], rng.choice([0.0, 180.0]) + rng.normal(0, 2), length, span)
    _airport_clutter(rng, refl, (layout["apron_top"], layout["apron_bottom"]), px_per_m)

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


def generate(out_dir: Path, n: int | None = None, seed: int = 0, full: bool = False, small: bool = False) -> Path:
    """Writes a synthetic SAR-AIRcraft-1.0 under ``out_dir/SAR-AIRcraft-1.0`` and returns that root.

    Args:
        out_dir: output directory (created).
        n (None): number of images; default 4368 with ``full``, else 20.
        seed (0): random seed; the output is deterministic for a seed (image k depends only on seed and k).
        full (False): real image sizes (800–1500 px square) and pixel scale; otherwise 256–512 px images.
        small (False): small apron scenes (:data:`SMALL_SIDES`, :data:`SMALL_PX_PER_M`; two parking rows, no
            runway) for CPU-sized detector runs at the native pixel scale; class draws tempered.
    """
    if full and small:
        raise ValueError("choose full or small, not both")
    n = int(n if n is not None else (FULL_SIZE if full else DEFAULT_SIZE))
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    out_dir = Path(out_dir)
    with C.atomic_root(out_dir, ROOT_NAME) as tmp:
        truth = _write_all(tmp, n, seed, full, small)
        C.write_truth(tmp, {"dataset": "sar_aircraft", "seed": seed, "n": n, "images": truth})
    return out_dir / ROOT_NAME


def _write_all(root: Path, n: int, seed: int, full: bool, small: bool = False) -> dict:
    truth: dict = {}
    splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for number in tqdm(range(1, n + 1), desc="synth sar_aircraft", disable=n < 100):
        image_id = f"{number:07d}"
        rng = np.random.default_rng([seed, number])
        if full:
            side = int(FULL_IMAGE_SIDES[rng.choice(4, p=FULL_SIDE_WEIGHTS)])
            px_per_m = rng.uniform(1.2, 1.8)
        elif small:
            side = int(rng.integers(SMALL_SIDES[0], SMALL_SIDES[1] + 1))
            px_per_m = rng.uniform(*SMALL_PX_PER_M)
        else:
            side = int(rng.integers(256, 513))
            px_per_m = rng.uniform(0.7, 1.0)
        image, objects = render_image(rng, side, px_per_m, temper=0.5 if small else 1.0, chip=small)
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

"""Synthetic OpenSARShip: Sentinel-1 scene folders of ship chips with Ship.xml, in the release's exact layout.

Each scene folder holds ``Patch/`` (float32 DN: GRD amplitude per polarisation, SLC re/im pairs), ``Patch_Cal/``
(float32 sigma0 intensity per polarisation), ``Patch_Uint8/`` (PackBits uint8 per polarisation), ``Patch_RGB/``
(jet-colormap figure; PNG bytes named ``.tif`` in v1.0), ``Ship.xml`` (CRLF, tab-indented; v2.0 GRD ends with the
malformed ``<\\ShipList>``) and the SNAP metadata XML (``Metedata.xml`` in v1.0, ``<scene>.xml`` in v2.0).

Ships are drawn from a vessel pool with a *true* hull class (Cargo long and slender, Tanker wide, Fishing small,
Other medium); the AIS ``Ship_Type`` code mostly agrees with it, but some vessels broadcast code 0 ("Other Type"), as
in the real data. Some vessels appear in several scenes with the same MMSI. Each scene's Ship.xml also lists ships
without patches. One "Search and Rescue vessel" keeps its full type name in ``Patch/`` and ``Patch_Uint8/`` but is
truncated to ``Search`` in ``Patch_Cal/`` and ``Patch_RGB/``, as in the real release.

``synth_truth.json``: ``chips[<scene>/x<Cx>_y<Cy>]`` = true class (before the AIS mapping), AIS code, the AIS-mapped
class, MMSI, type name, product type; ``ships_without_patches[<scene>]`` = count.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image
from scipy.ndimage import gaussian_filter
from tqdm import tqdm

from sardata._io import write_bytes
from sardata.datasets.taxonomy import AisClassMap, ais_type_name
from sardata.synth._common import atomic_root, paste_target, sea_clutter, write_truth

ROOT_NAME = "OpenSARShip"
#: Chips in the small default and in ``full=True`` (the release has ~11k chips in 85 scene zips, 35 SLC and 50 GRD).
DEFAULT_CHIPS, FULL_CHIPS, FULL_SCENES, FULL_V1_SCENES = 30, 11346, 85, 41
#: DN = sqrt(sigma0) × gain: GRD DN 7…12590 and SLC re/im −9307…11133 in the real chips.
GRD_GAIN, SLC_GAIN = 600.0, 150.0
#: (true class, probability, AIS codes drawn for it)
_CLASSES = [
    ("Cargo", 0.55, [70] * 8 + [71, 74, 77, 79]),
    ("Tanker", 0.2, [80] * 6 + [81, 82, 84, 89]),
    ("Fishing", 0.1, [30]),
    ("Other", 0.15, [52, 60, 55, 33, 90, 50]),
]
_ELABORATED = {
    "Cargo": ["Bulk Carrier", "Container Ship", "General Cargo", "Cargo", "Vehicles Carrier", "Cement Carrier"],
    "Tanker": ["Oil Products Tanker", "LPG Tanker", "Crude Oil Tanker", "Chemical Tanker", "Tanker"],
    "Fishing": ["Fishing"],
    "Other": ["Tug", "Passenger Ship", "Law Enforce", "Dredger", "Research/Survey Vessel", "Pilot Vessel"],
}
#: (length range m, length/width ratio range) per true class.
_SHAPES = {"Cargo": ((120, 300), (6.0, 7.5)), "Tanker": ((100, 250), (4.3, 5.3)), "Fishing": ((15, 45), (3.5, 4.5)),
           "Other": ((25, 120), (4.0, 6.0))}
_FLAGS = ["China [CN]", "Panama [PA]", "Liberia [LR]", "Hong Kong [HK]", "Singapore [SG]", "Marshall Is [MH]"]
_SYLLABLES = ["MIN", "DONG", "YU", "HAI", "XIN", "DA", "TANG", "PENG", "MAO", "FOREST", "OCEAN", "STAR", "LONG"]


@dataclass
class SceneSpec:
    name: str
    release: str  # "1.0" | "2.0"
    product: str  # "GRD" | "SLC"
    polarisations: list[str]
    start: datetime
    malformed: bool
    n_chips: int
    n_extra: int


@dataclass
class Vessel:
    mmsi: int
    true_class: str
    ais_code: int
    elaborated: str
    length: float
    width: float
    name: str
    callsign: str
    imo: int
    flag: str


# --------------------------------------------------------------------------------------------- plan


def _scene_specs(rng: np.random.Generator, n_chips: int, full: bool) -> list[SceneSpec]:
    if full:
        n_scenes = FULL_SCENES
        kinds = [("1.0" if i < FULL_V1_SCENES else "2.0", "SLC" if i % 17 < 7 else "GRD", "DV" if i % 3 else "SV")
                 for i in range(n_scenes)]
    else:
        # the five product/release flavours of the real samples
        kinds = [("1.0", "GRD", "DV"), ("2.0", "GRD", "DV"), ("2.0", "SLC", "DV"), ("2.0", "GRD", "SV"),
                 ("2.0", "SLC", "SV")][: max(1, min(5, n_chips))]
    per_scene = np.full(len(kinds), n_chips // len(kinds))
    per_scene[: n_chips % len(kinds)] += 1
    specs = []
    start = datetime(2015, 8, 23, 22, 12, 33)
    for i, (release, product, pol) in enumerate(kinds):
        start = start + timedelta(days=int(rng.integers(3, 40)), seconds=int(rng.integers(0, 86400)))
        stop = start + timedelta(seconds=25)
        orbit = 7000 + i * 137
        name = (f"S1A_IW_{'GRDH' if product == 'GRD' else 'SLC_'}_1S{pol}_{start:%Y%m%dT%H%M%S}_{stop:%Y%m%dT%H%M%S}_"
                f"{orbit:06d}_{rng.integers(0, 2**24):06X}_{rng.integers(0, 2**16):04X}")
        specs.append(SceneSpec(
            name=name, release=release, product=product, polarisations=["VH", "VV"] if pol == "DV" else ["VV"],
            start=start, malformed=release == "2.0" and product == "GRD", n_chips=int(per_scene[i]),
            n_extra=0 if i == 0 else int(rng.integers(1, 4)),
        ))
    return specs


def _new_vessel(rng: np.random.Generator, used_mmsi: set[int], true_class: str | None = None) -> Vessel:
    """A random vessel (``true_class`` forces the class and an AIS code that agrees with it)."""
    names, probs, codes = zip(*[(c, p, k) for c, p, k in _CLASSES])
    forced = true_class is not None
    idx = names.index(true_class) if forced else int(rng.choice(len(names), p=np.array(probs) / sum(probs)))
    true_class = names[idx]
    code = int(rng.choice(codes[idx]))
    if not forced and rng.random() < 0.1:  # AIS "not available": the release files these as "Other Type"
        code = 0
    (lo, hi), (rlo, rhi) = _SHAPES[true_class]
    length = float(rng.uniform(lo, hi))
    width = length / float(rng.uniform(rlo, rhi))
    mmsi = int(rng.integers(200_000_000, 700_000_000))
    while mmsi in used_mmsi:
        mmsi += 1
    used_mmsi.add(mmsi)
    name = " ".join(rng.choice(_SYLLABLES, size=int(rng.integers(2, 4)))) + f" {int(rng.integers(1, 99))}"
    callsign = "".join(rng.choice(list("ABCDEFGHJKLMNPRSTUVWXYZ234567"), size=int(rng.integers(4, 7))))
    elaborated = str(rng.choice(_ELABORATED[true_class]))
    if code == 51:
        elaborated = "Salvage/Rescue Vessel"
    return Vessel(mmsi, true_class, code, elaborated, round(length), max(3, round(width)), name, callsign,
                  int(rng.integers(9_000_000, 9_800_000)) if rng.random() < 0.6 else 0, str(rng.choice(_FLAGS)))


# --------------------------------------------------------------------------------------------- pixels


def ship_mask(side: int, spacing: tuple[float, float], length_m: float, width_m: float, angle_deg: float) -> np.ndarray:
    """Ship footprint on a ``side``² pixel grid of anisotropic ``spacing`` (dx, dy metres): pointed-bow ellipse."""
    dx, dy = spacing
    c = (side - 1) / 2
    yy, xx = np.mgrid[0:side, 0:side]
    x_m, y_m = (xx - c) * dx, (yy - c) * dy
    th = np.deg2rad(angle_deg)
    u = x_m * np.cos(th) + y_m * np.sin(th)
    v = -x_m * np.sin(th) + y_m * np.cos(th)
    half_w = (width_m / 2) * np.sqrt(np.clip(1 - (u / (length_m / 2)) ** 2, 0, 1))
    half_w = np.where(u > length_m / 4, half_w * (1 - (u - length_m / 4) / (length_m / 4) * 0.6), half_w)
    inside = (np.abs(u) <= length_m / 2) & (np.abs(v) <= half_w + min(dx, dy) / 2)
    return inside.astype(np.float64)


def _chip_reflectivity(rng, side, spacing, vessel: Vessel, angle, pols) -> dict[str, np.ndarray]:
    """Noise-free sigma0 per polarisation: sea clutter plus the ship with sidelobes."""
    mask = ship_mask(side, spacing, vessel.length, vessel.width, angle)
    if mask.sum() == 0:  # very small boats on coarse pixels: at least one scatterer
        mask[side // 2, side // 2] = 1.0
    vv_brightness = {"Fishing": 8.0, "Other": 20.0}.get(vessel.true_class, 60.0) * float(rng.uniform(0.5, 2.0))
    out = {}
    for pol in pols:
        co = pol in ("VV", "HH")
        refl = sea_clutter(rng, (side, side), level=0.02 if co else 0.004)
        paste_target(refl, mask, side / 2, side / 2, vv_brightness * (1.0 if co else 0.25), rng)
        out[pol] = gaussian_filter(refl, sigma=0.8)  # the system point-spread function blurs the scatterers
    return out


def _jet_lut() -> np.ndarray:
    """Matlab-style jet colormap as a 256 × 3 uint8 lookup table."""
    t = np.linspace(0, 1, 256)[:, None]
    rgb = np.clip(1.5 - np.abs(4 * t - np.array([3.0, 2.0, 1.0])), 0, 1)
    return (rgb * 255 + 0.5).astype(np.uint8)


_JET = _jet_lut()


def _figure_png(intensity: np.ndarray, size: tuple[int, int]) -> bytes:
    """A Matlab figure rendering of a chip (``imagesc`` + colorbar on white), as PNG bytes, like Patch_RGB."""
    width, height = size
    canvas = np.full((height, width, 3), 255, np.uint8)
    x0, x1, y0, y1 = int(width * 0.114), int(width * 0.797), int(height * 0.073), int(height * 0.89)
    h, w = intensity.shape
    rows = np.arange(y1 - y0) * h // (y1 - y0)
    cols = np.arange(x1 - x0) * w // (x1 - x0)
    levels = np.round(np.clip(intensity / max(float(intensity.max()), 1e-12), 0, 1) * 255).astype(np.uint8)
    canvas[y0:y1, x0:x1] = _JET[levels[rows][:, cols]]  # nearest-neighbour upscaling, like imagesc
    bar_x0, bar_x1 = int(width * 0.822), int(width * 0.867)
    canvas[y0:y1, bar_x0:bar_x1] = _JET[np.linspace(255, 0, y1 - y0).astype(np.uint8)][:, None, :]
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _write_tiff(path: Path, array: np.ndarray) -> None:
    """Uncompressed, pixel-interleaved TIFF without geo tags (the float Patch and Patch_Cal chips)."""
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, photometric="minisblack", planarconfig="contig")
    write_bytes(path, buffer.getvalue())


def _write_packbits_tiff(path: Path, array: np.ndarray) -> None:
    """8-bit PackBits TIFF (Patch_Uint8); Pillow's libtiff encodes PackBits, tifffile needs imagecodecs for it."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="TIFF", compression="packbits")
    write_bytes(path, buffer.getvalue())


# --------------------------------------------------------------------------------------------- XML


def _e(value: float) -> str:
    return f"{value:e}"


def _ship_entry(rng, spec: SceneSpec, vessel: Vessel, cx: int, cy: int, half: int, angle: float,
                spacing: tuple[float, float], lat: float, lon: float) -> list[str]:
    """The lines of one ``<ship>`` element (without indentation of the outer level)."""
    t = spec.start + timedelta(seconds=float(rng.uniform(0, 25)))
    time_utc = f"{t.year}/{t.month}/{t.day}.{t.hour}:{t.minute}:{t.second}"
    half_len_px = vessel.length / 2 / np.array(spacing)
    hx, hy = half_len_px * [np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))]
    ais_length = 0 if rng.random() < 0.08 else int(vessel.length)
    ais_width = 0 if ais_length == 0 else int(vessel.width)
    manual_length = int(vessel.length + rng.normal(0, 15))
    heading = 511.0 if rng.random() < 0.1 else float(rng.uniform(0, 360))  # 511: AIS "not available"
    v1 = spec.release == "1.0"
    name = vessel.name.ljust(20) if rng.random() < 0.1 else vessel.name
    callsign = vessel.callsign.ljust(7) if rng.random() < 0.1 else vessel.callsign
    nan_or = lambda value: str(rng.choice(["NaN", "NaN", "NA"])) if rng.random() < 0.2 else value  # noqa: E731
    sar = [
        ("Time_UTC", time_utc), ("Head_x", int(cx - hx)), ("Head_y", int(cy - hy)), ("Tail_x", int(cx + hx)),
        ("Tail_y", int(cy + hy)), ("UpperLeft_x", cx + half), ("UpperLeft_y", cy + half),
        ("LowerRight_x", cx - half), ("LowerRight_y", cy - half), ("Center_x", cx), ("Center_y", cy),
        ("Center_longitude", _e(lon)), ("Center_latitude", _e(lat)), ("Manual_Length", manual_length),
        ("North_Direction", _e(float(rng.uniform(0, 360)))), ("Chip_Direction", _e(-angle)),
        ("Incidence", f"{rng.uniform(30, 46):.6f}"),
        ("Elevation", "NaN" if rng.random() < 0.25 else f"{(rng.uniform(0, 40) if v1 else 0.0):.6f}"),
        ("Slant_Range_Time" if v1 else "SlantRangeTime", f"{rng.uniform(5.3e6, 5.5e6) if v1 else 0.0:.6f}"),
    ]
    ais = [
        ("Time", int(t.timestamp()) + int(rng.integers(-120, 120))), ("MMSI", vessel.mmsi),
        ("Nav_Status", int(rng.choice([0, 1, 5, 15]))), ("Rot", int(rng.choice([0, 128]))),
        ("Sog", int(rng.integers(0, 150))), ("Pos_Acc", 0), ("Longitude", f"{lon + rng.normal(0, 1e-3):.6f}"),
        ("Latitude", f"{lat + rng.normal(0, 1e-3):.6f}"), ("Projected_Longitude", f"{lon:.6f}"),
        ("Projected_Latitude", f"{lat:.6f}"), ("Cog", f"{rng.uniform(0, 3600):.2f}"), ("True_Head", f"{heading:5.2f}"),
        ("Name", name), ("Ship_Type", vessel.ais_code), ("IMO", vessel.imo), ("Callsign", callsign),
        ("Length", ais_length), ("Width", ais_width), ("Draught", int(rng.integers(0, 150))), ("Msgid", 1),
    ]
    length_error = abs(manual_length - ais_length)
    match = [
        ("Length_error", f"{length_error:.6f}"),
        ("Length_error_rate", "Inf" if ais_length == 0 else f"{length_error / ais_length:.6f}"),
        ("Distance_error", f"{rng.uniform(20, 300):.6f}"),
    ]
    traffic = [
        ("Length_overall", f"{vessel.length:.6f}"), ("Breadth_extreme", f"{vessel.width:.6f}"),
        ("Elaborated_type", vessel.elaborated), ("Gross_tonnage", nan_or(int(vessel.length * vessel.width * 4))),
        ("Deadweight", nan_or(int(vessel.length * vessel.width * 7))), ("Flag", vessel.flag),
        ("Year_built", nan_or(int(rng.integers(1990, 2016)))),
    ]
    lines = ["\t<ship>"]
    for section, values in (("SARShipInformation", sar), ("AISShipInformation", ais), ("MatchInformation", match),
                            ("MarineTrafficInformation", traffic)):
        lines.append(f"\t\t<{section}>")
        lines += [f"\t\t\t<{tag}>{value}</{tag}>" for tag, value in values]
        lines.append(f"\t\t</{section}>")
    if not v1:
        interference = int(rng.random() < 0.2)
        lines += ["\t\t<ChipNoise>", f"\t\t\t<Interference>{interference}</Interference>"]
        if interference:  # the release indents these one level deeper, although they are siblings
            lines += [f"\t\t\t\t<Port>{int(rng.integers(0, 2))}</Port>", "\t\t\t\t<Multi_ship>1</Multi_ship>"]
        lines.append("\t\t</ChipNoise>")
    lines.append("\t</ship>")
    return lines


def _ship_xml(entries: list[list[str]], malformed: bool) -> bytes:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<ShipList>"]
    for entry in entries:
        lines += entry
    lines.append("<\\ShipList>" if malformed else "</ShipList>")  # the v2.0 GRD export's backslash
    return "\r\n".join(lines).encode()


def _metadata_xml(spec: SceneSpec, spacing: tuple[float, float]) -> bytes:
    def attrib(name, value, type_code, unit, desc):
        return f'    <attrib name="{name}" value="{value}" type="{type_code}" unit="{unit}" desc="{desc}" />'

    pols = spec.polarisations + ["-"] * (4 - len(spec.polarisations))
    if spec.release == "1.0":
        pols = ["-"] * 4  # the v1.0 files leave the polarisation slots empty
    first = spec.start.strftime("%d-%b-%Y %H:%M:%S.%f").upper()
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>', "<Metadata>", "  <Abstracted_Metadata>",
        attrib("PRODUCT", spec.name, 41, "", "Product name"),
        attrib("PRODUCT_TYPE", spec.product, 41, "", "Product type"),
        attrib("SPH_DESCRIPTOR", f"Sentinel-1 IW Level-1 {spec.product} Product", 41, "", "Description"),
        attrib("MISSION", "SENTINEL-1A", 41, "", "Satellite mission"),
        attrib("ACQUISITION_MODE", "IW", 41, "", "Acquisition mode"),
        attrib("first_line_time", first, 51, "utc", "First zero doppler azimuth time"),
        attrib("PASS", "ASCENDING" if spec.start.hour < 12 else "DESCENDING", 41, "", "ASCENDING or DESCENDING"),
        attrib("SAMPLE_TYPE", "COMPLEX" if spec.product == "SLC" else "DETECTED", 41, "", "DETECTED or COMPLEX"),
        *[attrib(f"mds{i + 1}_tx_rx_polar", p, 41, "", "Polarization") for i, p in enumerate(pols)],
        attrib("range_spacing", spacing[0], 31, "m", "Range sample spacing"),
        attrib("azimuth_spacing", spacing[1], 31, "m", "Azimuth sample spacing"),
        "  </Abstracted_Metadata>", "</Metadata>", "",
    ]
    return "\r\n".join(lines).encode()


# --------------------------------------------------------------------------------------------- scenes


def _write_scene(rng, root: Path, spec: SceneSpec, vessels: list[Vessel], truth: dict, ais_map: AisClassMap) -> None:
    scene = root / spec.name
    spacing = (10.0, 10.0) if spec.product == "GRD" else (2.329562, 13.93994)
    dual = len(spec.polarisations) == 2
    lat0, lon0 = float(rng.uniform(20, 40)), float(rng.uniform(110, 125))
    entries, used_keys = [], set()
    for i, vessel in enumerate(vessels):
        has_patch = i < spec.n_chips
        side = int(np.clip(round((2.2 * vessel.length + 150) / (10.0 if spec.product == "GRD" else 8.0)), 31, 101))
        half = side // 2
        side = 2 * half + 1  # UpperLeft − LowerRight + 1
        while True:
            cx, cy = int(rng.integers(half + 1, 26000)), int(rng.integers(half + 1, 19000))
            if f"x{cx}_y{cy}" not in used_keys:
                break
        key = f"x{cx}_y{cy}"
        used_keys.add(key)
        angle = float(rng.uniform(0, 180))
        lat, lon = lat0 + cy * 1e-4, lon0 + cx * 1e-4
        entries.append(_ship_entry(rng, spec, vessel, cx, cy, half, angle, spacing, lat, lon))
        if not has_patch:
            continue
        type_name = ais_type_name(vessel.ais_code)
        short_name = type_name.split(" ")[0] if vessel.ais_code == 51 else type_name  # the release's truncation
        refl = _chip_reflectivity(rng, side, spacing, vessel, angle, spec.polarisations)
        cal_bands, patch_bands = [], []
        for pol in spec.polarisations:
            if spec.product == "GRD":
                cal = refl[pol] * rng.gamma(4.4, 1 / 4.4, refl[pol].shape)
                dn = np.maximum(np.round(np.sqrt(cal) * GRD_GAIN), 1.0)
                patch_bands.append(dn)
                cal_bands.append((dn / GRD_GAIN) ** 2)
            else:
                shape = refl[pol].shape  # circular Gaussian: single-look complex speckle
                z = np.sqrt(refl[pol] / 2) * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))
                re, im = np.round(z.real * SLC_GAIN), np.round(z.imag * SLC_GAIN)
                if i == 0:  # a burst edge: zero-filled lines, as found in the real SLC chips
                    re[:3], im[:3] = 0.0, 0.0
                patch_bands += [re, im]
                cal_bands.append((re**2 + im**2) / SLC_GAIN**2)
        patch = np.stack(patch_bands, axis=-1).astype(np.float32)
        cal = np.stack(cal_bands, axis=-1).astype(np.float32)
        _write_tiff(scene / "Patch" / f"{type_name}_{key}.tif", patch[..., 0] if patch.shape[-1] == 1 else patch)
        _write_tiff(scene / "Patch_Cal" / f"{short_name}_{key}.tif", cal[..., 0] if cal.shape[-1] == 1 else cal)
        for b, pol in enumerate(spec.polarisations):
            suffix = f"_{pol.lower()}" if dual else ""
            amplitude = np.sqrt(cal[..., b].astype(np.float64))  # linear amplitude up to the chip maximum
            visual = np.round(amplitude / max(float(amplitude.max()), 1e-12) * 255).astype(np.uint8)
            _write_packbits_tiff(scene / "Patch_Uint8" / f"Visual_{type_name}_{key}{suffix}.tif", visual)
            if spec.release == "1.0":  # PNG bytes in a file named .tif
                write_bytes(scene / "Patch_RGB" / f"{short_name}_{key}{suffix}.tif",
                                   _figure_png(cal[..., b], (1200, 900)))
            else:
                write_bytes(scene / "Patch_RGB" / f"{short_name}_{key}{suffix}.png",
                                   _figure_png(cal[..., b], (875, 656)))
        truth["chips"][f"{spec.name}/{key}"] = {
            "true_class": vessel.true_class, "ais_code": vessel.ais_code, "ais_class": ais_map(vessel.ais_code),
            "mmsi": vessel.mmsi, "chip_type": type_name, "product_type": spec.product,
            "polarisations": spec.polarisations, "length_m": vessel.length, "width_m": vessel.width,
        }
    write_bytes(scene / "Ship.xml", _ship_xml(entries, spec.malformed))
    meta_name = "Metedata.xml" if spec.release == "1.0" else f"{spec.name}.xml"
    write_bytes(scene / meta_name, _metadata_xml(spec, spacing))
    truth["ships_without_patches"][spec.name] = len(vessels) - spec.n_chips
    truth["scenes"][spec.name] = {"release": spec.release, "product_type": spec.product,
                                  "polarisations": spec.polarisations, "malformed_ship_xml": spec.malformed,
                                  "chips": spec.n_chips}


def generate(out_dir: Path, n: int | None = None, seed: int = 0, full: bool = False) -> Path:
    """Writes a synthetic OpenSARShip under ``out_dir/OpenSARShip`` and returns that root.

    Args:
        out_dir: output directory (created).
        n (None): number of chips with patches (default 30 in 5 scenes; 11346 in 85 scenes with ``full``).
        seed (0): random seed; the output is deterministic for a seed.
        full (False): release-sized output (85 scenes).
    """
    rng = np.random.default_rng(seed)
    n_chips = n if n is not None else (FULL_CHIPS if full else DEFAULT_CHIPS)
    if n_chips < 1:
        raise ValueError(f"n must be at least 1, got {n_chips}")
    ais_map = AisClassMap()
    truth: dict = {"dataset": "opensarship", "seed": seed, "chips": {}, "ships_without_patches": {}, "scenes": {}}
    used_mmsi: set[int] = set()
    seen: list[Vessel] = []
    with atomic_root(out_dir, ROOT_NAME) as tmp:
        specs = _scene_specs(rng, n_chips, full)
        sar_scene = next((i for i, s in enumerate(specs) if s.release == "2.0" and s.product == "GRD"), None)
        # every class appears in the first scene (a small default must still have all four)
        forced = ["Tanker", "Fishing", "Other", "Cargo"]
        for i, spec in enumerate(tqdm(specs, desc="OpenSARShip scenes", unit="scene", disable=None, leave=False)):
            vessels = [_new_vessel(rng, used_mmsi, forced.pop(0) if forced and i == 0 and j > 0 else None)
                       for j in range(spec.n_chips + spec.n_extra)]
            if i == sar_scene and spec.n_chips:
                vessels[-1 - spec.n_extra].ais_code = 51  # the ship whose type prefix differs between subfolders
                vessels[-1 - spec.n_extra].true_class = "Other"
                vessels[-1 - spec.n_extra].elaborated = "Salvage/Rescue Vessel"
            if seen and spec.n_chips >= 2:  # the same vessel seen again in a later scene (same MMSI)
                vessels[0] = seen[int(rng.integers(len(seen)))]
            seen += vessels[: spec.n_chips]
            _write_scene(rng, tmp, spec, vessels, truth, ais_map)
        write_truth(tmp, truth)
    return Path(out_dir) / ROOT_NAME

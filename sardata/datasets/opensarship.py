"""OpenSARShip (Sentinel-1 ship chips matched with AIS): a tolerant FiftyOne importer.

`OpenSARShip <https://opensar.sjtu.edu.cn>`_, Huang et al., "OpenSARShip: A Dataset Dedicated to Sentinel-1 Ship
Interpretation", IEEE JSTARS 2018.

Dataset features: Sentinel-1A IW, GRD (10 m) and SLC (2.3 m × 14 m) products, VV or VH+VV, ~11k ship chips in 41–85
scenes, each matched with an AIS message (MMSI, ship-type code, size) and MarineTraffic record.

Dataset format (one folder per scene, at any depth under the root)::

    <scene>/Patch/<Type>_x<Cx>_y<Cy>.tif            float32 DN: GRD VH,VV amplitude | SLC VH_re,VH_im,VV_re,VV_im
    <scene>/Patch_Cal/<Type>_x<Cx>_y<Cy>.tif        float32 sigma0 intensity, one band per polarisation
    <scene>/Patch_Uint8/Visual_<Type>_x<Cx>_y<Cy>[_vh|_vv].tif   uint8, one file per polarisation
    <scene>/Patch_RGB/<Type>_x<Cx>_y<Cy>[_vh|_vv].png|.tif       jet-colormap figure (v1.0: PNG bytes in a .tif)
    <scene>/Ship.xml                                 AIS + SAR info per ship (CRLF; v2.0 GRD ends with ``<\\ShipList>``)
    <scene>/Metedata.xml (v1.0) | <scene>.xml (v2.0) SNAP abstracted metadata

The type prefix of one ship can differ between subfolders ("Search and Rescue vessel" vs "Search"), so the variants
and the Ship.xml entry are joined on the ``x<Cx>_y<Cy>`` key (= Ship.xml ``Center_x``/``Center_y``).

Dataset classes: the AIS code mapped by :class:`sardata.datasets.taxonomy.AisClassMap` (default Cargo 70–79,
Tanker 80–89, Fishing 30, Other). There is no official split (``split`` is None); group splits by ``mmsi``.

Sample fields: ``ground_truth`` (Classification), ``chip_id`` (``<scene folder>/x<Cx>_y<Cy>``), ``chip_type`` (the
file type name, e.g. "Other Type"), ``ais_type_code``, ``elaborated_type`` (MarineTraffic), ``mmsi``, ``imo``,
``ship_name``, ``length``/``width`` (AIS, m; 0 → None), ``latitude``/``longitude`` (AIS), ``center_latitude``/
``center_longitude`` and ``location`` (chip centre), ``time_utc``, ``scene_window`` ([xmin, ymin, xmax, ymax] in the
scene), ``scene_id``, ``product_type`` ("GRD"/"SLC"), ``polarisations`` (band order, e.g. ["VH", "VV"]),
``display_polarisation``, ``release`` ("1.0"/"2.0"), ``has_ais``, ``pixel_source``, the variant paths
``patch_path``, ``patch_cal_path``, ``patch_uint8_paths``/``patch_rgb_paths`` (``{pol: path}``, key "" for
single-pol), plus the remaining Ship.xml values (``sog``, ``cog``, ``true_heading``, ``incidence_angle``, …).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError

import fiftyone as fo
import numpy as np
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from sardata import sarimage
from sardata.datasets._base import DatasetNotFoundError, SarDatasetImporter, sar_sample_fields
from sardata.datasets.taxonomy import AisClassMap, ais_code_for_type_name

SOURCE = "opensarship"
VARIANTS = ("Patch", "Patch_Cal", "Patch_Uint8", "Patch_RGB")
PIXEL_SOURCES = {"patch": "Patch", "patch_cal": "Patch_Cal"}

#: ``<Type>_x<Cx>_y<Cy>[_<pol>].<ext>``, optionally with the ``Visual_`` prefix of Patch_Uint8.
_CHIP_NAME = re.compile(
    r"^(?:Visual_)?(?P<type>.+?)_x(?P<x>\d+)_y(?P<y>\d+)(?:_(?P<pol>vh|vv|hh|hv))?\.(?:tiff?|png)$", re.IGNORECASE
)
#: Sentinel-1 product name: mission, mode, product type, resolution, polarisation (``1SDV`` = dual VH+VV).
_PRODUCT_NAME = re.compile(
    r"S1[ABCD]_(?P<mode>[A-Z0-9]{2})_(?P<type>GRD|SLC|RAW|OCN)(?P<res>[FHM_])?_1S(?P<pol>SH|SV|DH|DV|HH|VV|HV|VH)"
)
_POLARISATIONS = {"SV": ["VV"], "DV": ["VH", "VV"], "SH": ["HH"], "DH": ["HV", "HH"],
                  "VV": ["VV"], "HH": ["HH"], "VH": ["VH"], "HV": ["HV"]}
#: Closing tags written with a backslash (``<\ShipList>``) by the v2.0 GRD export.
_BACKSLASH_CLOSE = re.compile(rb"<\\(\w+)\s*>")
_SHIP_BLOCK = re.compile(rb"<ship>.*?</ship>", re.DOTALL)


@dataclass
class SceneInfo:
    """What one scene folder says about its product."""

    scene_dir: Path
    scene_id: str
    product_type: str
    polarisations: list[str]
    release: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class ChipRecord:
    """One ship chip: its pixel file (``path``), the other variants, and its Ship.xml entry (or None)."""

    path: Path
    key: str
    chip_type: str
    scene: SceneInfo
    variants: dict[str, dict[str, Path]]
    ship: dict[str, Any] | None


# --------------------------------------------------------------------------------------------- value parsing


def _text(value: str | None) -> str | None:
    """Stripped text; empty and ``NaN`` become None."""
    if value is None:
        return None
    value = value.strip()
    return None if value == "" or value.lower() == "nan" else value


def _float(value: str | None) -> float | None:
    """Float from padded / ``%e`` text; empty, NaN and ±Inf become None."""
    text = _text(value)
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if np.isfinite(number) else None


def _int(value: str | None) -> int | None:
    number = _float(value)
    return int(number) if number is not None and float(number).is_integer() else None


def _time_utc(value: str | None) -> datetime | None:
    """``2016/6/6.22:12:43`` (not zero-padded, dot separator) → datetime."""
    text = _text(value)
    if text is None:
        return None
    match = re.fullmatch(r"(\d{4})/(\d{1,2})/(\d{1,2})[.T ](\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.\d+)?", text)
    if not match:
        return None
    try:
        return datetime(*(int(g) for g in match.groups()))
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------- Ship.xml


def read_ship_xml(path: str | os.PathLike) -> tuple[list[dict[str, dict[str, str]]], str | None, bool]:
    """Parses an OpenSARShip ``Ship.xml`` tolerantly.

    Backslash closing tags (``<\\ShipList>``) are repaired before parsing with defusedxml. If the file is still not
    well-formed (e.g. truncated), every complete ``<ship>…</ship>`` block is parsed on its own.

    Returns:
        ``(ships, problem, repaired)``: one ``{section: {tag: text}}`` dict per ``<ship>``, a description of what
        could not be parsed (None when the whole file was read), and whether backslash closing tags were repaired.
    """
    raw = Path(path).read_bytes()
    repaired = _BACKSLASH_CLOSE.sub(rb"</\1>", raw)
    was_repaired = repaired != raw
    try:
        root = SafeET.fromstring(repaired)
        return [_ship_dict(ship) for ship in root.iter("ship")], None, was_repaired
    except DefusedXmlException as e:  # entity/DTD declarations (billion laughs): refuse the file, recover nothing
        return [], f"refused: XML declares entities or a DTD ({type(e).__name__}: {e})", was_repaired
    except ParseError as e:
        error = f"not well-formed XML ({e}); recovered the complete <ship> entries"
    ships, bad_blocks = [], 0
    for block in _SHIP_BLOCK.findall(repaired):
        try:
            ships.append(_ship_dict(SafeET.fromstring(block)))
        except ParseError:
            bad_blocks += 1
    if bad_blocks:
        error += f"; {bad_blocks} <ship> entries unreadable"
    return ships, error, was_repaired


def _ship_dict(ship) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for section in ship:
        values = out.setdefault(section.tag, {})
        for element in section.iter():
            if element is not section:
                values[element.tag] = element.text or ""
    return out


def ship_key(ship: dict[str, dict[str, str]]) -> str | None:
    """The ``x<Cx>_y<Cy>`` join key of a Ship.xml entry (None when the centre is missing)."""
    sar = ship.get("SARShipInformation", {})
    cx, cy = _int(sar.get("Center_x")), _int(sar.get("Center_y"))
    return None if cx is None or cy is None else f"x{cx}_y{cy}"


def ship_fields(ship: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Typed sample fields from one Ship.xml entry (AIS 0 sizes, NaN and Inf become None)."""
    sar = ship.get("SARShipInformation", {})
    ais = ship.get("AISShipInformation", {})
    match = ship.get("MatchInformation", {})
    traffic = ship.get("MarineTrafficInformation", {})
    noise = ship.get("ChipNoise", {})
    ul_x, ul_y = _int(sar.get("UpperLeft_x")), _int(sar.get("UpperLeft_y"))
    lr_x, lr_y = _int(sar.get("LowerRight_x")), _int(sar.get("LowerRight_y"))
    window = None
    if None not in (ul_x, ul_y, lr_x, lr_y):
        # "UpperLeft" holds the larger coordinates in the release: sort instead of trusting the names
        window = [min(ul_x, lr_x), min(ul_y, lr_y), max(ul_x, lr_x), max(ul_y, lr_y)]
    positive = lambda v: v if v else None  # noqa: E731  AIS writes 0 for "not available"
    available = lambda v, sentinel: None if v == sentinel else v  # noqa: E731  AIS "not available" codes
    fields = {
        "mmsi": _int(ais.get("MMSI")),
        "ais_type_code": _int(ais.get("Ship_Type")),
        "elaborated_type": _text(traffic.get("Elaborated_type")),
        "ship_name": _text(ais.get("Name")),
        "callsign": _text(ais.get("Callsign")),
        "imo": positive(_int(ais.get("IMO"))),
        "length": positive(_float(ais.get("Length"))),
        "width": positive(_float(ais.get("Width"))),
        "draught": positive(_float(ais.get("Draught"))),  # 0.1 m units, as in the AIS message
        "latitude": _float(ais.get("Latitude")),
        "longitude": _float(ais.get("Longitude")),
        "center_latitude": _float(sar.get("Center_latitude")),
        "center_longitude": _float(sar.get("Center_longitude")),
        "sog": available(_float(ais.get("Sog")), 1023),  # 0.1 knot units
        "cog": available(_float(ais.get("Cog")), 3600),  # 0.1° units, as in the AIS message
        "true_heading": available(_float(ais.get("True_Head")), 511),
        "nav_status": _int(ais.get("Nav_Status")),
        "ais_time": _int(ais.get("Time")),
        "time_utc": _time_utc(sar.get("Time_UTC")),
        "center_x": _int(sar.get("Center_x")),
        "center_y": _int(sar.get("Center_y")),
        "scene_window": window,
        "manual_length": _float(sar.get("Manual_Length")),
        "incidence_angle": _float(sar.get("Incidence")),
        "north_direction": _float(sar.get("North_Direction")),
        "chip_direction": _float(sar.get("Chip_Direction")),
        "length_error": _float(match.get("Length_error")),
        "distance_error": _float(match.get("Distance_error")),
        "length_overall": positive(_float(traffic.get("Length_overall"))),
        "breadth_extreme": positive(_float(traffic.get("Breadth_extreme"))),
        "gross_tonnage": _float(traffic.get("Gross_tonnage")),
        "deadweight": _float(traffic.get("Deadweight")),
        "year_built": _int(traffic.get("Year_built")),
        "flag": _text(traffic.get("Flag")),
        "interference": _int(noise.get("Interference")),
        "port": _int(noise.get("Port")),
        "multi_ship": _int(noise.get("Multi_ship")),
    }
    lon, lat = fields["center_longitude"], fields["center_latitude"]
    if lon is not None and lat is not None and -180 <= lon <= 180 and -90 <= lat <= 90:
        fields["location"] = fo.GeoLocation(point=[lon, lat])
    return fields


# --------------------------------------------------------------------------------------------- scene metadata


def read_scene_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The top-level ``<attrib name=… value=…>`` entries of a SNAP ``Abstracted_Metadata`` XML."""
    root = SafeET.parse(str(path)).getroot()
    abstracted = root.find("Abstracted_Metadata")
    if abstracted is None:
        raise ValueError("no <Abstracted_Metadata> element")
    return {a.get("name"): a.get("value") for a in abstracted.findall("attrib") if a.get("name")}


def parse_product_name(name: str) -> tuple[str, list[str]] | None:
    """``S1A_IW_GRDH_1SDV_…`` → ``("GRD", ["VH", "VV"])`` (band order of the chips); None if not a product name."""
    match = _PRODUCT_NAME.search(name)
    if not match:
        return None
    return match["type"], list(_POLARISATIONS[match["pol"]])


# --------------------------------------------------------------------------------------------- importer


class OpenSARShipImporter(SarDatasetImporter):
    """Imports OpenSARShip ship chips (one sample per ``x<Cx>_y<Cy>`` chip that has patch files).

    Args:
        dataset_dir: the root holding the scene folders (at any depth), or one scene folder.
        strict (False): raise on the first problem instead of reporting it.
        compute_stats (True): compute ``sar_stats`` (on the display band: VV, else the co-polarisation).
        display_dir (None): cache directory for display PNGs.
        num_workers (None): decoding threads.
        shuffle (False): shuffle the samples.
        seed (None): shuffle seed.
        max_samples (None): import at most this many samples.
        pixel_source ("patch"): ``"patch"`` (``sar_path`` = float DN chip in ``Patch/``; SLC is converted to
            amplitude for display and stats) or ``"patch_cal"`` (calibrated sigma0 intensity in ``Patch_Cal/``).
        ais_classes (None): AIS code → class map: None (Cargo 70–79, Tanker 80–89, Fishing 30, else Other), a dict
            ``{label: ["70-79", 30, ...]}`` or ``{"classes": {...}, "other": label}``, or a JSON/YAML file of one.
    """

    NAME = "OpenSARShip"

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
        pixel_source="patch",
        ais_classes=None,
    ):
        super().__init__(
            dataset_dir, strict=strict, compute_stats=compute_stats, display_dir=display_dir,
            num_workers=num_workers, shuffle=shuffle, seed=seed, max_samples=max_samples,
        )
        if pixel_source not in PIXEL_SOURCES:
            raise ValueError(f"pixel_source must be one of {sorted(PIXEL_SOURCES)}, got {pixel_source!r}")
        self.pixel_source = pixel_source
        self.ais_map = AisClassMap.from_option(ais_classes)
        self._scene_counts: list[dict] = []

    # ------------------------------------------------------------------ discovery

    def _scene_dirs(self) -> list[Path]:
        """Folders holding a ``Ship.xml`` or a ``Patch`` folder, sorted; the root itself may be one."""
        scenes = []
        for dirpath, dirnames, filenames in os.walk(self.dataset_dir):
            if "Ship.xml" in filenames or "Patch" in dirnames:
                scenes.append(Path(dirpath))
                dirnames[:] = []  # a scene's subfolders are its variants
            else:  # hidden folders: half-written synthetic output, OS metadata
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        return sorted(scenes)

    def _verify(self) -> None:
        super()._verify()
        if not self._scene_dirs():
            raise DatasetNotFoundError(self.NAME, self.dataset_dir, "scene folders with Ship.xml and Patch/")

    def _scene_info(self, scene_dir: Path) -> SceneInfo | None:
        metadata: dict[str, str] = {}
        release = "1.0" if (scene_dir / "Metedata.xml").is_file() else "2.0"
        candidates = [scene_dir / "Metedata.xml", scene_dir / f"{scene_dir.name}.xml"]
        candidates += sorted(p for p in scene_dir.glob("*.xml") if p.name != "Ship.xml" and p not in candidates)
        for meta_path in candidates:
            if meta_path.is_file():
                try:
                    metadata = read_scene_metadata(meta_path)
                except (ParseError, ValueError, OSError) as e:
                    self._problem(meta_path, f"unreadable scene metadata ({e}); using the folder name")
                break
        product_name = metadata.get("PRODUCT") or ""
        parsed = parse_product_name(product_name) or parse_product_name(scene_dir.name)
        if parsed is None:
            self._problem(scene_dir, "cannot tell the product type and polarisations: neither the metadata PRODUCT "
                          "nor the folder name is a Sentinel-1 product name (S1A_IW_GRDH_1SDV_…)")
            return None
        product_type, polarisations = parsed
        scene_id = product_name if parse_product_name(product_name) else scene_dir.name
        kept = {k: metadata[k] for k in ("PASS", "MISSION", "ACQUISITION_MODE", "first_line_time") if metadata.get(k)}
        for key in ("range_spacing", "azimuth_spacing"):
            if _float(metadata.get(key)) is not None:
                kept[key] = _float(metadata.get(key))
        return SceneInfo(scene_dir, scene_id, product_type, polarisations, release, kept)

    def _scan_variants(self, scene_dir: Path) -> dict[str, dict[str, dict[str, Path]]]:
        """``{key: {variant: {pol or "": path}}}`` plus the type names seen, from the four subfolders."""
        chips: dict[str, dict[str, dict[str, Path]]] = {}
        for variant in VARIANTS:
            folder = scene_dir / variant
            if not folder.is_dir():
                continue
            for path in sorted(folder.iterdir()):
                if not path.is_file() or path.name.startswith("."):  # e.g. macOS "._Cargo_x1_y2.tif" sidecars
                    continue
                match = _CHIP_NAME.match(path.name)
                if not match:
                    self._problem(path, "file name does not match <Type>_x<Cx>_y<Cy>[_pol].tif; ignored")
                    continue
                key = f"x{int(match['x'])}_y{int(match['y'])}"
                entry = chips.setdefault(key, {"_types": {}})
                entry["_types"][variant] = match["type"]
                entry.setdefault(variant, {})[(match["pol"] or "").lower()] = path
        return chips

    def _scan(self) -> list[ChipRecord]:
        records: list[ChipRecord] = []
        self._scene_counts = []
        primary = PIXEL_SOURCES[self.pixel_source]
        for scene_dir in self._scene_dirs():
            scene = self._scene_info(scene_dir)
            if scene is None:
                continue
            ships: dict[str, dict] = {}
            ship_xml = scene_dir / "Ship.xml"
            duplicates, repaired = 0, False
            if ship_xml.is_file():
                try:
                    entries, problem, repaired = read_ship_xml(ship_xml)
                except OSError as e:
                    entries, problem = [], f"cannot read ({e.strerror})"
                if problem:
                    self._problem(ship_xml, problem)
                for ship in entries:
                    key = ship_key(ship)
                    if key is None:
                        self._problem(ship_xml, "a <ship> entry has no Center_x/Center_y; ignored")
                    elif key in ships:
                        duplicates += 1
                        if ship != ships[key]:  # an exact repeat is harmless; two different ships are a conflict
                            self._problem(ship_xml, f"two different <ship> entries for chip {key}; kept the first")
                    else:
                        ships[key] = ship
            else:
                self._problem(ship_xml, "missing; chips of this scene get no AIS fields (label from the type name)")
            chips = self._scan_variants(scene_dir)
            with_patches = 0
            for key, variants in sorted(chips.items(), key=lambda kv: _key_order(kv[0])):
                types = variants.pop("_types")
                if primary not in variants:
                    some_file = next(iter(next(iter(variants.values())).values()))
                    found = ", ".join(sorted(variants))
                    self._problem(some_file, f"chip {key} has no {primary}/ file (found {found}); skipped")
                    continue
                pixel_files = list(variants[primary].values())
                # the full type name: Patch/ and Patch_Uint8/ keep it, Patch_Cal/ and Patch_RGB/ may truncate it
                chip_type = max(types.values(), key=len)
                records.append(ChipRecord(pixel_files[0], key, chip_type, scene, variants, ships.get(key)))
                with_patches += 1
            self._scene_counts.append({
                "scene_id": scene.scene_id,
                "folder": str(scene_dir),
                "product_type": scene.product_type,
                "ships_in_xml": len(ships),
                "chips": with_patches,
                "ships_without_patches": len(set(ships) - set(chips)),
                "chips_without_ais": sum(1 for key in chips if key not in ships),
                "duplicate_ship_entries": duplicates,
                "ship_xml_repaired": repaired,
            })
        return records

    # ------------------------------------------------------------------ samples

    def _expected_bands(self, scene: SceneInfo) -> int:
        n_pol = len(scene.polarisations)
        return 2 * n_pol if self.pixel_source == "patch" and scene.product_type == "SLC" else n_pol

    def _build_sample(self, record: ChipRecord) -> fo.Sample:
        scene = record.scene
        array = sarimage.read_image(record.path)
        if not np.issubdtype(array.dtype, np.floating):
            raise ValueError(f"{record.path}: expected a float32 chip, got {array.dtype}")
        bands = 1 if array.ndim == 2 else array.shape[2]
        expected = self._expected_bands(scene)
        if bands != expected:
            raise ValueError(
                f"{record.path}: expected {expected} band(s) for {scene.product_type} "
                f"{'+'.join(scene.polarisations)} {PIXEL_SOURCES[self.pixel_source]}, got {bands}"
            )
        pols = scene.polarisations
        display_pol = "VV" if "VV" in pols else ("HH" if "HH" in pols else pols[0])
        band = pols.index(display_pol)
        if self.pixel_source == "patch_cal":
            kind, display = "intensity", (array if array.ndim == 2 else array[..., band])
        elif scene.product_type == "SLC":
            amplitude = sarimage.complex_pairs_to_amplitude(array if array.ndim == 3 else array[..., None])
            kind, display = "amplitude", amplitude[..., band]
        else:
            kind, display = "amplitude", (array if array.ndim == 2 else array[..., band])
        fields = sar_sample_fields(
            record.path, array=array, kind=kind, display_array=display,
            compute_stats=self.compute_stats, display_dir=self.display_dir,
        )
        ship = ship_fields(record.ship) if record.ship is not None else {}
        code = ship.get("ais_type_code")
        if record.ship is not None and code is None:
            raise ValueError(f"{record.path}: Ship.xml entry {record.key} has no readable Ship_Type code")
        # without an AIS entry the type name (the release's own rendering of the AIS code) is the best label
        if record.ship is None:
            code_of_type = ais_code_for_type_name(record.chip_type)
            label = self.ais_map(code_of_type) if code_of_type is not None else self.ais_map.other
        else:
            label = self.ais_map(code)
        variant_paths = {v: {pol: str(p) for pol, p in files.items()} for v, files in record.variants.items()}
        sample = fo.Sample(
            **fields,
            ground_truth=fo.Classification(label=label) if label is not None else None,
            split=None,
            source=SOURCE,
            chip_id=f"{scene.scene_dir.name}/{record.key}",
            chip_type=record.chip_type,
            scene_id=scene.scene_id,
            product_type=scene.product_type,
            polarisations=list(pols),
            display_polarisation=display_pol,
            release=scene.release,
            pixel_source=self.pixel_source,
            has_ais=record.ship is not None,
            patch_path=_first(variant_paths.get("Patch")),
            patch_cal_path=_first(variant_paths.get("Patch_Cal")),
            patch_uint8_paths=variant_paths.get("Patch_Uint8"),
            patch_rgb_paths=variant_paths.get("Patch_RGB"),
            **{f"scene_{k.lower()}": v for k, v in scene.metadata.items()},
            **ship,
        )
        return sample

    def _dataset_info(self) -> dict:
        return {
            "classes": self.ais_map.labels,
            "ais_classes": self.ais_map.to_dict(),
            "pixel_source": self.pixel_source,
            "scenes": self._scene_counts,
            "ships_without_patches": sum(s["ships_without_patches"] for s in self._scene_counts),
            "chips_without_ais": sum(s["chips_without_ais"] for s in self._scene_counts),
        }


def _first(paths: dict[str, str] | None) -> str | None:
    return next(iter(paths.values())) if paths else None


def _key_order(key: str) -> tuple[int, int]:
    x, y = key[1:].split("_y")
    return int(x), int(y)


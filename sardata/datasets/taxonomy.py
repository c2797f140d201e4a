"""Ship-type taxonomies: AIS ``Ship_Type`` code → class, and named label mappings for merging ship datasets.

Two things live here, shared by the OpenSARShip and FUSAR-Ship loaders and by the merge view:

- :class:`AisClassMap`: the configurable mapping from an AIS ship-type code (ITU-R M.1371, ``Ship_Type`` in
  OpenSARShip's ``Ship.xml``) to a classification label. The default follows the ship-classification papers:
  70–79 Cargo, 80–89 Tanker, 30 Fishing, anything else Other.
- Named taxonomies (``ships3``, ``ships4``) and :func:`load_taxonomy`: a flat ``{source_label: target_label | None}``
  dict that maps the labels of both datasets (OpenSARShip AIS classes and chip type names such as ``"Other Type"``,
  FUSAR-Ship folder categories such as ``"LawEnforce"``) onto one label set; ``None`` means "drop the sample".
  Keys may be qualified by dataset key (``"fusar:Other"``) to override the plain key for that dataset only;
  :func:`map_label` looks the qualified key up first.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

# --------------------------------------------------------------------------------------------- AIS codes

#: Default AIS code ranges per class (inclusive); codes not covered map to :data:`DEFAULT_OTHER_CLASS`.
DEFAULT_AIS_CLASSES: dict[str, list[str]] = {"Cargo": ["70-79"], "Tanker": ["80-89"], "Fishing": ["30"]}
DEFAULT_OTHER_CLASS = "Other"

#: OpenSARShip's chip type names (the ``<Type>`` in ``Patch/<Type>_x<Cx>_y<Cy>.tif``) per AIS code range, in the
#: release's own spelling. Codes 0 and 90–99 (and anything unlisted) are "Other Type".
_AIS_TYPE_NAMES: list[tuple[int, int, str]] = [
    (20, 29, "Wing in ground"),
    (30, 30, "Fishing"),
    (31, 32, "Towing"),
    (33, 33, "Dredging"),
    (34, 34, "Diving"),
    (35, 35, "Military"),
    (36, 36, "Sailing"),
    (37, 37, "Pleasure Craft"),
    (40, 49, "High Speed Craft"),
    (50, 50, "Pilot"),
    (51, 51, "Search and Rescue vessel"),
    (52, 52, "Tug"),
    (53, 53, "Port Tender"),
    (54, 54, "Anti-pollution"),
    (55, 55, "Law Enforcement"),
    (58, 58, "Medical Transport"),
    (60, 69, "Passenger"),
    (70, 79, "Cargo"),
    (80, 89, "Tanker"),
]
OTHER_TYPE_NAME = "Other Type"


def ais_type_name(code: int | None) -> str:
    """OpenSARShip's chip type name for an AIS ship-type code (``51`` → ``"Search and Rescue vessel"``)."""
    if code is not None:
        for low, high, name in _AIS_TYPE_NAMES:
            if low <= code <= high:
                return name
    return OTHER_TYPE_NAME


def ais_code_for_type_name(name: str) -> int | None:
    """The first AIS code a chip type name stands for (``"Tanker"`` → 80); prefixes truncated at a space
    (``"Search"`` for "Search and Rescue vessel") are recognised. None for "Other Type" and unknown names."""
    for low, _high, full_name in _AIS_TYPE_NAMES:
        if name == full_name or full_name.startswith(name + " "):
            return low
    return None


def _parse_code_spec(spec: int | str) -> tuple[int, int]:
    """``30`` / ``"30"`` → (30, 30); ``"70-79"`` → (70, 79)."""
    text = str(spec).strip()
    low, sep, high = text.partition("-")
    try:
        lo, hi = (int(low), int(high)) if sep else (int(low), int(low))
    except ValueError:
        raise ValueError(f"bad AIS code spec {spec!r}: expected an integer code or a range like '70-79'") from None
    if lo > hi:
        raise ValueError(f"bad AIS code range {spec!r}: start is after end")
    return lo, hi


@dataclass
class AisClassMap:
    """Maps AIS ship-type codes to class labels.

    Args:
        classes (None): ``{label: [code or "lo-hi", ...]}``; default :data:`DEFAULT_AIS_CLASSES`. A code listed under
            two labels is an error.
        other (``"Other"``): label for codes not listed, and for a missing code; ``None`` leaves such ships unlabelled.
    """

    classes: Mapping[str, list] | None = None
    other: str | None = DEFAULT_OTHER_CLASS
    _ranges: list[tuple[int, int, str]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self):
        if self.classes is None:
            self.classes = DEFAULT_AIS_CLASSES
        if not isinstance(self.classes, Mapping):
            raise ValueError(f"AIS class map must be a mapping label → codes, got {type(self.classes).__name__}")
        ranges = []
        for label, specs in self.classes.items():
            if isinstance(specs, (int, str)):
                specs = [specs]
            for spec in specs:
                lo, hi = _parse_code_spec(spec)
                for other_lo, other_hi, other_label in ranges:
                    if lo <= other_hi and other_lo <= hi and other_label != label:
                        raise ValueError(f"AIS codes {spec!r} of {label!r} overlap codes of {other_label!r}")
                ranges.append((lo, hi, str(label)))
        self._ranges = ranges

    @classmethod
    def from_option(cls, option: "AisClassMap | Mapping | str | os.PathLike | None") -> "AisClassMap":
        """Builds a map from an importer option: ``None`` (default), a map, a dict, or a JSON/YAML file path.

        A dict (or file) is either ``{label: codes}`` or ``{"classes": {label: codes}, "other": label}``.
        """
        if option is None:
            return cls()
        if isinstance(option, AisClassMap):
            return option
        if isinstance(option, (str, os.PathLike)):
            option = _read_mapping_file(Path(option))
        if not isinstance(option, Mapping):
            raise ValueError(f"ais_classes must be a dict, a file path or None, got {type(option).__name__}")
        if "classes" in option:
            return cls(classes=option["classes"], other=option.get("other", DEFAULT_OTHER_CLASS))
        return cls(classes=option)

    @property
    def labels(self) -> list[str]:
        """Labels in declaration order, then the "other" label."""
        out = list(dict.fromkeys(label for _, _, label in self._ranges))
        if self.other is not None and self.other not in out:
            out.append(self.other)
        return out

    def __call__(self, code: int | None) -> str | None:
        if code is not None:
            for lo, hi, label in self._ranges:
                if lo <= code <= hi:
                    return label
        return self.other

    def to_dict(self) -> dict:
        return {"classes": {k: [str(s) for s in (v if isinstance(v, list) else [v])] for k, v in self.classes.items()},
                "other": self.other}


# --------------------------------------------------------------------------------------------- taxonomies

#: FUSAR-Ship 1.0 top-level categories, most frequent first (chip counts 2114, 1644, 789, 248, 142, 64, 64, 61, 37,
#: 35, then 16, 15, 6, 5, 3). The names of the five rare ones come from the FUSAR-Ship paper's type list; which
#: rare name has which count is not confirmed.
FUSAR_CATEGORIES: list[str] = [
    "Cargo", "Other", "Fishing", "Tanker", "Unspecified", "Tug", "Passenger", "Dredger", "Reserved", "LawEnforce",
    "SAR", "HighSpeedCraft", "PortTender", "Diving", "WingInGrnd",
]

_SHIPS4_CORE = {"Cargo": "Cargo", "Tanker": "Tanker", "Fishing": "Fishing", "Other": "Other"}
#: Labels that are not Cargo/Tanker/Fishing: OpenSARShip chip type names and FUSAR-Ship categories.
_OTHER_LABELS = sorted(
    {name for _, _, name in _AIS_TYPE_NAMES if name not in _SHIPS4_CORE}
    | {OTHER_TYPE_NAME, "Search"}  # "Search": the truncated prefix of "Search and Rescue vessel" in Patch_Cal/Patch_RGB
    | {c for c in FUSAR_CATEGORIES if c not in _SHIPS4_CORE}
)

#: Built-in taxonomies: ``{source_label: target_label | None}``.
TAXONOMIES: dict[str, dict[str, str | None]] = {
    "ships4": {**_SHIPS4_CORE, **{label: "Other" for label in _OTHER_LABELS}},
    "ships3": {**{k: v for k, v in _SHIPS4_CORE.items() if v != "Other"}, "Other": None,
               **{label: None for label in _OTHER_LABELS}},
}


def _read_mapping_file(path: Path) -> dict:
    """Reads a JSON or YAML mapping file; errors name the file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise ValueError(f"{path}: cannot read ({e.strerror})") from e
    is_yaml = path.suffix.lower() in (".yaml", ".yml")
    try:
        if is_yaml:
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as e:  # json.JSONDecodeError / yaml.YAMLError
        raise ValueError(f"{path}: not valid {'YAML' if is_yaml else 'JSON'} ({e})") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def load_taxonomy(name_or_path: str | os.PathLike) -> dict[str, str | None]:
    """A taxonomy as ``{source_label: target_label or None}`` (``None``: drop samples with that label).

    Args:
        name_or_path: a built-in name (:data:`TAXONOMIES`: ``"ships3"``, ``"ships4"``) or a JSON/YAML file holding
            either that mapping or ``{"mapping": {...}}``.

    Raises:
        ValueError: unknown name, unreadable file, or values that are not strings/null.
    """
    key = str(name_or_path)
    if key in TAXONOMIES:
        return dict(TAXONOMIES[key])
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        raise ValueError(f"unknown taxonomy {key!r}: not a built-in name {sorted(TAXONOMIES)} and not a file")
    data = _read_mapping_file(path)
    mapping = data.get("mapping", data) if isinstance(data.get("mapping"), dict) else data
    out: dict[str, str | None] = {}
    for source, target in mapping.items():
        if target is not None and not isinstance(target, str):
            raise ValueError(f"{path}: label {source!r} maps to {target!r}; expected a label string or null")
        out[str(source)] = target
    return out


def map_label(taxonomy: Mapping[str, str | None], label: str | None, source: str | None = None,
              default: str | None = None) -> str | None:
    """Maps one label: the dataset-qualified key ``"<source>:<label>"`` first, then ``label``, else ``default``."""
    if label is None:
        return default
    if source is not None and f"{source}:{label}" in taxonomy:
        return taxonomy[f"{source}:{label}"]
    return taxonomy.get(label, default)

"""Synthetic Official-SSDD: offshore and inshore ship scenes in the real release's layout and file styles.

Each image draws its own random stream from ``(seed, image number)``, so image ``k`` is the same whatever ``n`` is.
About 20 % of the scenes are inshore (coastline, land with ship-like scatterers, harbour piers, ships berthed
alongside and rafted together); the others are sea clutter with a few ships (sometimes a small fleet). What a scene
contains and how hard it is — small dim ships, wind-roughened sea, azimuth ghosts, streaks, looks, SSDD's land-fraction
distribution — is :mod:`sardata.synth.ssdd_scene`, by named preset (``default``, ``easy``, ``coast_hard``); real
coastlines can be taken from a directory of SL-SSDD-style masks (``land_masks=DIR``). Every ship is a hull polygon (stern, parallel sides,
pointed bow); from it come, as in the real release, the PSeg polygon (``floor`` of the float points), the BBox
(``floor`` of the polygon's extent), the RBox (the hull's rotated rectangle, OpenCV-style ``theta`` in [0, 90) with
``w`` along ``theta``) and the COCO JSONs (float polygon, extent and area).

Files written under ``out_dir/Official-SSDD`` (JPEGs are hard links of one encoding where the file system allows)::

    {BBox,RBox,PSeg}_SSDD/voc_style/{JPEGImages,Annotations}_{train,test,test_inshore,test_offshore}/
    {BBox,PSeg}_SSDD/coco_style/{images/<split>/, annotations/<split>.json}
    synth_truth.json    preset, land_masks; per image id: scene, land_fraction, split, size, boxes, rboxes,
                        polygons, ships, ship_scr_db, looks, land_source
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from sardata._io import write_bytes
from sardata.synth import _common as C
from sardata.synth.ssdd_scene import PRESETS, Preset, get_preset, hull_polygon, load_land_masks, polygon_mask, render_scene

ROOT_NAME = "Official-SSDD"
FULL_SIZE = 1160
DEFAULT_SIZE = 40
INSHORE_PROBABILITY = 0.2
SPLIT_SUFFIXES = ("train", "test", "test_inshore", "test_offshore")
_CATEGORIES = [{"supercategory": "none", "id": 0, "name": "ship"}]


def official_split(number: int) -> str:
    """Official SSDD rule: image ids ending in 1 or 9 are test."""
    return "test" if number % 10 in (1, 9) else "train"


def draw_scene(seed: int, number: int) -> tuple[np.random.Generator, bool]:
    """The random stream of image ``number`` and whether its scene is inshore (its first draw)."""
    rng = np.random.default_rng([seed, number])
    return rng, bool(rng.random() < INSHORE_PROBABILITY)


# --------------------------------------------------------------------------------------------- geometry and scenes


def rotated_box(cx: float, cy: float, length: float, beam: float, angle_deg: float) -> dict:
    """The hull's rotated rectangle in the SSDD RBox convention (``theta`` in [0, 90) degrees, ``w`` along it)."""
    a = angle_deg % 180.0
    theta, w, h = (a, length, beam) if a < 90 else (a - 90.0, beam, length)
    th = np.deg2rad(theta)
    du, dv = np.array([np.cos(th), np.sin(th)]), np.array([-np.sin(th), np.cos(th)])
    c = np.array([cx, cy])
    corners = [c - du * w / 2 + dv * h / 2, c - du * w / 2 - dv * h / 2, c + du * w / 2 - dv * h / 2, c + du * w / 2 + dv * h / 2]
    out = {
        "rotated_bbox_cx": int(np.floor(cx)), "rotated_bbox_cy": int(np.floor(cy)),
        "rotated_bbox_w": int(round(w)), "rotated_bbox_h": int(round(h)),
        "rotated_bbox_theta": float(np.float32(theta)),
    }
    for i, (x, y) in enumerate(corners, start=1):
        out[f"x{i}"], out[f"y{i}"] = int(np.floor(x)), int(np.floor(y))
    return out


def polygon_area(polygon: np.ndarray) -> float:
    x, y = polygon[:, 0], polygon[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def amplitude_uint8(intensity: np.ndarray, sea_level: float, sea_grey: float) -> np.ndarray:
    """Linear amplitude scaled so the mean sea amplitude is ``sea_grey``: dark sea, saturated ships, as SSDD looks."""
    amplitude = np.sqrt(intensity) * (sea_grey / np.sqrt(sea_level))
    return np.clip(amplitude + 0.5, 0, 255).astype(np.uint8)


def render_image(rng: np.random.Generator, inshore: bool, preset: str | Preset = "default",
                 land_masks: list[np.ndarray] | None = None) -> tuple[np.ndarray, dict]:
    """One scene: 8-bit amplitude image and its ground truth (see :func:`sardata.synth.ssdd_scene.render_scene`)."""
    intensity, sea_level, truth = render_scene(rng, inshore, preset, land_masks)
    return amplitude_uint8(intensity, sea_level, rng.uniform(15, 55)), truth


# --------------------------------------------------------------------------------------------- VOC XML writer

#: Elements of a ``<rotated_bndbox>`` (SSDD RBox), in file order (the loader's parser reads the same list).
ROTATED_KEYS = (
    "rotated_bbox_cx", "rotated_bbox_cy", "rotated_bbox_w", "rotated_bbox_h", "rotated_bbox_theta",
    "x1", "y1", "x2", "y2", "x3", "y3", "x4", "y4",
)


def _format_number(value) -> str:
    if isinstance(value, (float, np.floating)) and not float(value).is_integer():
        return repr(float(value))
    return str(int(value))


def write_voc_xml(
    path: str | os.PathLike,
    width: int,
    height: int,
    objects: list[dict],
    filename: str | None = None,
    depth: int | None = None,
    indent: str = "\t",
) -> None:
    """Writes a per-image VOC XML in the real datasets' style (atomic): no XML declaration, CRLF, no final newline.

    Args:
        path: output file.
        width: image width.
        height: image height.
        objects: dicts with ``name`` and one of ``box`` (xmin, ymin, xmax, ymax), ``rotated`` (dict over
            :data:`ROTATED_KEYS`) or ``points`` (list of (x, y)).
        filename (None): with a filename, the SSDD header ``folder``/``filename``/``path`` is written.
        depth (None): ``<depth>`` inside ``<size>`` when given.
        indent ("\\t"): one indentation level (SSDD: a tab; SAR-AIRcraft: "").
    """
    i1, i2, i3 = indent, indent * 2, indent * 3
    lines = ["<annotation>"]
    if filename is not None:
        lines += [f"{i1}<folder>JPEGImages</folder>", f"{i1}<filename>{filename}</filename>", f"{i1}<path>JPEGImages</path>"]
    lines += [f"{i1}<size>", f"{i2}<width>{width}</width>", f"{i2}<height>{height}</height>"]
    if depth is not None:
        lines.append(f"{i2}<depth>{depth}</depth>")
    lines.append(f"{i1}</size>")
    for obj in objects:
        lines += [
            f"{i1}<object>",
            f"{i2}<name>{obj['name']}</name>",
            f"{i2}<pose>Unspecified</pose>",
            f"{i2}<truncated>0</truncated>",
            f"{i2}<difficult>0</difficult>",
        ]
        if "box" in obj:
            lines.append(f"{i2}<bndbox>")
            lines += [f"{i3}<{k}>{_format_number(v)}</{k}>" for k, v in zip(("xmin", "ymin", "xmax", "ymax"), obj["box"])]
            lines.append(f"{i2}</bndbox>")
        elif "rotated" in obj:
            lines.append(f"{i2}<rotated_bndbox>")
            lines += [f"{i3}<{k}>{_format_number(obj['rotated'][k])}</{k}>" for k in ROTATED_KEYS]
            lines.append(f"{i2}</rotated_bndbox>")
        else:
            lines.append(f"{i2}<segm>")
            lines += [f"{i3}<point>{int(x)},{int(y)}</point>" for x, y in obj["points"]]
            lines.append(f"{i2}</segm>")
        lines.append(f"{i1}</object>")
    lines.append("</annotation>")
    write_bytes(Path(path), "\r\n".join(lines).encode())


# --------------------------------------------------------------------------------------------- files


def _jpeg_bytes(gray: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.repeat(gray[..., None], 3, axis=2), mode="RGB").save(buffer, format="JPEG", quality=95, subsampling=2)
    return buffer.getvalue()


def _place_file(data: bytes, targets: list[Path]) -> None:
    """Writes ``data`` to the first target and hard-links (or copies) it to the others."""
    first = targets[0]
    first.parent.mkdir(parents=True, exist_ok=True)
    first.write_bytes(data)
    for target in targets[1:]:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(first, target)
        except OSError:
            shutil.copyfile(first, target)


def _labels(truth: dict) -> dict:
    """Per-ship labels in every file convention, derived from the hull polygons."""
    polygons = [hull_polygon(*s) for s in truth["ships"]]
    return {
        "polygons": polygons,
        "points": [np.floor(p).astype(int).tolist() for p in polygons],
        "boxes": [[int(v) for v in np.floor(np.concatenate([p.min(axis=0), p.max(axis=0)]))] for p in polygons],
        "rboxes": [rotated_box(*s) for s in truth["ships"]],
    }


def generate(out_dir: Path, n: int | None = None, seed: int = 0, full: bool = False, preset: str | Preset = "default",
             land_masks: str | os.PathLike | None = None) -> Path:
    """Writes a synthetic Official-SSDD under ``out_dir/Official-SSDD`` and returns that root.

    Args:
        out_dir: output directory (created).
        n (None): number of images (ids 000001…); default 1160 with ``full``, else 40.
        seed (0): random seed; the output is deterministic for a seed (and preset and masks).
        full (False): the full-size dataset (1160 images).
        preset ("default"): difficulty, one of :data:`PRESETS` (``default``, ``easy``, ``coast_hard``).
        land_masks (None): a directory of real land/sea mask PNGs (SL-SSDD convention, 0 = land, 255 = sea); the
            inshore scenes then take their coastline (and image size) from one of them, chosen per image by the seed.
    """
    n = int(n if n is not None else (FULL_SIZE if full else DEFAULT_SIZE))
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    p = get_preset(preset)
    masks = load_land_masks(land_masks) if land_masks is not None else None
    out_dir = Path(out_dir)
    with C.atomic_root(out_dir, ROOT_NAME) as tmp:
        truth = _write_all(tmp, n, seed, p, masks)
        C.write_truth(tmp, {"dataset": "ssdd", "seed": seed, "n": n, "preset": p.name,
                            "land_masks": str(land_masks) if land_masks is not None else None, "images": truth})
    return out_dir / ROOT_NAME


def _write_all(root: Path, n: int, seed: int, preset: Preset, land_masks) -> dict:
    coco: dict[str, dict[str, list]] = {
        v: {s: {"images": [], "type": "instances", "annotations": [], "categories": _CATEGORIES} for s in SPLIT_SUFFIXES}
        for v in ("BBox_SSDD", "PSeg_SSDD")
    }
    annotation_id = 0
    truth = {}
    for number in tqdm(range(1, n + 1), desc="synth ssdd", disable=n < 200):
        image_id = f"{number:06d}"
        rng, inshore = draw_scene(seed, number)
        gray, info = render_image(rng, inshore, preset, land_masks)
        labels = _labels(info)
        split = official_split(number)
        folders = [split] + ([f"test_{info['scene']}"] if split == "test" else [])
        w, h = info["width"], info["height"]
        filename = f"{image_id}.jpg"
        _place_file(
            _jpeg_bytes(gray),
            [root / v / "voc_style" / f"JPEGImages_{f}" / filename for v in ("BBox_SSDD", "RBox_SSDD", "PSeg_SSDD") for f in folders]
            + [root / v / "coco_style" / "images" / f / filename for v in ("BBox_SSDD", "PSeg_SSDD") for f in folders],
        )
        variants = {
            "BBox_SSDD": [{"name": "ship", "box": b} for b in labels["boxes"]],
            "RBox_SSDD": [{"name": "ship", "rotated": r} for r in labels["rboxes"]],
            "PSeg_SSDD": [{"name": "ship", "points": p} for p in labels["points"]],
        }
        for folder in folders:
            for variant, objects in variants.items():
                path = root / variant / "voc_style" / f"Annotations_{folder}" / f"{image_id}.xml"
                write_voc_xml(path, w, h, objects, filename=filename, depth=3)
            for variant in ("BBox_SSDD", "PSeg_SSDD"):
                coco[variant][folder]["images"].append({"file_name": filename, "height": h, "width": w, "id": number})
        for polygon, box in zip(labels["polygons"], labels["boxes"]):
            annotation_id += 1
            x0, y0 = polygon.min(axis=0)
            x1, y1 = polygon.max(axis=0)
            xmin, ymin, xmax, ymax = box
            pseg = {
                "area": polygon_area(polygon), "iscrowd": 0, "image_id": number,
                "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)], "category_id": 0,
                "id": annotation_id, "ignore": 0, "segmentation": [[float(v) for v in polygon.ravel()]],
            }
            bbox = dict(pseg, bbox=[float(xmin), float(ymin), float(xmax - xmin + 1), float(ymax - ymin + 1)],
                        area=float((xmax - xmin + 1) * (ymax - ymin + 1)), segmentation=[])
            for folder in folders:
                coco["PSeg_SSDD"][folder]["annotations"].append(pseg)
                coco["BBox_SSDD"][folder]["annotations"].append(bbox)
        truth[image_id] = {
            "scene": info["scene"],
            "land_fraction": round(info["land_fraction"], 4),
            "split": split,
            "width": w,
            "height": h,
            "boxes": labels["boxes"],
            "rboxes": labels["rboxes"],
            "polygons": labels["points"],
            "ships": info["ships"],
            "ship_scr_db": info["ship_scr_db"],
            "looks": info["looks"],
            "land_source": info["land_source"],
        }
    for variant, splits in coco.items():
        for folder, data in splits.items():
            if data["images"]:
                write_bytes(root / variant / "coco_style" / "annotations" / f"{folder}.json", json.dumps(data).encode())
    return truth

"""Synthetic Official-SSDD: offshore and inshore ship scenes in the real release's layout and file styles.

Each image draws its own random stream from ``(seed, image number)``, so image ``k`` is the same whatever ``n`` is.
About 20 % of the scenes are inshore (coastline, textured land, harbour piers, ships moored alongside); the others
are sea clutter with a few ships (sometimes a small fleet). Every ship is a hull polygon (stern, parallel sides,
pointed bow); from it come, as in the real release, the PSeg polygon (``floor`` of the float points), the BBox
(``floor`` of the polygon's extent), the RBox (the hull's rotated rectangle, OpenCV-style ``theta`` in [0, 90) with
``w`` along ``theta``) and the COCO JSONs (float polygon, extent and area).

Files written under ``out_dir/Official-SSDD`` (JPEGs are hard links of one encoding where the file system allows)::

    {BBox,RBox,PSeg}_SSDD/voc_style/{JPEGImages,Annotations}_{train,test,test_inshore,test_offshore}/
    {BBox,PSeg}_SSDD/coco_style/{images/<split>/, annotations/<split>.json}
    synth_truth.json    per image id: scene, land_fraction, split, size, boxes, rboxes, polygons
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
from matplotlib.path import Path as MplPath
from PIL import Image
from tqdm import tqdm

from sardata._io import write_bytes
from sardata.synth import _common as C

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


# --------------------------------------------------------------------------------------------- geometry


def hull_polygon(cx: float, cy: float, length: float, beam: float, angle_deg: float) -> np.ndarray:
    """Ship outline (9 points, continuous pixel coordinates): square-ish stern, parallel sides, pointed bow."""
    u = np.array([-0.5, -0.45, 0.2, 0.42, 0.5, 0.42, 0.2, -0.45, -0.5]) * length
    v = np.array([-0.42, -0.5, -0.5, -0.25, 0.0, 0.25, 0.5, 0.5, 0.42]) * beam
    th = np.deg2rad(angle_deg)
    return np.stack([cx + u * np.cos(th) - v * np.sin(th), cy + u * np.sin(th) + v * np.cos(th)], axis=1)


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


def polygon_mask(polygon: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, int, int]:
    """Pixels whose centres lie inside ``polygon``: ``(local mask, y0, x0)`` over the polygon's bounding window."""
    x0, y0 = int(np.floor(polygon[:, 0].min())), int(np.floor(polygon[:, 1].min()))
    x1, y1 = int(np.floor(polygon[:, 0].max())) + 1, int(np.floor(polygon[:, 1].max())) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, shape[1]), min(y1, shape[0])
    yy, xx = np.mgrid[y0:y1, x0:x1]
    centres = np.stack([xx.ravel() + 0.5, yy.ravel() + 0.5], axis=1)
    inside = MplPath(polygon).contains_points(centres).reshape(yy.shape)
    return inside.astype(np.float64), y0, x0


def polygon_area(polygon: np.ndarray) -> float:
    x, y = polygon[:, 0], polygon[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


# --------------------------------------------------------------------------------------------- scenes


def _coast_direction(land: np.ndarray, y: int, x: int) -> float:
    """Angle (degrees) along the coast at (y, x): perpendicular to the local land-mask gradient."""
    r = 6
    window = land[max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1].astype(float)
    gy, gx = np.gradient(window) if min(window.shape) > 1 else (np.zeros(1), np.zeros(1))
    gy, gx = float(np.mean(gy)), float(np.mean(gx))
    if abs(gx) + abs(gy) < 1e-9:
        return 0.0
    return float(np.degrees(np.arctan2(gy, gx)) + 90.0)


def _place_ships(rng, land: np.ndarray | None, inshore: bool, shape) -> list[tuple[float, float, float, float, float]]:
    """Ship parameters ``(cx, cy, length, beam, angle)``: in open sea, or moored along the coast for inshore scenes."""
    h, w = shape
    if inshore:
        n_ships, fleet = int(rng.integers(1, 6)), False
    else:
        fleet = rng.random() < 0.1
        n_ships = int(rng.integers(5, 13)) if fleet else 1 + int(rng.poisson(0.9))
    coast = None
    if inshore:  # sea pixels within 2 px of land
        grown = land.copy()
        for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0), (0, 2), (0, -2), (2, 0), (-2, 0)):
            grown |= np.roll(land, (dy, dx), axis=(0, 1))
        ys, xs = np.nonzero(grown & ~land)
        coast = (ys, xs) if len(ys) else None
    ships, boxes = [], []
    for _ in range(n_ships * 30):
        if len(ships) == n_ships:
            break
        length = rng.uniform(6, 16) if fleet else float(np.exp(rng.uniform(np.log(10), np.log(90))))
        beam = max(3.0, length * rng.uniform(0.15, 0.3))
        alongside = coast is not None and rng.random() < 0.8
        if alongside:
            i = int(rng.integers(len(coast[0])))
            y, x = int(coast[0][i]), int(coast[1][i])
            angle = _coast_direction(land, y, x)
            normal = np.deg2rad(angle - 90.0)  # towards the sea (away from the land gradient)
            offset = beam / 2 + 1.5
            cx, cy = x + 0.5 - np.cos(normal) * offset, y + 0.5 - np.sin(normal) * offset
        else:
            cx, cy, angle = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0, 180)
        polygon = hull_polygon(cx, cy, length, beam, angle)
        if polygon.min() < 1 or polygon[:, 0].max() > w - 1 or polygon[:, 1].max() > h - 1:
            continue
        box = (*polygon.min(axis=0) - 2, *polygon.max(axis=0) + 2)
        if any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in boxes):
            continue
        if land is not None:
            mask, y0, x0 = polygon_mask(polygon, shape)
            if (land[y0 : y0 + mask.shape[0], x0 : x0 + mask.shape[1]] & (mask > 0)).mean() > 0.02:
                continue  # a ship on land
        ships.append((cx, cy, length, beam, angle))
        boxes.append(box)
    return ships


def amplitude_uint8(intensity: np.ndarray, sea_level: float, sea_grey: float) -> np.ndarray:
    """Linear amplitude scaled so the mean sea amplitude is ``sea_grey``: dark sea, saturated ships, as SSDD looks."""
    amplitude = np.sqrt(intensity) * (sea_grey / np.sqrt(sea_level))
    return np.clip(amplitude + 0.5, 0, 255).astype(np.uint8)


def render_image(rng: np.random.Generator, inshore: bool) -> tuple[np.ndarray, dict]:
    """One scene: 8-bit amplitude image and its ground truth (continuous ship parameters and derived labels)."""
    w, h = int(rng.integers(320, 551)), int(rng.integers(250, 451))
    sea_level = rng.uniform(0.01, 0.05)
    refl = C.sea_clutter(rng, (h, w), level=sea_level)
    land = None
    if inshore:
        land = C.coastline_mask(rng, (h, w), land_fraction=rng.uniform(0.2, 0.6))
        refl = np.where(land, C.land_reflectivity(rng, (h, w), level=rng.uniform(0.15, 0.4)), refl)
        C.add_harbour(rng, refl, land, n_piers=int(rng.integers(1, 4)))
    ships = _place_ships(rng, land, inshore, (h, w))
    for cx, cy, length, beam, angle in ships:
        mask, y0, x0 = polygon_mask(hull_polygon(cx, cy, length, beam, angle), (h, w))
        brightness = sea_level * 10 ** rng.uniform(1.3, 2.5)
        C.paste_target(refl, mask, y0 + mask.shape[0] / 2, x0 + mask.shape[1] / 2, brightness, rng)
    image = amplitude_uint8(refl * C.speckle(rng, (h, w), looks=rng.uniform(1.0, 3.0)), sea_level, rng.uniform(15, 55))
    truth = {
        "scene": "inshore" if inshore else "offshore",
        "land_fraction": float(land.mean()) if land is not None else 0.0,
        "width": w,
        "height": h,
        "ships": [[round(float(v), 4) for v in s] for s in ships],
    }
    return image, truth


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


def generate(out_dir: Path, n: int | None = None, seed: int = 0, full: bool = False) -> Path:
    """Writes a synthetic Official-SSDD under ``out_dir/Official-SSDD`` and returns that root.

    Args:
        out_dir: output directory (created).
        n (None): number of images (ids 000001…); default 1160 with ``full``, else 40.
        seed (0): random seed; the output is deterministic for a seed.
        full (False): the full-size dataset (1160 images).
    """
    n = int(n if n is not None else (FULL_SIZE if full else DEFAULT_SIZE))
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    out_dir = Path(out_dir)
    with C.atomic_root(out_dir, ROOT_NAME) as tmp:
        truth = _write_all(tmp, n, seed)
        C.write_truth(tmp, {"dataset": "ssdd", "seed": seed, "n": n, "images": truth})
    return out_dir / ROOT_NAME


def _write_all(root: Path, n: int, seed: int) -> dict:
    coco: dict[str, dict[str, list]] = {
        v: {s: {"images": [], "type": "instances", "annotations": [], "categories": _CATEGORIES} for s in SPLIT_SUFFIXES}
        for v in ("BBox_SSDD", "PSeg_SSDD")
    }
    annotation_id = 0
    truth = {}
    for number in tqdm(range(1, n + 1), desc="synth ssdd", disable=n < 200):
        image_id = f"{number:06d}"
        rng, inshore = draw_scene(seed, number)
        gray, info = render_image(rng, inshore)
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
        }
    for variant, splits in coco.items():
        for folder, data in splits.items():
            if data["images"]:
                write_bytes(root / variant / "coco_style" / "annotations" / f"{folder}.json", json.dumps(data).encode())
    return truth

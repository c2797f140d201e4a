"""SSDD (Official-SSDD): SAR ship detection, 1160 images, 2456 ships, one class ``ship``.

Zhang et al., "SAR Ship Detection Dataset (SSDD): Official Release and Comprehensive Data Analysis", Remote Sensing
2021 (https://github.com/TianwenZhang0825/Official-SSDD).

Dataset format (the root is the folder holding ``BBox_SSDD``)::

    BBox_SSDD/voc_style/{JPEGImages,Annotations}_{train,test,test_inshore,test_offshore}/   <bndbox>
    BBox_SSDD/coco_style/{images/<split>/, annotations/<split>.json}
    RBox_SSDD/voc_style/...   <rotated_bndbox> cx, cy, w, h, theta (degrees) and corners x1..y4
    PSeg_SSDD/voc_style/...   <segm><point>x,y</point>...</segm>
    PSeg_SSDD/coco_style/{images/<split>/, annotations/<split>.json}

Sample fields: ``ground_truth`` (:class:`fiftyone.Detections`), ``rboxes`` (closed 4-corner
:class:`fiftyone.Polylines` with ``cx, cy, w, h, theta`` attributes, when ``RBox_SSDD`` exists), ``polygons``
(filled :class:`fiftyone.Polylines`, when ``PSeg_SSDD`` exists), ``split`` ("train"/"test"), ``image_id``
("000001"), ``source`` ("ssdd"), the SAR fields of :func:`sar_sample_fields`, and the tags ``test_inshore`` /
``test_offshore`` for images in those folders.

Checks: an object of an unknown class or whose box is degenerate or reaches outside the image is dropped and reported
(the image is kept); rotated boxes and polygons are not bounds-checked (the rotated rectangle of a ship at the edge
legitimately pokes out of the image).

Split: the folder an image is in; for a flat ``JPEGImages``/``Annotations`` layout the official rule (image ids
ending in 1 or 9 are test: 232 test, 928 train). Pixel convention: see :mod:`sardata.datasets._voc` (VOC integers
are inclusive 0-based pixel indices; COCO floats are continuous coordinates).

COCO quirks handled: category id 0, duplicate annotation ids (pycocotools' ``COCO`` keys annotations by id and would
silently keep one of each duplicate, so the JSON is grouped by ``image_id`` here instead), the extra ``ignore`` key
(kept as a detection attribute).
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from sardata import sarimage
from sardata.datasets import _docs, _voc
from sardata.datasets._base import DatasetNotFoundError, SarDatasetImporter, sar_sample_doc_fields
from sardata.safepath import safe_join

#: Folder suffixes of the official release, in the order they are read; "" is the flat pre-official layout.
SPLIT_FOLDERS = ("train", "test", "test_inshore", "test_offshore", "")
#: Folders whose membership becomes a sample tag.
TAG_FOLDERS = ("test_inshore", "test_offshore")
CLASSES = ["ship"]
#: The label variants and the sample field each one fills.
VARIANT_FIELDS = {"RBox_SSDD": "rboxes", "PSeg_SSDD": "polygons"}
#: Tolerance (pixels) for float COCO boxes touching the image border.
_COCO_EDGE_TOLERANCE = 0.5

Shape = tuple[str, list[tuple[float, float]], dict]  # label, continuous points, attributes


def official_split(image_id: str) -> str | None:
    """The official SSDD rule: ids ending in 1 or 9 are test, the others train (None for non-numeric ids)."""
    return ("test" if image_id[-1] in "19" else "train") if image_id[-1:].isdigit() else None


@dataclass
class SSDDRecord:
    """One image to import, with its labels already parsed (continuous pixel coordinates)."""

    image_id: str
    path: str  # the image file
    annotation_path: str | None
    split: str | None
    tags: set[str] = field(default_factory=set)
    size: tuple[int, int] | None = None  # (width, height) the annotation declares
    boxes: list[tuple[str, tuple[float, float, float, float], dict]] = field(default_factory=list)
    rboxes: list[Shape] | None = None
    polygons: list[Shape] | None = None


class SSDDImporter(SarDatasetImporter):
    """Importer for Official-SSDD (VOC-style or COCO-style annotations).

    Args:
        dataset_dir: the Official-SSDD root (holding ``BBox_SSDD``), or the folder holding ``Official-SSDD``.
        annotation_source ("voc"): ``"voc"`` reads ``*_SSDD/voc_style``; ``"coco"`` reads the ``coco_style`` JSONs
            (boxes from ``BBox_SSDD``, else ``PSeg_SSDD``; polygons from ``PSeg_SSDD``).
        load_rboxes (True): fill ``rboxes`` from ``RBox_SSDD/voc_style`` when present.
        load_polygons (True): fill ``polygons`` from ``PSeg_SSDD`` when present.
        strict (False): raise on the first problem instead of reporting it and going on.
        compute_stats (True): compute ``sar_stats`` for every sample.
        display_dir (None): cache directory for display PNGs (unused: SSDD JPEGs display as they are).
        num_workers (None): threads decoding images.
        shuffle (False): randomly shuffle the order of the samples.
        seed (None): random seed used when shuffling.
        max_samples (None): maximum number of samples to import.
    """

    NAME: ClassVar[str] = "SSDD"

    def __init__(
        self,
        dataset_dir,
        annotation_source="voc",
        load_rboxes=True,
        load_polygons=True,
        strict=False,
        compute_stats=True,
        display_dir=None,
        num_workers=None,
        shuffle=False,
        seed=None,
        max_samples=None,
    ):
        if annotation_source not in ("voc", "coco"):
            raise ValueError(f"annotation_source must be 'voc' or 'coco', got {annotation_source!r}")
        super().__init__(
            dataset_dir, strict=strict, compute_stats=compute_stats, display_dir=display_dir,
            num_workers=num_workers, shuffle=shuffle, seed=seed, max_samples=max_samples,
        )
        self.annotation_source = annotation_source
        self.load_rboxes = load_rboxes
        self.load_polygons = load_polygons
        self._label_fields: list[str] = []
        self._decoded: dict = {}  # image id → future of its decode started during the scan

    # ---------------------------------------------------------------- layout

    @property
    def root(self) -> Path:
        return Path(self.dataset_dir)

    def _voc_dirs(self, variant: str) -> list[tuple[str, Path, Path]]:
        """``(folder suffix, annotation dir, image dir)`` of one variant's voc_style folders that exist."""
        base = self.root / variant / "voc_style"
        out = []
        for suffix in SPLIT_FOLDERS:
            tail = f"_{suffix}" if suffix else ""
            ann_dir = base / f"Annotations{tail}"
            if ann_dir.is_dir():
                out.append((suffix, ann_dir, base / f"JPEGImages{tail}"))
        return out

    def _coco_dir(self) -> Path | None:
        for variant in ("BBox_SSDD", "PSeg_SSDD"):
            path = self.root / variant / "coco_style" / "annotations"
            if path.is_dir():
                return path.parent
        return None

    def _verify(self) -> None:
        super()._verify()
        nested = self.root / "Official-SSDD"
        if not any((self.root / v).is_dir() for v in ("BBox_SSDD", "RBox_SSDD", "PSeg_SSDD")) and nested.is_dir():
            self.dataset_dir = str(nested)  # the folder holding the release was given
        if self.annotation_source == "voc" and not self._voc_dirs("BBox_SSDD"):
            raise DatasetNotFoundError(
                self.NAME, self.dataset_dir, "BBox_SSDD/voc_style/Annotations_{train,test} (or Annotations)"
            )
        if self.annotation_source == "coco" and self._coco_dir() is None:
            raise DatasetNotFoundError(self.NAME, self.dataset_dir, "BBox_SSDD/coco_style/annotations or PSeg_SSDD/coco_style/annotations")

    # ---------------------------------------------------------------- scanning

    def _scan(self) -> list[SSDDRecord]:
        records = self._scan_coco() if self.annotation_source == "coco" else self._scan_voc()
        self._label_fields = ["ground_truth"]
        rboxes = self.load_rboxes and bool(self._voc_dirs("RBox_SSDD"))
        pseg = self.load_polygons and self.annotation_source == "voc" and bool(self._voc_dirs("PSeg_SSDD"))
        self._decoded = {}
        if (rboxes or pseg) and self.max_samples is None:
            # the pixels decode in the worker threads (Pillow releases the GIL) while this thread parses the RBox and
            # PSeg files; _build_sample picks the result up, and reports a decode error then, in record order
            pool = self._executor()
            self._decoded = {r.image_id: pool.submit(sarimage.read_gray_histogram, r.path) for r in records}
        try:
            if rboxes:
                self._attach_voc_variant(records, "RBox_SSDD")
                self._label_fields.append("rboxes")
            if pseg:
                self._attach_voc_variant(records, "PSeg_SSDD")
                self._label_fields.append("polygons")
        except BaseException:  # strict mode: the first problem ends the ingest before any sample is written
            for future in self._decoded.values():
                future.cancel()
            self._decoded = {}
            raise
        if self.load_polygons and self.annotation_source == "coco" and any(r.polygons is not None for r in records):
            self._label_fields.append("polygons")
        return records

    def _scan_voc(self) -> list[SSDDRecord]:
        records: dict[str, SSDDRecord] = {}
        for suffix, ann_dir, img_dir in self._voc_dirs("BBox_SSDD"):
            images = {p.stem: p for p in img_dir.glob("*.jpg")} if img_dir.is_dir() else {}
            xmls = sorted(ann_dir.glob("*.xml"))
            for stem in sorted(set(images) - {p.stem for p in xmls}):
                self._problem(images[stem], f"image has no annotation file in {ann_dir}")
            for xml in xmls:
                image_id = xml.stem
                record = records.get(image_id)
                if suffix in TAG_FOLDERS and record is not None:
                    record.tags.add(suffix)  # the train/test folder already gave the image and labels
                    continue
                if record is not None:
                    self._problem(xml, f"image {image_id} is also listed in {Path(record.annotation_path).parent.name}; kept that one")
                    continue
                if image_id not in images:
                    self._problem(xml, f"missing image {img_dir / (image_id + '.jpg')}")
                    continue
                record = self._record_from_voc(xml, images[image_id], image_id, suffix)
                if record is not None:
                    records[image_id] = record
        return [records[k] for k in sorted(records)]

    def _record_from_voc(self, xml: Path, image: Path, image_id: str, suffix: str) -> SSDDRecord | None:
        try:
            annotation = _voc.parse_voc_xml(xml)
        except _voc.VOCParseError as e:
            self._problem(xml, str(e).removeprefix(f"{xml}: "))
            return None
        split = ("test" if suffix.startswith("test") else suffix) if suffix else official_split(image_id)
        record = SSDDRecord(image_id, str(image), str(xml), split, {suffix} if suffix in TAG_FOLDERS else set())
        if annotation.width and annotation.height:
            record.size = (int(annotation.width), int(annotation.height))
        for obj, (x0, y0, x1, y1), clipped in self._take_voc_objects(xml, annotation.objects, record.size, CLASSES):
            attrs = {"difficult": bool(obj.difficult), "truncated": bool(obj.truncated)}
            if clipped:  # only on clipped boxes, so that datasets without any keep their schema
                attrs["clipped"] = True
            record.boxes.append((obj.name, (x0, y0, x1, y1), attrs))
        return record

    def _attach_voc_variant(self, records: list[SSDDRecord], variant: str) -> None:
        """Fills ``rboxes`` or ``polygons`` of each record from the RBox/PSeg voc_style XML of the same image."""
        index: dict[str, Path] = {}
        for _, ann_dir, _ in self._voc_dirs(variant):
            for xml in ann_dir.glob("*.xml"):
                index.setdefault(xml.stem, xml)
        attr = VARIANT_FIELDS[variant]
        for record in records:
            xml = index.get(record.image_id)
            if xml is None:
                continue
            try:
                annotation = _voc.parse_voc_xml(xml)
            except _voc.VOCParseError as e:
                self._problem(xml, str(e).removeprefix(f"{xml}: "))
                continue
            shapes = []
            for i, obj in enumerate(annotation.objects):
                if obj.name not in CLASSES:
                    self._problem(xml, f"object {i + 1}: unknown class {obj.name!r}; object dropped")
                    continue
                shape = _rbox_shape(obj) if variant == "RBox_SSDD" else _pseg_shape(obj)
                if shape is None:
                    self._problem(xml, f"object {i + 1}: no <{'rotated_bndbox' if variant == 'RBox_SSDD' else 'segm'}>; object dropped")
                    continue
                shapes.append(shape)
            setattr(record, attr, shapes)

    def _scan_coco(self) -> list[SSDDRecord]:
        coco_dir = self._coco_dir()
        records: dict[str, SSDDRecord] = {}
        for json_path in sorted((coco_dir / "annotations").glob("*.json"), key=_coco_order):
            self._read_coco(json_path, coco_dir, records, polygons_only=False)
        pseg = self.root / "PSeg_SSDD" / "coco_style"
        if self.load_polygons and pseg.is_dir() and pseg != coco_dir:
            for json_path in sorted((pseg / "annotations").glob("*.json"), key=_coco_order):
                self._read_coco(json_path, pseg, records, polygons_only=True)
        return [records[k] for k in sorted(records)]

    def _read_coco(self, json_path: Path, coco_dir: Path, records: dict[str, SSDDRecord], polygons_only: bool) -> None:
        split_name = json_path.stem
        try:
            data = json.loads(json_path.read_text())
            images, annotations = data["images"], data.get("annotations", [])
            if not isinstance(images, list) or not isinstance(annotations, list):
                raise TypeError("'images' and 'annotations' must be lists")
            categories = {c["id"]: c["name"] for c in data.get("categories", [])}
        except (OSError, ValueError, KeyError, TypeError) as e:
            self._problem(json_path, f"unreadable COCO json ({type(e).__name__}: {e})")
            return
        by_image: dict = defaultdict(list)  # grouped by image id, never keyed by the (duplicated) annotation ids
        for i, ann in enumerate(annotations):
            if not isinstance(ann, dict) or not isinstance(ann.get("image_id"), (int, str)):
                self._problem(json_path, f"annotation {i + 1} is not an object with an image_id "
                              f"({str(ann)[:80]}); ignored")
                continue
            by_image[ann["image_id"]].append(ann)
        for image in images:
            try:
                file_name, coco_id = image["file_name"], image["id"]
                if not isinstance(coco_id, (int, str)):
                    raise TypeError(f"id {coco_id!r} is not an integer")
                size = (int(image["width"]), int(image["height"]))
                image_path = safe_join(coco_dir / "images" / split_name, file_name)
            except (KeyError, TypeError, ValueError) as e:
                self._problem(json_path, f"image entry {image!r}: {e}")
                continue
            image_id = Path(file_name).stem
            record = records.get(image_id)
            if polygons_only:
                if record is not None:
                    record.polygons = [s for s in (self._coco_polygon(json_path, a, categories) for a in by_image[coco_id]) if s]
                continue
            if record is not None:  # test_inshore/test_offshore repeat test images
                if split_name in TAG_FOLDERS:
                    record.tags.add(split_name)
                continue
            if not image_path.exists() and split_name in TAG_FOLDERS:
                image_path = safe_join(coco_dir / "images" / "test", file_name)
            if not image_path.exists():
                self._problem(json_path, f"missing image {image_path}")
                continue
            split = "test" if split_name.startswith("test") else split_name if split_name in ("train", "val") else official_split(image_id)
            record = SSDDRecord(image_id, str(image_path), str(json_path), split, {split_name} if split_name in TAG_FOLDERS else set(), size)
            for ann in by_image[coco_id]:
                box = self._coco_box(json_path, ann, categories, size)
                if box is not None:
                    record.boxes.append(box)
            if self.load_polygons:
                polygons = [s for s in (self._coco_polygon(json_path, a, categories) for a in by_image[coco_id]) if s]
                record.polygons = polygons if any(a.get("segmentation") for a in by_image[coco_id]) else None
            records[image_id] = record

    def _coco_box(self, json_path, ann: dict, categories: dict, size) -> tuple | None:
        where = f"annotation id {ann.get('id')} of image {ann.get('image_id')}"
        name = categories.get(ann.get("category_id"))
        if name not in CLASSES:
            self._count_label(name or f"category {ann.get('category_id')}", "dropped")
            self._problem(json_path, f"{where}: unknown category {ann.get('category_id')!r}; object dropped")
            return None
        try:
            x, y, w, h = (float(v) for v in ann["bbox"])
            if not all(math.isfinite(v) for v in (x, y, w, h)):
                raise ValueError("not finite")
        except (KeyError, TypeError, ValueError):
            self._count_label(name, "dropped")
            self._problem(json_path, f"{where}: bad bbox {ann.get('bbox')!r}; object dropped")
            return None
        width, height = size
        tol = _COCO_EDGE_TOLERANCE
        if w <= 0 or h <= 0 or x < -tol or y < -tol or x + w > width + tol or y + h > height + tol:
            self._count_label(name, "dropped")
            self._problem(json_path, f"{where}: box {[x, y, w, h]} degenerate or outside the {width}x{height} image; object dropped")
            return None
        clipped = x < 0 or y < 0 or x + w > width or y + h > height
        self._count_label(name, "clipped" if clipped else "kept")
        x0, y0 = max(0.0, x), max(0.0, y)
        attrs = {"iscrowd": bool(ann.get("iscrowd", 0)), "ignore": bool(ann.get("ignore", 0))}
        if clipped:
            attrs["clipped"] = True
        return name, (x0, y0, min(float(width), x + w), min(float(height), y + h)), attrs

    def _coco_polygon(self, json_path, ann: dict, categories: dict) -> Shape | None:
        name = categories.get(ann.get("category_id"))
        segmentation = ann.get("segmentation")
        if name not in CLASSES or not segmentation:
            return None
        if not isinstance(segmentation, list):
            self._problem(json_path, f"annotation id {ann.get('id')}: RLE segmentation not supported; polygon dropped")
            return None
        try:
            parts = [[(float(p[i]), float(p[i + 1])) for i in range(0, len(p) - 1, 2)]
                     for p in segmentation if len(p) >= 6]
            if not all(math.isfinite(v) for part in parts for point in part for v in point):
                raise ValueError("not finite")
        except (TypeError, ValueError):
            self._problem(json_path, f"annotation id {ann.get('id')}: bad polygon {str(segmentation)[:80]}; "
                          "polygon dropped")
            return None
        return (name, parts, {}) if parts else None

    # ---------------------------------------------------------------- samples

    def _build_sample(self, record: SSDDRecord) -> dict:
        decoded = self._decoded.pop(record.image_id, None)  # started during the scan (unless closed meanwhile)
        if decoded is not None and not decoded.cancelled():
            counts, (width, height), channels = decoded.result()
        else:
            counts, (width, height), channels = sarimage.read_gray_histogram(record.path)
        if record.size is not None and record.size != (width, height):
            raise ValueError(
                f"{record.annotation_path} declares {record.size[0]}x{record.size[1]} but the image is {width}x{height}"
            )
        fields = sar_sample_doc_fields(record.path, width, height, channels, display_dir=self.display_dir)
        if self.compute_stats:
            fields["sar_stats"] = _docs.dynamic_document(**_voc.histogram_speckle_stats(counts).to_dict())
        detections = [
            _docs.detection(label, [x0 / width, y0 / height, (x1 - x0) / width, (y1 - y0) / height], **attrs)
            for label, (x0, y0, x1, y1), attrs in record.boxes
        ]
        doc = _docs.sample(
            **fields,
            ground_truth=_docs.detections(detections),
            split=record.split,
            source="ssdd",
            image_id=record.image_id,
            tags=sorted(record.tags),
        )
        if "rboxes" in self._label_fields and record.rboxes is not None:
            doc["rboxes"] = _polylines(record.rboxes, width, height, filled=False)
        if "polygons" in self._label_fields and record.polygons is not None:
            doc["polygons"] = _polylines(record.polygons, width, height, filled=True)
        return doc

    def _dataset_info(self) -> dict:
        return {
            "classes": list(CLASSES),
            "annotation_source": self.annotation_source,
            "label_fields": list(self._label_fields),
            "split_rule": "folder (train/test); flat layouts: image ids ending in 1 or 9 are test",
            "box_convention": "VOC integers are inclusive pixel indices, 0-based or 1-based detected per file: "
            "relative box [x0/W, y0/H, (x1-x0)/W, (y1-y0)/H] of the half-open 0-based span; COCO floats are continuous",
        }


def _coco_order(path: Path) -> tuple:
    """train/test JSONs before test_inshore/test_offshore, so tag folders only add tags."""
    return (path.stem in TAG_FOLDERS, path.stem)


def _rbox_shape(obj: _voc.VOCObject) -> Shape | None:
    if obj.rotated is None:
        return None
    r = obj.rotated
    corners = [(r[f"x{i}"] + 0.5, r[f"y{i}"] + 0.5) for i in range(1, 5)]
    attrs = {
        "cx": float(r["rotated_bbox_cx"]), "cy": float(r["rotated_bbox_cy"]),
        "w": float(r["rotated_bbox_w"]), "h": float(r["rotated_bbox_h"]), "theta": float(r["rotated_bbox_theta"]),
    }
    return obj.name, [corners], attrs


def _pseg_shape(obj: _voc.VOCObject) -> Shape | None:
    if obj.points is None:
        return None
    return obj.name, [[(x + 0.5, y + 0.5) for x, y in obj.points]], {}


def _polylines(shapes: list[Shape], width: int, height: int, filled: bool) -> dict:
    """Continuous pixel shapes → relative, closed polylines (the document of :class:`fiftyone.Polylines`)."""
    return _docs.polylines(
        [
            _docs.polyline(label, [[[x / width, y / height] for x, y in part] for part in parts], True, filled, **attrs)
            for label, parts, attrs in shapes
        ]
    )

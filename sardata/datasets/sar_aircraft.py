"""SAR-AIRcraft-1.0: fine-grained aircraft detection in Gaofen-3 1 m spotlight images (4368 images, 16463 aircraft).

Wang Zhirui et al., "SAR-AIRcraft-1.0: High-resolution SAR aircraft detection and recognition dataset", Journal of
Radars 2023.

Dataset features: grayscale JPEG (PIL mode ``L``), square images of 800, 1000, 1200 or 1500 px; seven classes
(:data:`CLASSES`, ``A320/321`` contains a slash); VOC-like XML with only ``<size>`` and ``<object>`` elements;
boxes are 0-based inclusive pixel indices (see :mod:`sardata.datasets._voc`).

Dataset format::

    JPEGImages/<7-digit id>.jpg
    Annotations/<7-digit id>.xml
    ImageSets/Main/{train,val,trainval,test}.txt     (one id per line)

Split: from ``ImageSets/Main`` when present (test > val > train; ``trainval`` alone counts as train; an id in no
list gets ``None``). Without split
files (the public sample has none), a seeded split: an image is test when a hash of ``(split_seed, id)`` falls below
``test_fraction``. Hashing per id keeps an image's split stable when images are added or removed, which a shuffled
list would not. ``dataset.info["split_source"]`` records which rule was used.

Sample fields: ``ground_truth`` (:class:`fiftyone.Detections`), ``split``, ``image_id`` ("0004360"),
``source`` ("sar_aircraft") and the SAR fields of :func:`sar_sample_fields`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from sardata import sarimage
from sardata.datasets import _docs, _voc
from sardata.datasets._base import DatasetNotFoundError, SarDatasetImporter, sar_sample_doc_fields

CLASSES = ["A220", "A320/321", "A330", "ARJ21", "Boeing737", "Boeing787", "other"]
#: ImageSets/Main list → split, in increasing priority (an id listed in test.txt is test whatever else says).
SPLIT_LISTS = (("trainval", "train"), ("train", "train"), ("val", "val"), ("test", "test"))


def seeded_split(image_id: str, test_fraction: float = 0.2, split_seed: int = 0) -> str:
    """``"test"`` for about ``test_fraction`` of ids, chosen by a hash of ``(split_seed, image_id)``; else ``"train"``."""
    digest = hashlib.sha1(f"{split_seed}:{image_id}".encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") / 2**64 < test_fraction else "train"


@dataclass
class AircraftRecord:
    image_id: str
    path: str  # the image file
    annotation_path: str
    split: str | None
    size: tuple[int, int] | None = None
    boxes: list[tuple[str, tuple[float, float, float, float], dict]] = field(default_factory=list)  # half-open spans


class SARAircraftImporter(SarDatasetImporter):
    """Importer for SAR-AIRcraft-1.0 (VOC layout).

    Args:
        dataset_dir: the root holding ``JPEGImages`` and ``Annotations`` (or the folder holding ``SAR-AIRcraft-1.0``).
        test_fraction (0.2): share of test images of the seeded split (used only without ``ImageSets/Main``).
        split_seed (0): seed of the seeded split.
        strict (False): raise on the first problem instead of reporting it and going on.
        compute_stats (True): compute ``sar_stats`` for every sample.
        display_dir (None): cache directory for display PNGs (unused: the JPEGs display as they are).
        num_workers (None): threads decoding images.
        shuffle (False): randomly shuffle the order of the samples.
        seed (None): random seed used when shuffling.
        max_samples (None): maximum number of samples to import.
    """

    NAME: ClassVar[str] = "SAR-AIRcraft-1.0"

    def __init__(
        self,
        dataset_dir,
        test_fraction=0.2,
        split_seed=0,
        strict=False,
        compute_stats=True,
        display_dir=None,
        num_workers=None,
        shuffle=False,
        seed=None,
        max_samples=None,
    ):
        if not 0.0 <= float(test_fraction) <= 1.0:
            raise ValueError(f"test_fraction must be in [0, 1], got {test_fraction!r}")
        super().__init__(
            dataset_dir, strict=strict, compute_stats=compute_stats, display_dir=display_dir,
            num_workers=num_workers, shuffle=shuffle, seed=seed, max_samples=max_samples,
        )
        self.test_fraction = float(test_fraction)
        self.split_seed = int(split_seed)
        self.split_source = ""

    def _verify(self) -> None:
        super()._verify()
        nested = Path(self.dataset_dir) / "SAR-AIRcraft-1.0"
        if not (Path(self.dataset_dir) / "Annotations").is_dir() and nested.is_dir():
            self.dataset_dir = str(nested)  # the folder holding the release was given
        for sub in ("JPEGImages", "Annotations"):
            if not (Path(self.dataset_dir) / sub).is_dir():
                raise DatasetNotFoundError(self.NAME, self.dataset_dir, f"{sub}/")

    def _read_split_lists(self) -> dict[str, str] | None:
        main = Path(self.dataset_dir) / "ImageSets" / "Main"
        lists = [(main / f"{name}.txt", split) for name, split in SPLIT_LISTS if (main / f"{name}.txt").is_file()]
        if not lists:
            return None
        splits: dict[str, str] = {}
        for path, split in lists:
            try:
                text = path.read_bytes().decode("utf-8-sig")
            except (OSError, UnicodeDecodeError) as e:
                self._problem(path, f"unreadable split list ({e}); ignored")
                continue
            for line in text.split():
                splits[Path(line.strip()).stem] = split  # later (higher-priority) lists win
        return splits

    def _scan(self) -> list[AircraftRecord]:
        root = Path(self.dataset_dir)
        images = {p.stem: p for p in (root / "JPEGImages").iterdir() if p.suffix.lower() in (".jpg", ".jpeg")}
        xmls = {p.stem: p for p in (root / "Annotations").glob("*.xml")}
        for stem in sorted(set(images) - set(xmls)):
            self._problem(images[stem], f"image has no annotation file Annotations/{stem}.xml")
        listed = self._read_split_lists()
        if listed is None:
            self.split_source = (
                f"seeded: sha1(split_seed:id) < test_fraction (test_fraction={self.test_fraction}, "
                f"split_seed={self.split_seed}); no ImageSets/Main split files"
            )
        else:
            self.split_source = "ImageSets/Main"
        records = []
        for image_id in sorted(xmls):
            xml = xmls[image_id]
            if image_id not in images:
                self._problem(xml, f"missing image JPEGImages/{image_id}.jpg")
                continue
            try:
                annotation = _voc.parse_voc_xml(xml)
            except _voc.VOCParseError as e:
                self._problem(xml, str(e).removeprefix(f"{xml}: "))
                continue
            if listed is None:
                split = seeded_split(image_id, self.test_fraction, self.split_seed)
            else:
                split = listed.get(image_id)
            record = AircraftRecord(image_id, str(images[image_id]), str(xml), split)
            if annotation.width and annotation.height:
                record.size = (int(annotation.width), int(annotation.height))
            for obj, span, clipped in self._take_voc_objects(xml, annotation.objects, record.size, CLASSES):
                record.boxes.append((obj.name, span, {"clipped": True} if clipped else {}))
            records.append(record)
        return records

    def _build_sample(self, record: AircraftRecord) -> dict:
        counts, (width, height), channels = sarimage.read_gray_histogram(record.path)
        if record.size is not None and record.size != (width, height):
            raise ValueError(
                f"{record.annotation_path} declares {record.size[0]}x{record.size[1]} but the image is {width}x{height}"
            )
        fields = sar_sample_doc_fields(record.path, width, height, channels, display_dir=self.display_dir)
        if self.compute_stats:
            fields["sar_stats"] = _docs.dynamic_document(**_voc.histogram_speckle_stats(counts).to_dict())
        detections = [
            _docs.detection(label, _voc.span_to_relative(span, width, height), **attrs) for label, span, attrs in record.boxes
        ]
        return _docs.sample(
            **fields,
            ground_truth=_docs.detections(detections),
            split=record.split,
            source="sar_aircraft",
            image_id=record.image_id,
        )

    def _dataset_info(self) -> dict:
        return {
            "classes": list(CLASSES),
            "split_source": self.split_source,
            "box_convention": "inclusive pixel indices, 0-based or 1-based detected per file; relative box "
            "[x0/W, y0/H, (x1-x0)/W, (y1-y0)/H] of the half-open 0-based span",
        }

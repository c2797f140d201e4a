"""COCO-export reader for the detectors: ``annotations/<split>.json`` + ``images/<split>/<file_name>``.

Any COCO detection export works. sardata's own exports add two keys to each image entry: ``sample_id`` (the
FiftyOne sample) and ``replica`` (0 for the original, >0 for the copies written by ``balance --mode replicate``).
Training reads every entry, copies included; evaluation and prediction read one entry per ``sample_id``.

Targets follow torchvision's ``references/detection/coco_utils.py``: absolute ``xyxy`` float boxes, int64 ``labels``
(the COCO ``category_id``; R-CNN models reserve 0 for background, so 1-based ids fit as they are), ``image_id``,
``area``, ``iscrowd``. Degenerate boxes are dropped.

Training crops (``crop_size``): a window of ``crop_size``² at native resolution (the whole side when the image is
smaller). The crop rule (:func:`random_crop`): a box stays labelled, clipped to the window, when at least
:data:`MIN_BOX_FRACTION` of its area is inside and the clipped box is at least :data:`MIN_BOX_SIDE` px on each side;
otherwise it is dropped. So that a dropped piece (ship pixels then counted as background) stays rare, the window
position is drawn up to :data:`CROP_TRIES` times and the first window that cuts no box into a piece under that
fraction is used (else the one cutting fewest). Images without boxes are kept: they train as negatives.

Box-centred crops (``crop_focus``): with that probability, and when the image has boxes, the window is drawn among
the positions that hold one box of the image (chosen uniformly) wholly inside — the idea of YOLO-style
object-aware sampling: with ships a few pixels wide in images of ~500², a uniform 256² window often holds none, so
a step would spend most of its pixels on background. The other crops stay uniform, so sea and land without ships
are still seen as negatives. The same crop rule then applies to every other box.
"""

from __future__ import annotations

import json
import os
import random
import warnings
from pathlib import Path

import numpy as np
import torch

from sardata.train.common import to_chw_tensor

#: A box cut by a training crop stays labelled when at least this fraction of its area remains inside.
MIN_BOX_FRACTION = 0.5
#: ... and when the clipped box is at least this many pixels on each side.
MIN_BOX_SIDE = 2.0
#: Window positions tried per crop to avoid cutting a box into an unlabelled piece.
CROP_TRIES = 10


def annotations_path(data_dir: str | os.PathLike, split: str) -> Path:
    return Path(data_dir) / "annotations" / f"{split}.json"


def read_coco(data_dir: str | os.PathLike, split: str) -> dict:
    """The COCO dict of one split; the error names the file and the reason."""
    path = annotations_path(data_dir, split)
    if not path.is_file():
        available = sorted(p.stem for p in path.parent.glob("*.json")) if path.parent.is_dir() else []
        raise FileNotFoundError(f"{path}: no COCO annotations for split {split!r} (available: {available})")
    try:
        coco = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    for key in ("images", "categories"):
        if key not in coco:
            raise ValueError(f"{path}: not a COCO detection file (missing {key!r})")
    coco.setdefault("annotations", [])
    return coco


def has_split(data_dir: str | os.PathLike, split: str) -> bool:
    return annotations_path(data_dir, split).is_file()


def categories_of(data_dir: str | os.PathLike, split: str = "train") -> list[dict]:
    """``[{"id", "name"}, ...]`` sorted by id."""
    return sorted(read_coco(data_dir, split)["categories"], key=lambda c: c["id"])


def read_pixels(path: str | os.PathLike) -> np.ndarray:
    """An image file (PNG/JPEG/TIFF, float or integer) or a ``.npy`` array."""
    if str(path).endswith(".npy"):
        return np.load(path, allow_pickle=False)
    from sardata.sarimage import read_image

    return read_image(path)


def unique_per_sample(images: list[dict]) -> list[dict]:
    """One image entry per ``sample_id`` (the original, ``replica == 0``, when present); plain COCO passes through."""
    chosen: dict = {}
    for image in images:
        key = image.get("sample_id", image["id"])
        best = chosen.get(key)
        if best is None or (image.get("replica", 0) < best.get("replica", 0)):
            chosen[key] = image
    order = {id(img): i for i, img in enumerate(images)}
    return sorted(chosen.values(), key=lambda img: order[id(img)])


class CocoDetection(torch.utils.data.Dataset):
    """A COCO export split as ``(image, target)`` pairs for torchvision detection models.

    Args:
        data_dir: the export root (holding ``annotations/`` and ``images/``).
        split: ``train``, ``val``, ``test`` or any split with an annotations file.
        train (False): apply the training augmentation (random horizontal and vertical flips: SAR scenes have
            no preferred orientation).
        dedup (False): keep one entry per ``sample_id`` (evaluation and prediction).
        max_images (None): read only the first N entries (quick runs).
        crop_size (None): with ``train``, a random ``crop_size``² window at native resolution (module docstring).
        crop_focus (0.0): probability that a training crop is box-centred (module docstring).

    Image entries whose file is missing are skipped with a warning naming the file.
    """

    def __init__(self, data_dir, split: str, train: bool = False, dedup: bool = False, max_images: int | None = None,
                 crop_size: int | None = None, crop_focus: float = 0.0):
        self.data_dir = Path(data_dir)
        self.split = split
        self.train = train
        self.crop_size = crop_size
        self.crop_focus = float(crop_focus)
        self.coco = read_coco(data_dir, split)
        images = unique_per_sample(self.coco["images"]) if dedup else list(self.coco["images"])
        kept = []
        for image in images:
            try:
                path = self.image_path(image)
            except ValueError as e:  # a file_name escaping the export: reported, never read
                warnings.warn(f"{annotations_path(data_dir, split)}: {e}; skipped")
                continue
            if not path.is_file():
                warnings.warn(f"{path}: image listed in {annotations_path(data_dir, split)} is missing; skipped")
                continue
            kept.append(image)
        self.images = kept[:max_images] if max_images else kept
        self.annotations: dict[int, list[dict]] = {}
        for ann in self.coco["annotations"]:
            self.annotations.setdefault(ann["image_id"], []).append(ann)

    def image_path(self, image: dict) -> Path:
        """The image file of a COCO image entry; raises ValueError when its ``file_name`` escapes the export."""
        from sardata.safepath import safe_join

        return safe_join(self.data_dir / "images" / self.split, image["file_name"])

    def __len__(self) -> int:
        return len(self.images)

    def load_image(self, index: int) -> torch.Tensor:
        return to_chw_tensor(read_pixels(self.image_path(self.images[index])))

    def __getitem__(self, index: int):
        entry = self.images[index]
        image = self.load_image(index)
        height, width = image.shape[-2:]
        boxes, labels, areas, crowd = [], [], [], []
        for ann in self.annotations.get(entry["id"], []):
            x, y, w, h = ann["bbox"]
            if not np.isfinite([x, y, w, h]).all():  # NaN/inf would make the training loss non-finite
                warnings.warn(f"annotation {ann.get('id')} of image {entry['id']}: non-finite bbox {ann['bbox']}; "
                              "dropped")
                continue
            x0, y0 = max(0.0, float(x)), max(0.0, float(y))
            x1, y1 = min(float(width), float(x) + float(w)), min(float(height), float(y) + float(h))
            if x1 - x0 < 1e-3 or y1 - y0 < 1e-3:  # degenerate boxes break the box coder's log(w)
                continue
            boxes.append([x0, y0, x1, y1])
            labels.append(int(ann["category_id"]))
            areas.append(float(ann.get("area", (x1 - x0) * (y1 - y0))))
            crowd.append(int(ann.get("iscrowd", 0)))
        target = {
            "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor(labels, dtype=torch.int64),
            "image_id": int(entry["id"]),
            "area": torch.tensor(areas, dtype=torch.float32),
            "iscrowd": torch.tensor(crowd, dtype=torch.int64),
        }
        if self.train:
            if self.crop_size:
                focus = self.crop_focus > 0 and random.random() < self.crop_focus
                image, target = random_crop(image, target, self.crop_size, focus=focus)
            image, target = random_flips(image, target)
        return image, target


def random_crop(image: torch.Tensor, target: dict, size: int, min_fraction: float = MIN_BOX_FRACTION,
                min_side: float = MIN_BOX_SIDE, tries: int = CROP_TRIES, rng=random, focus: bool = False):
    """A random ``size``² window of ``image`` and its boxes, by the crop rule of the module docstring; ``focus``: a
    window holding one of the boxes (chosen at random) wholly inside, where the image has boxes."""
    height, width = image.shape[-2:]
    crop_h, crop_w = min(size, height), min(size, width)
    if (crop_h, crop_w) == (height, width):
        return image, target
    boxes = target["boxes"]
    areas = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).clamp_min(1e-6)
    anchor = boxes[rng.randrange(len(boxes))].tolist() if focus and len(boxes) else None
    best = None
    for _ in range(max(1, tries)):
        y0, x0 = _window_start(height, crop_h, anchor, 1, rng), _window_start(width, crop_w, anchor, 0, rng)
        window = torch.tensor([x0, y0, x0, y0], dtype=boxes.dtype)
        clipped = boxes - window
        clipped[:, 0::2] = clipped[:, 0::2].clamp(0, crop_w)
        clipped[:, 1::2] = clipped[:, 1::2].clamp(0, crop_h)
        sides = clipped[:, 2:] - clipped[:, :2]
        fraction = sides.prod(dim=1) / areas
        keep = (fraction >= min_fraction) & (sides >= min_side).all(dim=1)
        cut = int(((fraction > 0) & ~keep).sum())
        if best is None or cut < best[0]:
            best = (cut, y0, x0, clipped, keep)
        if cut == 0:
            break
    _, y0, x0, clipped, keep = best
    out = {**target, "boxes": clipped[keep], "labels": target["labels"][keep]}
    out["area"] = (clipped[keep, 2] - clipped[keep, 0]) * (clipped[keep, 3] - clipped[keep, 1])
    if "iscrowd" in target:
        out["iscrowd"] = target["iscrowd"][keep]
    return image[:, y0:y0 + crop_h, x0:x0 + crop_w], out


def _window_start(extent: int, crop: int, box, axis: int, rng) -> int:
    """A crop start in ``[0, extent - crop]``; with ``box`` (xyxy) one whose window holds the box on ``axis`` (as
    much of it as fits when the box is larger than the crop)."""
    high = extent - crop
    if box is None:
        return rng.randint(0, high)
    lo_edge, hi_edge = box[axis], box[axis + 2]
    first = max(0, min(high, int(np.ceil(hi_edge)) - crop))
    last = max(first, min(high, int(np.floor(lo_edge))))
    return rng.randint(first, last)


def check_categories(expected: list[dict], found: list[dict], expected_from: str, found_in: str) -> None:
    """Raises ValueError naming both sources when two category lists (``[{"id", "name"}]``) differ."""
    def plain(cats):
        return sorted((int(c["id"]), str(c["name"])) for c in cats)

    if plain(expected) != plain(found):
        raise ValueError(f"categories of {found_in} {plain(found)} do not match {expected_from} {plain(expected)}")


def random_flips(image: torch.Tensor, target: dict, p: float = 0.5):
    """Horizontal and vertical flips of an image and its xyxy boxes, each with probability ``p``."""
    height, width = image.shape[-2:]
    boxes = target["boxes"].clone()
    if random.random() < p:
        image = image.flip(-1)
        boxes[:, [0, 2]] = width - boxes[:, [2, 0]]
    if random.random() < p:
        image = image.flip(-2)
        boxes[:, [1, 3]] = height - boxes[:, [3, 1]]
    return image, {**target, "boxes": boxes}


def collate(batch):
    """Detection batches are lists (images differ in size): ``(images, targets)``."""
    return tuple(zip(*batch))


def targets_to(targets, device: torch.device) -> list[dict]:
    return [{k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in t.items()} for t in targets]

"""Reader of the ``masks`` export for segmentation training (WHU-OPT-SAR style land cover).

Layout (written by ``sardata export --format masks``)::

    class_map.json                      {"0": "background", "10": "farmland", ..., "70": "others"}
    <split>/images/<stem>.png|.tif      SAR, 1 band (display PNG, or the original float TIFF)
    <split>/optical/<stem>.tif|.npy     optical, 4 bands (optional)
    <split>/masks/<stem>.png            raw label values (0, 10, ..., 70)

Raw label values are mapped to class indices in ascending order of the values in ``class_map.json``. The no-data
value (a class named in :data:`NO_DATA_NAMES`, WHU-OPT-SAR's label 0 "background") is not a class: its pixels get
:data:`IGNORE_INDEX` (skipped by the loss and every metric), as do pixels whose value is not in the class map (with
a warning naming the file). Samples missing an input
file are skipped with a warning naming the file; the rest are read.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from sardata.train.common import to_unit_range

#: Label index of pixels with an unknown raw value (skipped by the loss and the metrics).
IGNORE_INDEX = 255
INPUTS = ("sar", "optical", "both")
#: Class-map names that mean "no data" rather than a class (WHU-OPT-SAR's label 0).
NO_DATA_NAMES = ("background", "no-data", "nodata", "no data", "unlabelled", "unlabeled")
OPTICAL_EXTENSIONS = (".tif", ".tiff", ".npy")
#: The export writes display PNGs, or the original file (float TIFF) when asked for original SAR values.
SAR_EXTENSIONS = (".png", ".tif", ".tiff", ".jpg", ".jpeg")


def read_class_map(root: str | os.PathLike) -> dict[int, str]:
    """``{raw value: class name}`` from ``<root>/class_map.json``, sorted by raw value."""
    path = Path(root) / "class_map.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: class map not found (is {root} a masks export?)")
    try:
        raw = json.loads(path.read_text())
        return dict(sorted((int(k), str(v)) for k, v in raw.items()))
    except (json.JSONDecodeError, ValueError, AttributeError) as e:
        raise ValueError(f"{path}: expected a JSON object {{\"<raw value>\": \"<class name>\"}} ({e})") from e


def read_sar(path: Path) -> np.ndarray:
    """``(H, W)`` float32 in [0, 1]."""
    from sardata.sarimage import read_image

    array = read_image(path)
    if array.ndim == 3:
        array = array[..., 0]  # read_image returns bands last
    return to_unit_range(array)


def read_optical(path: Path) -> np.ndarray:
    """``(4, H, W)`` float32 in [0, 1] from a 4-band ``.tif`` (tifffile) or ``.npy``, bands first or last."""
    if path.suffix.lower() == ".npy":
        array = np.load(path, allow_pickle=False)
    else:
        import tifffile

        array = tifffile.imread(path)
    if array.ndim == 2:
        array = array[None]
    elif array.ndim == 3 and array.shape[-1] <= 4 and array.shape[0] > 4:
        array = np.moveaxis(array, -1, 0)
    if array.ndim != 3:
        raise ValueError(f"{path}: expected a (bands, H, W) or (H, W, bands) array, got shape {array.shape}")
    return np.stack([to_unit_range(band) for band in array]).astype(np.float32)


def read_mask(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        array = np.asarray(im)
    if array.ndim == 3:  # an RGB-saved label image carries the value in every band
        array = array[..., 0]
    return array


class MasksExportDataset(torch.utils.data.Dataset):
    """One split of a masks export as ``{"image", "mask", "stem"}`` dicts.

    Args:
        root: export root (holding ``class_map.json`` and the split folders).
        split: split folder name (``train``, ``val``, ``test``).
        input ("sar"): ``sar`` (1 channel), ``optical`` (4 channels) or ``both`` (SAR then optical, 5 channels).
        augment (False): random flips and 90° rotations (SAR land cover has no preferred orientation).
        max_samples (None): read only the first N stems (quick runs).
        no_data (:data:`NO_DATA_NAMES`): class-map names whose pixels are no data (ignored), not a class.

    Attributes:
        class_map: ``{raw value: name}`` of the classes (no-data left out); index ``i`` is its ``i``-th entry.
        class_names: the class names by index.
        no_data_values: raw values read as no data.
    """

    def __init__(self, root: str | os.PathLike, split: str, input: str = "sar", augment: bool = False,
                 max_samples: int | None = None, no_data: tuple[str, ...] = NO_DATA_NAMES):
        if input not in INPUTS:
            raise ValueError(f"input must be one of {INPUTS}, got {input!r}")
        self.root, self.split, self.input, self.augment = Path(root), split, input, augment
        full_map = read_class_map(root)
        no_data_names = {n.lower() for n in no_data}
        self.no_data_values = [raw for raw, name in full_map.items() if name.lower() in no_data_names]
        self.class_map = {raw: name for raw, name in full_map.items() if raw not in self.no_data_values}
        if not self.class_map:
            raise ValueError(f"{Path(root) / 'class_map.json'}: no class besides no-data {self.no_data_values}")
        self.class_names = list(self.class_map.values())
        self._lut = np.full(256 if max(full_map) < 256 else max(full_map) + 1, IGNORE_INDEX, np.int64)
        for index, raw in enumerate(self.class_map):
            self._lut[raw] = index
        mask_dir = self.root / split / "masks"
        if not mask_dir.is_dir():
            raise FileNotFoundError(f"{mask_dir}: no masks for split {split!r}")
        self.samples: list[dict] = []
        for mask_path in sorted(mask_dir.glob("*.png")):
            sample = self._paths(mask_path)
            if sample is not None:
                self.samples.append(sample)
        if max_samples:
            self.samples = self.samples[:max_samples]

    @property
    def in_channels(self) -> int:
        return {"sar": 1, "optical": 4, "both": 5}[self.input]

    def _paths(self, mask_path: Path) -> dict | None:
        stem = mask_path.stem
        sample = {"stem": stem, "mask": mask_path}
        if self.input in ("sar", "both"):
            sar = next((p for ext in SAR_EXTENSIONS if (p := self.root / self.split / "images" /
                                                         f"{stem}{ext}").is_file()), None)
            if sar is None:
                warnings.warn(f"{self.root / self.split / 'images' / stem}.(png|tif|jpg): SAR image for "
                              f"{mask_path} is missing; sample skipped")
                return None
            sample["sar"] = sar
        if self.input in ("optical", "both"):
            optical = next((p for ext in OPTICAL_EXTENSIONS if (p := self.root / self.split / "optical" /
                                                                 f"{stem}{ext}").is_file()), None)
            if optical is None:
                warnings.warn(f"{self.root / self.split / 'optical' / stem}.(tif|npy): optical image for "
                              f"{mask_path} is missing; sample skipped (use --input sar)")
                return None
            sample["optical"] = optical
        return sample

    def __len__(self) -> int:
        return len(self.samples)

    def labels(self, index: int) -> np.ndarray:
        """Class indices ``(H, W)`` of one sample."""
        path = self.samples[index]["mask"]
        raw = read_mask(path).astype(np.int64)
        if raw.max() >= len(self._lut) or raw.min() < 0:
            raise ValueError(f"{path}: label values outside 0..{len(self._lut) - 1}")
        labels = self._lut[raw]
        unknown = labels == IGNORE_INDEX
        if self.no_data_values:
            unknown &= ~np.isin(raw, self.no_data_values)
        if unknown.any():
            unknown = sorted(set(np.unique(raw[unknown]).tolist()))
            warnings.warn(f"{path}: label values {unknown} are not in class_map.json; ignored")
        return labels

    def image(self, index: int) -> np.ndarray:
        """Input channels ``(C, H, W)`` float32 of one sample."""
        sample = self.samples[index]
        bands = []
        if "sar" in sample:
            bands.append(read_sar(sample["sar"])[None])
        if "optical" in sample:
            bands.append(read_optical(sample["optical"]))
        sizes = {b.shape[-2:] for b in bands}
        if len(sizes) > 1:
            raise ValueError(f"{sample['mask']}: SAR and optical sizes differ {sorted(sizes)}")
        return np.concatenate(bands, axis=0)

    def __getitem__(self, index: int) -> dict:
        image, labels = self.image(index), self.labels(index)
        if image.shape[-2:] != labels.shape:
            raise ValueError(f"{self.samples[index]['mask']}: mask {labels.shape} and image {image.shape[-2:]} differ")
        image_t, labels_t = torch.from_numpy(np.ascontiguousarray(image)), torch.from_numpy(labels)
        if self.augment:
            if torch.rand(()) < 0.5:
                image_t, labels_t = image_t.flip(-1), labels_t.flip(-1)
            if torch.rand(()) < 0.5:
                image_t, labels_t = image_t.flip(-2), labels_t.flip(-2)
            turns = int(torch.randint(0, 4, ()))
            image_t, labels_t = image_t.rot90(turns, (-2, -1)), labels_t.rot90(turns, (-2, -1))
        return {"image": image_t.contiguous(), "mask": labels_t.contiguous(), "stem": self.samples[index]["stem"]}

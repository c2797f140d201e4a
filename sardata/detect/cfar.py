"""Cell-averaging CFAR ship detection: the classical, training-free reference for the learned detectors.

**Detector.** For every cell under test (CUT, one pixel) of an *intensity* image ``I`` (linear power, not dB, not
amplitude), the clutter mean is estimated as the average ``Z`` of the ``N`` training cells: a square of side
``2·(guard + train) + 1`` around the CUT minus the guard square of side ``2·guard + 1`` (which holds the CUT and keeps
the target's own pixels out of the estimate). The CUT is a detection when ``I > α · Z``. Window sums are box filters
(``scipy.ndimage.uniform_filter``, separable running sums, O(1) per pixel whatever the window), with reflected
borders so every cell has the same ``N``.

**Threshold factor from the false-alarm rate.** Under L-look gamma clutter (L = 1: exponential intensity) of mean μ,
``I/μ ~ Gamma(L, 1/L) = χ²(2L)/(2L)`` and, with independent training cells, ``Z/μ ~ χ²(2NL)/(2NL)``; the ratio
``I/Z`` is therefore F-distributed with ``(2L, 2NL)`` degrees of freedom and

    Pfa = P(I > α Z) = 1 − F_{2L, 2NL}(α)   ⇒   α = F⁻¹_{2L, 2NL}(1 − Pfa)   (``scipy.stats.f.isf(Pfa, 2L, 2NL)``),

which for L = 1 is the textbook CA-CFAR ``α = N · (Pfa^(−1/N) − 1)``. Real clutter is textured (K-like) and
speckle is spatially correlated, so the realised false-alarm rate is higher than ``pfa``; tune ``pfa`` on training
images, not on the evaluation set. ``looks`` is the clutter's equivalent number of looks (ENL).

**Boxes and scores.** Detected pixels are grouped into connected components (8-connectivity) after a dilation of
``merge`` pixels (so a ship broken up by speckle stays one object; the box is the extent of the detected pixels
themselves); components of fewer than ``min_pixels`` detected pixels are dropped. Each box is ``(x0, y0, x1, y1)``
with ``x1 = last column + 1`` (continuous pixel coordinates, as COCO/torchvision boxes). Its score is in (0, 1):
``1 − 1/r`` with ``r`` the component's peak (``score="peak"``) or mean (``"mean"``) signal-to-clutter ratio
``I/Z``, or ``s/(1 + s)`` with ``s`` the component's integrated excess ``Σ (I/Z − 1)`` (``"integrated"``: large,
bright objects rank first).

The detector is scale invariant (multiplying the image by a constant changes nothing). A floor of 1e-3 × the image's
mean intensity on ``Z`` keeps all-zero areas (8-bit JPEG sea quantised to 0) from turning every non-zero pixel into a
detection.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np
from torch import nn

SCORES = ("peak", "mean", "integrated")
INPUTS = ("amplitude", "intensity", "db")


@dataclasses.dataclass
class CFARConfig:
    """CA-CFAR settings (module docstring).

    Attributes:
        pfa (1e-5): design probability of false alarm per cell.
        guard (6): guard band half-width in pixels (guard square side ``2·guard + 1``); larger than half a ship.
        train (8): training band width in pixels around the guard square.
        looks (1.0): equivalent number of looks of the clutter (gamma shape) used for the threshold factor.
        min_pixels (3): smallest component (detected pixels) kept as a box.
        merge (2): dilation radius (pixels) joining nearby detected pixels into one object; 0 = plain components.
        score ("mean"): ``peak``, ``mean`` or ``integrated`` (module docstring).
        max_detections (100): keep the best-scoring boxes per image.
        input ("amplitude"): what :class:`CFARDetector` receives: ``amplitude`` (linear, e.g. an 8-bit image / 255,
            squared to intensity), ``intensity`` (linear power) or ``db`` (``10·log10`` intensity up to an additive
            offset, times ``db_scale``).
        db_scale (1.0): dB per input unit for ``input="db"`` (e.g. the per-image std of a dB-standardised input).
        label (1): the class label given to every box (torchvision convention: 0 is background).
    """

    pfa: float = 1e-5
    guard: int = 6
    train: int = 8
    looks: float = 1.0
    min_pixels: int = 3
    merge: int = 2
    score: str = "mean"
    max_detections: int = 100
    input: str = "amplitude"
    db_scale: float = 1.0
    label: int = 1

    def validate(self) -> "CFARConfig":
        if not 0.0 < self.pfa < 1.0:
            raise ValueError(f"pfa must be in (0, 1), got {self.pfa}")
        if self.guard < 0 or self.train < 1:
            raise ValueError(f"need guard >= 0 and train >= 1, got guard={self.guard}, train={self.train}")
        if self.looks <= 0:
            raise ValueError(f"looks must be positive, got {self.looks}")
        if self.score not in SCORES:
            raise ValueError(f"unknown score {self.score!r}; expected one of {SCORES}")
        if self.input not in INPUTS:
            raise ValueError(f"unknown input {self.input!r}; expected one of {INPUTS}")
        if self.min_pixels < 1 or self.merge < 0 or self.max_detections < 1:
            raise ValueError("min_pixels and max_detections must be >= 1 and merge >= 0")
        return self

    @property
    def n_training_cells(self) -> int:
        return (2 * (self.guard + self.train) + 1) ** 2 - (2 * self.guard + 1) ** 2


@lru_cache(maxsize=256)
def threshold_factor(pfa: float, n_cells: int, looks: float = 1.0) -> float:
    """CA-CFAR ``α`` for L-look gamma clutter: ``F⁻¹_{2L, 2NL}(1 − pfa)`` (module docstring)."""
    from scipy.stats import f

    return float(f.isf(pfa, 2.0 * looks, 2.0 * n_cells * looks))


def _box_sum(x: np.ndarray, side: int) -> np.ndarray:
    from scipy.ndimage import uniform_filter

    return uniform_filter(x, size=side, mode="reflect") * float(side * side)


def clutter_ratio(intensity: np.ndarray, cfg: CFARConfig) -> np.ndarray:
    """``I / Z``: each pixel's intensity over the mean of its training cells (float64, same shape)."""
    image = np.asarray(intensity, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"CFAR needs a 2-D intensity image, got shape {image.shape}")
    outer = _box_sum(image, 2 * (cfg.guard + cfg.train) + 1)
    inner = _box_sum(image, 2 * cfg.guard + 1)
    z = np.maximum(outer - inner, 0.0) / cfg.n_training_cells
    floor = 1e-3 * max(float(image.mean()), np.finfo(float).tiny)
    return image / np.maximum(z, floor)


def cfar_mask(intensity: np.ndarray, cfg: CFARConfig) -> tuple[np.ndarray, np.ndarray]:
    """Detected cells ``I > α Z`` and the ratio ``I / Z``."""
    cfg.validate()
    ratio = clutter_ratio(intensity, cfg)
    return ratio > threshold_factor(cfg.pfa, cfg.n_training_cells, cfg.looks), ratio


def cfar_detect(image: np.ndarray, cfg: CFARConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """CA-CFAR on one intensity image ``(H, W)``: ``(boxes_xyxy (N, 4) float32, scores (N,) float32)``, best first."""
    from scipy import ndimage

    cfg = (cfg or CFARConfig()).validate()
    return boxes_from_ratio(clutter_ratio(image, cfg), cfg)


def boxes_from_ratio(ratio: np.ndarray, cfg: CFARConfig) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds a :func:`clutter_ratio` map at ``α(cfg.pfa)`` and groups the detections into scored boxes.

    Split from :func:`cfar_detect` so a sweep over ``pfa``/``score``/``merge`` reuses one ratio map per window size.
    """
    from scipy import ndimage

    mask = ratio > threshold_factor(cfg.pfa, cfg.n_training_cells, cfg.looks)
    empty = np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    if not mask.any():
        return empty
    grouped = ndimage.binary_dilation(mask, structure=np.ones((2 * cfg.merge + 1,) * 2, bool)) if cfg.merge else mask
    labels, n = ndimage.label(grouped, structure=np.ones((3, 3), bool))
    labels = np.where(mask, labels, 0)
    index = np.arange(1, n + 1)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    if cfg.score == "peak":
        r = ndimage.maximum(ratio, labels, index)
        scores = 1.0 - 1.0 / np.maximum(r, 1.0 + 1e-9)
    elif cfg.score == "mean":
        r = ndimage.mean(ratio, labels, index)
        scores = 1.0 - 1.0 / np.maximum(r, 1.0 + 1e-9)
    else:
        s = ndimage.sum(ratio - 1.0, labels, index)
        scores = s / (1.0 + s)
    slices = ndimage.find_objects(labels, max_label=n)
    keep = [i for i in range(n) if sizes[i] >= cfg.min_pixels and slices[i] is not None]
    if not keep:
        return empty
    boxes = np.array([[slices[i][1].start, slices[i][0].start, slices[i][1].stop, slices[i][0].stop] for i in keep],
                     np.float32)
    scores = np.asarray(scores, np.float64)[keep].astype(np.float32)
    order = np.argsort(-scores, kind="stable")[: cfg.max_detections]
    return boxes[order], scores[order]


def to_intensity(image, cfg: CFARConfig) -> np.ndarray:
    """A ``(C, H, W)`` or ``(H, W)`` array/tensor in ``cfg.input`` units → a 2-D linear intensity (channel mean)."""
    x = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    x = x.astype(np.float64)
    if x.ndim == 3:
        x = x.mean(axis=0)
    if x.ndim != 2:
        raise ValueError(f"expected an image of shape (C, H, W) or (H, W), got {tuple(x.shape)}")
    if cfg.input == "amplitude":
        return x * x
    if cfg.input == "intensity":
        return x
    db = x * cfg.db_scale
    return 10.0 ** ((db - db.max()) / 10.0)  # the additive dB offset is a scale factor: irrelevant to CFAR


class CFARDetector(nn.Module):
    """CA-CFAR as a torchvision-style detector: ``model(images)`` → ``[{"boxes", "scores", "labels"}]``.

    ``images`` is a list of ``(C, H, W)`` tensors as the detection data loaders give them: by default linear amplitude
    (an 8-bit SAR image / 255, any scale), converted to intensity by squaring the channel mean (``cfg.input``
    selects intensity or dB input instead). It has no parameters and nothing to train: calling it with targets in
    training mode is an error. Outputs are on the images' device.
    """

    def __init__(self, cfg: CFARConfig | None = None):
        super().__init__()
        self.cfg = (cfg or CFARConfig()).validate()

    def forward(self, images, targets=None):
        import torch

        if self.training and targets is not None:
            raise RuntimeError("CFARDetector has no parameters to train; use it in eval() mode for predictions")
        out = []
        for image in images:
            boxes, scores = cfar_detect(to_intensity(image, self.cfg), self.cfg)
            device = image.device if hasattr(image, "device") else None
            out.append({
                "boxes": torch.as_tensor(boxes, dtype=torch.float32, device=device).reshape(-1, 4),
                "scores": torch.as_tensor(scores, dtype=torch.float32, device=device),
                "labels": torch.full((len(scores),), self.cfg.label, dtype=torch.int64, device=device),
            })
        return out

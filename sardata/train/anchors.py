"""Anchor sizes and aspect ratios from a dataset's boxes (the idea of Ultralytics' autoanchor, for torchvision).

torchvision's defaults (32 px at stride 4 for R-CNN, 32 px at stride 8 for RetinaNet, SSD's 0.07 of the image) fit
COCO; SAR ships are 5–70 px (SSDD median ≈ 14 px), so most ground truth would have no anchor to match. The rule
(:func:`derive_anchors`):

- **sizes**: k-means (k = number of pyramid levels) of the boxes' scale ``sqrt(w·h)`` in log space; the smallest
  centre (never below twice the finest level's stride — an anchor must span ≥ 2 cells to be matched from
  neighbouring positions —, never above 64 px) becomes the finest level's anchor, and each
  coarser level doubles it, as the strides double. torchvision's RPN/RetinaNet heads share one convolution across
  levels, so every level must carry the same number of anchors: a doubling ladder keeps anchor/stride constant and
  covers ``a0 · 2^(L-1)``, which is checked against the data (:func:`anchor_fit`).
- **aspect ratios** (``h / w``, torchvision's convention): the three k-means centres of ``log(h / w)``, so rotated
  and elongated ships (SSDD spans 0.3–3.1) each have a near-shaped anchor.
- **octaves** (RetinaNet): ``(1, 2^(1/3), 2^(2/3))`` per level, as in the RetinaNet paper.
"""

from __future__ import annotations

import math

import numpy as np

MAX_BASE = 64.0
#: Default floor of the finest anchor, in strides of the finest level (:func:`derive_anchors`).
MIN_STRIDES = 2.0


def box_wh(coco: dict) -> np.ndarray:
    """``(N, 2)`` widths and heights of the non-degenerate, finite boxes of a COCO dict."""
    wh = [a["bbox"][2:4] for a in coco.get("annotations", []) if len(a.get("bbox", ())) == 4]
    wh = np.asarray(wh, dtype=np.float64).reshape(-1, 2)
    return wh[np.isfinite(wh).all(axis=1) & (wh > 0.5).all(axis=1)]


def kmeans_1d(values: np.ndarray, k: int, iters: int = 100) -> np.ndarray:
    """Sorted k-means centres of 1-D ``values`` (quantile initialisation: deterministic)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("k-means of an empty set of values")
    k = max(1, min(k, np.unique(values).size))
    centres = np.quantile(values, (np.arange(k) + 0.5) / k)
    for _ in range(iters):
        assign = np.abs(values[:, None] - centres[None, :]).argmin(axis=1)
        new = np.array([values[assign == j].mean() if (assign == j).any() else centres[j] for j in range(k)])
        if np.allclose(new, centres):
            break
        centres = new
    return np.sort(centres)


def derive_anchors(wh: np.ndarray, strides: list[int], n_ratios: int = 3, octaves: int = 1,
                   min_strides: float = MIN_STRIDES) -> dict:
    """Anchor plan for a pyramid with ``strides`` (finest first) from training boxes ``wh``.

    ``min_strides``: the finest anchor is never smaller than this many finest-level strides (default 2).

    Returns:
        ``{"sizes": ((a0, ...), (2·a0, ...), ...), "aspect_ratios": ((r1, r2, r3),) * L, "base": a0,
        "fit": anchor_fit(...)}``: plain tuples, ready for ``AnchorGenerator`` and a checkpoint.
    """
    strides = [int(s) for s in strides]
    if len(wh) == 0:
        raise ValueError("cannot derive anchors: the training split has no boxes")
    scales = np.log(np.sqrt(wh[:, 0] * wh[:, 1]))
    smallest = float(np.exp(kmeans_1d(scales, len(strides))[0]))
    base = float(min(max(smallest, float(min_strides) * strides[0]), MAX_BASE))
    base = round(base, 1)
    ratios = tuple(round(float(r), 2) for r in np.exp(kmeans_1d(np.log(wh[:, 1] / wh[:, 0]), n_ratios)))
    steps = [2 ** (i / octaves) for i in range(octaves)]
    sizes = tuple(tuple(round(base * 2**level * s, 1) for s in steps) for level in range(len(strides)))
    plan = {"sizes": sizes, "aspect_ratios": (ratios,) * len(strides), "base": base}
    plan["fit"] = anchor_fit(wh, sizes, ratios)
    return plan


def anchor_wh(sizes, ratios) -> np.ndarray:
    """Every anchor shape of a plan as ``(M, 2)`` ``(w, h)`` (torchvision: ``h/w = ratio``, area ``size²``)."""
    out = []
    for level in sizes:
        for size in level:
            for ratio in ratios:
                h_ratio = math.sqrt(ratio)
                out.append((size / h_ratio, size * h_ratio))
    return np.asarray(out)


def anchor_fit(wh: np.ndarray, sizes, ratios, iou: float = 0.5) -> float:
    """Fraction of boxes whose best anchor shape (centred on the box) reaches ``iou``: the best possible recall of
    an anchor plan, before stride effects."""
    anchors = anchor_wh(sizes, ratios)
    inter = np.minimum(wh[:, None, 0], anchors[None, :, 0]) * np.minimum(wh[:, None, 1], anchors[None, :, 1])
    union = wh[:, None].prod(-1) + anchors[None].prod(-1) - inter
    return round(float(((inter / union).max(axis=1) >= iou).mean()), 4)

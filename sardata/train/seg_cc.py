"""Auxiliary contrastive clustering of seed 003 for the LANet segmenter: positives, views and the two losses.

The paper trains ``L = L_seg + L_ins + L_clu`` on the pooled encoder output of each 256² tile, with positives built
from image augmentation **and** from the ``K = 3`` nearest neighbours, and a positive is never also a negative.

Readings of the paper written down here:

* **Views.** Each tile of the batch gets one extra augmented view (:func:`augment_view`: flip / 90° rotation, a
  random resized crop of 50–100 % of the side, a gain/offset and a little noise). The first view is the training
  sample itself (already flipped/rotated by the data loader when ``augment`` is on).
* **Neighbours.** The ``K`` nearest neighbours of a tile are the ``K`` most cosine-similar *other tiles of the
  batch* in the (detached) pooled encoder features of the first view. The relation is made symmetric (``j`` is a
  positive of ``i`` when either is among the other's neighbours), so a pair is never a positive for one anchor and a
  negative for the other.
* **Instance loss** (τ = 0.5): for anchor ``r`` (one of the ``2N`` view rows) with positive set ``P(r)`` (its other
  view, and both views of its neighbours) and negative set ``N(r)`` = every other row not in ``P(r)``::

      L_ins = mean_r mean_{p ∈ P(r)} −log( e^{s_rp/τ} / (e^{s_rp/τ} + Σ_{n ∈ N(r)} e^{s_rn/τ}) )

  with ``s`` the cosine similarity. Each positive competes only with the negatives, so the loss can reach 0 (the
  earlier form, plain NT-Xent against ``z[nn]``, kept the positive and the anchor's own copy among the negatives:
  the pull saturated at p = ½ and the loss could not go below log 3). With no neighbours (``K = 0``) this is exactly
  SimCLR's NT-Xent (:func:`sardata.embed.contrastive.nt_xent`).
* **Cluster loss** (τ = 1.0, ``M`` = 10 clusters): Li et al.'s cluster-level contrast between the columns of the
  soft assignments, for each positive "view" ``V`` of the batch (the augmented view, and the assignment of each
  tile's ``j``-th neighbour) against the first view, minus the entropy of the cluster marginals::

      L_clu = mean_V NT-Xent(columns of p_a, columns of p_V; τ_c) − [H(p_a) + H(p_b)]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sardata.embed.contrastive import cluster_entropy, nt_xent


def knn_indices(features: torch.Tensor, k: int) -> torch.Tensor:
    """``(N, k')`` indices of each row's nearest other rows by cosine similarity (``k' = min(k, N − 1)``)."""
    z = F.normalize(features.detach(), dim=1)
    sim = z @ z.T
    sim.fill_diagonal_(float("-inf"))
    return sim.topk(max(0, min(k, features.shape[0] - 1)), dim=1).indices


def positive_mask(neighbours: torch.Tensor, n: int, views: int = 2) -> torch.Tensor:
    """``(views·N, views·N)`` bool: row ``r`` (tile ``r mod N``) and row ``s`` are positives when they are views of the
    same tile or of neighbouring tiles (symmetrised); the diagonal (the anchor itself) is False."""
    tiles = torch.eye(n, dtype=torch.bool, device=neighbours.device)
    if neighbours.numel():
        rows = torch.arange(n, device=neighbours.device)[:, None].expand_as(neighbours)
        tiles[rows.reshape(-1), neighbours.reshape(-1)] = True
    tiles = tiles | tiles.T
    mask = tiles.repeat(views, views)
    mask.fill_diagonal_(False)
    return mask


def multi_positive_nt_xent(z: torch.Tensor, positives: torch.Tensor, tau: float) -> torch.Tensor:
    """NT-Xent with several positives per anchor, none of which is among its negatives (module docstring).

    Args:
        z: ``(R, D)`` embeddings (L2-normalised here).
        positives: ``(R, R)`` bool, ``positives[r, s]`` when ``s`` is a positive of anchor ``r`` (diagonal ignored).
        tau: temperature.
    """
    if z.ndim != 2 or positives.shape != (z.shape[0], z.shape[0]):
        raise ValueError(f"expected z (R, D) and positives (R, R), got {tuple(z.shape)}, {tuple(positives.shape)}")
    z = F.normalize(z, dim=1)
    sim = z @ z.T / tau
    eye = torch.eye(len(z), dtype=torch.bool, device=z.device)
    positives = positives & ~eye
    negatives = ~positives & ~eye
    negative_lse = torch.logsumexp(sim.masked_fill(~negatives, float("-inf")), dim=1, keepdim=True)
    pair_loss = torch.logaddexp(sim, negative_lse.expand_as(sim)) - sim  # −log(e^s / (e^s + Σ_neg e^s_n))
    counts = positives.sum(dim=1)
    per_anchor = (pair_loss * positives).sum(dim=1) / counts.clamp_min(1)
    has = counts > 0
    return per_anchor[has].mean() if has.any() else z.sum() * 0.0


def cluster_level_loss(p_a: torch.Tensor, p_b: torch.Tensor, neighbours: torch.Tensor,
                       tau: float = 1.0) -> torch.Tensor:
    """``L_clu`` (module docstring): column NT-Xent against the augmented view and each neighbour's assignment,
    averaged, minus ``H(p_a) + H(p_b)``."""
    others = [p_b] + [p_a[neighbours[:, j]] for j in range(neighbours.shape[1])]
    contrast = torch.stack([nt_xent(p_a.T, v.T, tau) for v in others]).mean()
    return contrast - (cluster_entropy(p_a) + cluster_entropy(p_b))


def contrastive_clustering_loss(view_a: dict[str, torch.Tensor], view_b: dict[str, torch.Tensor], knn: int = 3,
                                instance_tau: float = 0.5, cluster_tau: float = 1.0
                                ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(L_ins, L_clu)`` of a batch from the heads' outputs (``features``, ``instance``, ``cluster``) of two views.

    Zeros for a batch of one tile (nothing to contrast).
    """
    z_a, z_b, p_a, p_b = view_a["instance"], view_b["instance"], view_a["cluster"], view_b["cluster"]
    n = z_a.shape[0]
    if n < 2:
        zero = (z_a.sum() + z_b.sum()) * 0.0
        return zero, zero
    neighbours = knn_indices(view_a["features"], knn)
    instance = multi_positive_nt_xent(torch.cat([z_a, z_b]), positive_mask(neighbours, n), instance_tau)
    return instance, cluster_level_loss(p_a, p_b, neighbours, cluster_tau)


def augment_view(images: torch.Tensor, generator: torch.Generator | None = None,
                 crop_scale: tuple[float, float] = (0.5, 1.0)) -> torch.Tensor:
    """One random augmented view per image of ``(N, C, H, W)`` pixels in [0, 1] (module docstring)."""
    n, _, height, width = images.shape
    device = images.device

    def uniform(lo: float, hi: float, size=()) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(size, generator=generator)

    views = []
    for image in images:
        side = float(uniform(*crop_scale)) ** 0.5
        h, w = max(2, round(height * side)), max(2, round(width * side))
        y = int(torch.randint(0, height - h + 1, (), generator=generator))
        x = int(torch.randint(0, width - w + 1, (), generator=generator))
        view = F.interpolate(image[None, :, y:y + h, x:x + w], size=(height, width), mode="bilinear",
                             align_corners=False)[0]
        if float(uniform(0, 1)) < 0.5:
            view = view.flip(-1)
        view = view.rot90(int(torch.randint(0, 4, (), generator=generator)), (-2, -1))
        if view.shape[-2:] != (height, width):  # a 90° turn of a non-square tile
            view = F.interpolate(view[None], size=(height, width), mode="bilinear", align_corners=False)[0]
        views.append(view)
    out = torch.stack(views)
    gain = uniform(0.8, 1.2, (n, 1, 1, 1)).to(device)
    offset = uniform(-0.05, 0.05, (n, 1, 1, 1)).to(device)
    noise = 0.02 * torch.randn(out.shape, generator=generator).to(device)
    return (out * gain + offset + noise).clamp(0, 1)

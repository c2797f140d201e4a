"""Scene-run reports: ``report.json``, one review montage per cluster (most typical beside boundary cases), scatter
PNGs, and agreement with known scenes (accuracy, ARI)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from sardata._io import save_figure, write_json

MONTAGE_IMAGES = 8  # per group: typical and boundary
MONTAGE_TILE = 96


def write_report(samples, run, labels: np.ndarray, distances: np.ndarray, per_group: int = MONTAGE_IMAGES) -> dict:
    """Writes ``report.json`` and ``montage_<name>.png`` per cluster to ``run.report_dir``.

    Each montage shows the cluster's ``per_group`` most typical members (nearest its centroid) beside its
    ``per_group`` boundary cases (lowest margin confidence), so a reviewer sees at once what the cluster is and where
    it stops.

    Args:
        samples: the clustered samples, in the order of ``labels``.
        run: the :class:`~sardata.scenes.runs.SceneRun`.
        labels: cluster index per sample.
        distances: ``n × k`` distances to the centroids.
        per_group (8): images per group.

    Returns:
        the report dict.
    """
    from sardata.scenes.cluster import margin_confidence

    ids = samples.values("id")
    paths = samples.values("filepath")
    confidence = margin_confidence(distances)
    out = Path(run.report_dir)
    clusters = {}
    for c, name in enumerate(run.labels):
        members = np.nonzero(labels == c)[0]
        typical = members[np.argsort(distances[members, c], kind="stable")][:per_group]
        boundary = members[np.argsort(confidence[members], kind="stable")][:per_group]
        montage = out / f"montage_{name}.png"
        make_review_montage(
            [(f"most typical {name}", [paths[i] for i in typical], [confidence[i] for i in typical]),
             (f"boundary cases of {name}", [paths[i] for i in boundary], [confidence[i] for i in boundary])],
            montage, title=f"{name} ({len(members)} samples)",
        )
        clusters[name] = {
            "size": int(len(members)),
            "nearest_ids": [ids[i] for i in typical],
            "boundary_ids": [ids[i] for i in boundary],
            "mean_distance": float(distances[members, c].mean()) if len(members) else None,
            "mean_confidence": float(confidence[members].mean()) if len(members) else None,
            "montage": str(montage),
        }
    report = {**run.to_dict(), "clusters": clusters}
    write_json(out / "report.json", report)
    return report


def make_montage(paths, out_path, title: str = "", tile: int = MONTAGE_TILE, columns: int = 4) -> Path:
    """Grid PNG of the images at ``paths`` (unreadable images become grey tiles, with a warning)."""
    return make_review_montage([("", list(paths), None)], out_path, title=title, tile=tile, columns=columns)


def make_review_montage(groups, out_path, title: str = "", tile: int = MONTAGE_TILE, columns: int = 4) -> Path:
    """PNG of image groups side by side: ``groups`` is a list of ``(caption, paths, confidences | None)``; each
    group is a ``columns``-wide grid under its caption, tiles captioned with their confidence when given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(1, max(math.ceil(max(1, len(p)) / columns) for _, p, _ in groups))
    ncols = len(groups) * columns + (len(groups) - 1)  # one blank column between groups
    fig, axes = plt.subplots(rows, ncols, figsize=(ncols * tile / 72, rows * tile / 72 + 0.6), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for g, (caption, paths, confs) in enumerate(groups):
        first = g * (columns + 1)
        if caption:
            axes[0, first].set_title(caption, fontsize=8, loc="left")
        for j, path in enumerate(paths):
            ax = axes[j // columns, first + j % columns]
            ax.imshow(_thumbnail(path, tile), cmap="gray", vmin=0, vmax=255)
            if confs is not None:
                ax.text(2, tile * 0.18, f"{confs[j]:.2f}", color="yellow", fontsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(out_path, fig, dpi=100)
    plt.close(fig)
    return Path(out_path)


def _thumbnail(path, tile: int) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L").resize((tile, tile)))
    except (OSError, ValueError) as e:
        warnings.warn(f"montage: cannot read {path}: {e}")
        return np.full((tile, tile), 128, np.uint8)


# --------------------------------------------------------------------------------------------------- 2-D map


def scatter_png(points: np.ndarray, colors, out_path, title: str = "") -> Path:
    """Scatter PNG of 2-D ``points``, one colour per distinct value of ``colors`` (None: one colour)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    if colors is None:
        ax.scatter(points[:, 0], points[:, 1], s=6)
    else:
        colors = np.asarray([str(c) for c in colors])
        for value in sorted(set(colors)):
            sel = colors == value
            ax.scatter(points[sel, 0], points[sel, 1], s=6, label=f"{value} ({int(sel.sum())})")
        ax.legend(markerscale=2, fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_figure(out_path, fig, dpi=100)
    plt.close(fig)
    return Path(out_path)


# --------------------------------------------------------------------------------------------------- evaluation


def scene_accuracy(samples, pred_field: str = "scene", true_field: str = "scene_truth") -> dict:
    """Agreement of predicted scenes with known scenes (e.g. synthetic ground truth). Evaluation only: nothing in
    the scene policy reads it.

    Both fields may hold strings or labels with a ``label``. Samples missing either value are ignored.

    Returns:
        ``accuracy`` (names compared as they are), ``matched_accuracy`` (best one-to-one mapping of predicted
        clusters to true names, Hungarian; useful for ``scene_i`` names), ``ari`` (adjusted Rand index),
        ``num_samples`` and ``confusion`` (``{true: {pred: count}}``).
    """
    from scipy.optimize import linear_sum_assignment
    from sklearn.metrics import adjusted_rand_score

    pred = [getattr(v, "label", v) for v in samples.values(pred_field)]
    true = [getattr(v, "label", v) for v in samples.values(true_field)]
    pairs = [(t, p) for t, p in zip(true, pred) if t is not None and p is not None]
    if not pairs:
        raise ValueError(f"no sample has both {pred_field!r} and {true_field!r}")
    true_names = sorted({t for t, _ in pairs})
    pred_names = sorted({p for _, p in pairs})
    counts = np.zeros((len(true_names), len(pred_names)), dtype=np.int64)
    for t, p in pairs:
        counts[true_names.index(t), pred_names.index(p)] += 1
    rows, cols = linear_sum_assignment(-counts)
    return {
        "accuracy": float(np.mean([t == p for t, p in pairs])),
        "matched_accuracy": float(counts[rows, cols].sum() / len(pairs)),
        "ari": float(adjusted_rand_score([t for t, _ in pairs], [p for _, p in pairs])),
        "num_samples": len(pairs),
        "confusion": {t: {p: int(counts[i, j]) for j, p in enumerate(pred_names)} for i, t in enumerate(true_names)},
    }

"""Near-duplicate pairs by embedding (FAISS range search) and exact duplicates by file content (sha256).

The merge view (``sardata.views.merge``) imports :func:`find_near_duplicates` and :func:`exact_duplicates`.
"""

from __future__ import annotations

import hashlib
import warnings
from collections import defaultdict

import numpy as np

from sardata.index import build

_CHUNK = 1 << 20


def find_near_duplicates(
    embeddings: np.ndarray,
    threshold: float = 0.95,
    metric: str = "cosine",
    kind: str = "flat",
    batch_size: int = 4096,
) -> list[tuple[int, int, float]]:
    """Pairs of rows whose similarity reaches ``threshold``, found with one FAISS range search per batch.

    Args:
        embeddings: ``n × dim`` array.
        threshold (0.95): for ``cosine``, the minimum cosine similarity; for ``euclidean``, the maximum distance.
        metric ("cosine"): ``cosine`` or ``euclidean``.
        kind ("flat"): index kind (``flat`` is exact; ``auto`` switches to IVF from ``FLAT_MAX`` vectors, which may
            miss pairs whose vectors fall into lists that are not probed).
        batch_size (4096): query rows per range search (bounds the result memory).

    Returns:
        ``(i, j, value)`` with ``i < j``, sorted by ``(i, j)``; ``value`` is the cosine similarity, or the Euclidean
        distance for ``euclidean``.
    """
    build.check_metric(metric)
    x = build.prepare(embeddings, metric)
    n = len(x)
    if n < 2:
        return []
    kind = build.choose_kind(n, kind)
    index = build.make_index(x.shape[1], n, metric=metric, kind="ivf" if kind == "auto" else kind)
    build.train_index(index, x)
    index.add_with_ids(x, np.arange(n, dtype=np.int64))
    # FAISS keeps IP > radius and squared L2 < radius; nudge so that equality counts as a duplicate
    radius = threshold - 1e-6 if metric == "cosine" else threshold * threshold + 1e-6
    pairs = []
    for start in range(0, n, batch_size):
        lims, scores, ids = index.range_search(x[start : start + batch_size], radius)
        for row in range(len(lims) - 1):
            i = start + row
            lo, hi = lims[row], lims[row + 1]
            for j, score in zip(ids[lo:hi], scores[lo:hi]):
                if j > i:
                    value = float(score) if metric == "cosine" else float(np.sqrt(max(score, 0.0)))
                    pairs.append((i, int(j), value))
    pairs.sort()
    return pairs


def file_sha256(path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def exact_duplicates(paths) -> list[list[int]]:
    """Groups of indices into ``paths`` whose files have identical content (sha256).

    Unreadable files are skipped with a warning naming the file and the reason.

    Returns:
        groups of ≥ 2 indices, each ascending, ordered by their first index.
    """
    groups = defaultdict(list)
    for i, path in enumerate(paths):
        try:
            groups[file_sha256(path)].append(i)
        except OSError as e:
            warnings.warn(f"skipping {path}: {e.strerror or e}")
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])

"""FAISS index factory: exact for small collections, inverted-file (IVF / IVF-PQ) for large ones, GPU when present.

Every index returned here accepts ``add_with_ids`` / ``remove_ids`` / ``reconstruct(id)`` with caller-chosen int64
ids, so the similarity backend can keep FiftyOne sample ids in sync without renumbering:

- ``flat``: ``IndexIDMap2(IndexFlatIP | IndexFlatL2)`` (exact; IndexFlat cannot hold ids itself).
- ``ivf``: ``IndexIVFFlat`` with a hash-table direct map (IVF stores ids natively; wrapping an IVF in an IndexIDMap
  would break ``remove_ids``, which does not compact IVF lists the way it compacts a flat array).
- ``ivfpq``: ``IndexIVFPQ``, ``m`` = dim/8 sub-quantizers of 8 bits (32 bytes per 256-d vector instead of 1 KiB).

``kind="auto"`` picks ``flat`` below :data:`FLAT_MAX` vectors, ``ivfpq`` from :data:`IVFPQ_MIN`, ``ivf`` between.
Metric ``cosine`` means inner product on L2-normalised vectors (the caller normalises; see :func:`prepare`).
"""

from __future__ import annotations

import math

import numpy as np

from sardata.runtime import faiss_use_gpu

#: Below this many vectors an exact flat index is fast enough (10k×10k×512 k=10 in ~0.6 s on 2 cores).
FLAT_MAX = 50_000
#: From this many vectors the IVF lists are product-quantised to bound memory.
IVFPQ_MIN = 1_000_000
#: IVF k-means is trained on at most this many points per list (faiss warns below 39; its own cap is 256, which
#: makes training on 10⁶ vectors take many minutes on a laptop CPU for little recall gain).
TRAIN_POINTS_PER_LIST = 64
METRICS = ("cosine", "euclidean")
KINDS = ("auto", "flat", "ivf", "ivfpq")


def _faiss():
    import faiss  # imported lazily: `import sardata.index` must stay cheap

    return faiss


def check_metric(metric: str) -> str:
    """Returns ``metric`` if supported, else raises ``ValueError`` naming the allowed values."""
    if metric not in METRICS:
        raise ValueError(f"unsupported metric {metric!r}; allowed: {METRICS}")
    return metric


def choose_kind(n: int, kind: str = "auto", flat_max: int = FLAT_MAX, ivfpq_min: int = IVFPQ_MIN) -> str:
    """Resolves ``kind="auto"`` from the number of vectors ``n``; other kinds are validated and returned."""
    if kind not in KINDS:
        raise ValueError(f"unsupported index kind {kind!r}; allowed: {KINDS}")
    if kind != "auto":
        return kind
    if n < flat_max:
        return "flat"
    return "ivfpq" if n >= ivfpq_min else "ivf"


def num_lists(n: int) -> int:
    """IVF list count: ~2·sqrt(n) (faiss suggests 1–16·sqrt(n); fewer lists train faster), at least 1, and at most
    n/39 so that k-means has data for every list."""
    return int(max(1, min(round(2 * math.sqrt(max(n, 1))), n // 39 if n >= 39 else 1)))


def default_nprobe(nlist: int) -> int:
    """Lists visited per query: 1/16 of the lists, at least 8 (recall@10 ≳ 0.9 on clustered data), at most nlist."""
    return int(min(nlist, max(8, nlist // 16)))


def pq_subquantizers(dim: int) -> int:
    """Largest m in (64, 32, 16, 8, 4, 2, 1) dividing ``dim`` with ≥ 8 dims per sub-vector (256-d → 32 bytes).

    Each sub-quantizer is its own 256-centroid k-means, so m drives training time; 8-d sub-vectors are faiss's
    usual trade-off ("IVF…,PQ32" for 256-d)."""
    for m in (64, 32, 16, 8, 4, 2, 1):
        if dim % m == 0 and dim // m >= 8:
            return m
    return 1


def make_index(
    dim: int,
    n: int,
    metric: str = "cosine",
    kind: str = "auto",
    gpu: bool | str = "auto",
    flat_max: int = FLAT_MAX,
    ivfpq_min: int = IVFPQ_MIN,
):
    """Creates an empty (untrained for IVF kinds) FAISS index for ``n`` vectors of ``dim`` dimensions.

    Args:
        dim: vector dimension.
        n: expected number of vectors (drives ``kind="auto"`` and the IVF list count).
        metric ("cosine"): ``cosine`` (inner product; normalise vectors with :func:`prepare`) or ``euclidean``.
        kind ("auto"): ``auto``, ``flat``, ``ivf`` or ``ivfpq``.
        gpu ("auto"): move the index to all GPUs when faiss sees one; ``False`` forces CPU.
        flat_max (FLAT_MAX): ``auto`` uses a flat index below this many vectors.
        ivfpq_min (IVFPQ_MIN): ``auto`` uses IVF-PQ from this many vectors.

    Returns:
        a FAISS index accepting ``add_with_ids``; IVF kinds need :func:`train_index` before adding.
    """
    faiss = _faiss()
    check_metric(metric)
    kind = choose_kind(n, kind, flat_max=flat_max, ivfpq_min=ivfpq_min)
    faiss_metric = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
    flat_cls = faiss.IndexFlatIP if metric == "cosine" else faiss.IndexFlatL2
    if kind == "flat":
        index = faiss.IndexIDMap2(flat_cls(dim))
    else:
        nlist = num_lists(n)
        quantizer = flat_cls(dim)
        if kind == "ivf":
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss_metric)
        else:
            index = faiss.IndexIVFPQ(quantizer, dim, nlist, pq_subquantizers(dim), _pq_bits(n), faiss_metric)
            # polysemous training (on by default) anneals the code order for Hamming pre-filtering, which sardata
            # does not use; with 32-64 sub-quantizers it dominates training time (minutes for 30k vectors)
            index.do_polysemous_training = False
        index.nprobe = default_nprobe(nlist)
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct(id) and remove_ids with any int64 ids
        index.cp.seed = 0
    if faiss_use_gpu(gpu):
        index = to_gpu(index)
    return index


def to_gpu(index):
    """Clone of ``index`` on all GPUs for searching; the CPU index if the clone fails (e.g. unsupported kind).

    GPU IVF indexes keep no direct map (no ``reconstruct``/hash-table ``remove_ids``), so the similarity backend
    keeps the CPU index as the master copy and searches a GPU clone rebuilt after each change.
    """
    faiss = _faiss()
    try:
        return faiss.index_cpu_to_all_gpus(index)
    except Exception as e:  # noqa: BLE001 — any faiss error means "stay on CPU"
        import warnings

        warnings.warn(f"could not move the FAISS index to GPU ({e}); searching on CPU")
        return index


def _pq_bits(n: int) -> int:
    # each sub-quantizer has 2**bits centroids; faiss wants >= 39 training points per centroid
    return int(max(1, min(8, math.floor(math.log2(max(n / 39, 2))))))


def prepare(vectors, metric: str) -> np.ndarray:
    """float32 C-contiguous copy of ``vectors`` (2-D), L2-normalised when ``metric == "cosine"``."""
    faiss = _faiss()
    x = np.array(vectors, dtype=np.float32, copy=True, order="C")
    if x.ndim == 1:
        x = x[np.newaxis, :]
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {x.shape}")
    if metric == "cosine":
        faiss.normalize_L2(x)
    return x


def train_index(index, vectors: np.ndarray, max_points: int | None = None, seed: int = 0) -> None:
    """Trains an IVF index on (a seeded random subset of) ``vectors``; a no-op for flat or trained indexes.

    ``max_points`` defaults to :data:`TRAIN_POINTS_PER_LIST` × nlist (plus PQ's needs), enough for stable lists.
    """
    if index.is_trained:
        return
    faiss = _faiss()
    ivf = faiss.extract_index_ivf(index)
    if max_points is None:
        max_points = max(TRAIN_POINTS_PER_LIST * ivf.nlist, 256 * 64)
    if len(vectors) > max_points:
        rng = np.random.default_rng(seed)
        vectors = vectors[np.sort(rng.choice(len(vectors), max_points, replace=False))]
    index.train(np.ascontiguousarray(vectors, dtype=np.float32))


def build_index(vectors, ids=None, metric: str = "cosine", kind: str = "auto", gpu: bool | str = "auto", **kwargs):
    """Creates, trains and fills an index from raw ``vectors`` (normalised here for cosine).

    Args:
        vectors: ``n × dim`` array.
        ids (None): int64 ids (default ``0..n-1``).
        metric, kind, gpu: see :func:`make_index`; ``**kwargs`` go to it too (``flat_max``, ``ivfpq_min``).

    Returns:
        the filled index.
    """
    x = prepare(vectors, metric)
    n, dim = x.shape
    ids = np.arange(n, dtype=np.int64) if ids is None else np.ascontiguousarray(ids, dtype=np.int64)
    index = make_index(dim, n, metric=metric, kind=kind, gpu=gpu, **kwargs)
    train_index(index, x)
    index.add_with_ids(x, ids)
    return index


def index_kind(index) -> str:
    """``flat``, ``ivf`` or ``ivfpq`` for an index made by :func:`make_index` (CPU or GPU)."""
    faiss = _faiss()
    cpu = to_cpu(index)
    if isinstance(cpu, faiss.IndexIDMap):
        return "flat"
    ivf = faiss.downcast_index(faiss.extract_index_ivf(cpu))
    return "ivfpq" if isinstance(ivf, faiss.IndexIVFPQ) else "ivf"


def set_nprobe(index, nprobe: int) -> None:
    """Sets ``nprobe`` on an IVF index (CPU or GPU); ignored for flat indexes."""
    faiss = _faiss()
    try:
        faiss.extract_index_ivf(index).nprobe = int(nprobe)
    except (RuntimeError, AttributeError):
        try:
            faiss.GpuParameterSpace().set_index_parameter(index, "nprobe", int(nprobe))
        except Exception:
            pass


def to_cpu(index):
    """CPU copy of a GPU index (to write it); CPU indexes are returned as they are."""
    faiss = _faiss()
    if hasattr(faiss, "index_gpu_to_cpu") and "Gpu" in type(index).__name__:
        return faiss.index_gpu_to_cpu(index)
    return index

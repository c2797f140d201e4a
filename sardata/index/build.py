"""FAISS index factory: exact, graph (HNSW) and inverted-file (IVF / IVF-PQ + refine) indexes, GPU when present.

Every index returned here accepts ``add_with_ids`` with caller-chosen int64 ids, ``reconstruct_batch(ids)`` and
removal through :func:`remove_ids`, so the similarity backend keeps FiftyOne sample ids in sync without renumbering:

- ``flat``: ``IndexIDMap2(IndexFlatIP | IndexFlatL2)`` (exact; IndexFlat cannot hold ids itself).
- ``hnsw``: ``IndexIDMap2(IndexHNSWFlat)`` with ``M`` = :data:`HNSW_M`. FAISS's HNSW **cannot remove**;
  :func:`remove_ids` rebuilds the graph from the vectors it stores (O(n log n), logged as a warning).
- ``ivf``: ``IndexIVFFlat`` with a hash-table direct map (IVF stores ids natively; wrapping an IVF in an IndexIDMap
  would break ``remove_ids``, which does not compact IVF lists the way it compacts a flat array).
- ``ivfpq``: :class:`~sardata.index.refine.RefinedIVFPQ`, a 32-byte IVF-PQ (256-d) whose candidates are re-ranked
  by exact distance, the vectors read from a memory-mapped file: ~57 MiB in memory for 10⁶ vectors.

Which kind and which search parameters (``nprobe``, ``efSearch``, ``k_factor``) is decided by measuring recall, in
:mod:`sardata.index.tune`; :func:`choose_kind` only validates names. Metric ``cosine`` means inner product on
L2-normalised vectors (the caller normalises; see :func:`prepare`).
"""

from __future__ import annotations

import logging
import math

import numpy as np

from sardata.runtime import faiss_use_gpu

logger = logging.getLogger(__name__)

#: Below this many vectors ``auto`` uses an exact flat index (10k×10k×512 k=10 in ~0.6 s on 2 cores).
FLAT_MAX = 50_000
#: ``auto`` switches to IVF-PQ + refine when the float32 vectors of a float index would exceed this many MiB.
MEMORY_MIB = 4096
#: IVF k-means is trained on at most this many points per list (faiss warns below 39; its own cap is 256, which
#: makes training on 10⁶ vectors take many minutes on a laptop CPU for little recall gain).
TRAIN_POINTS_PER_LIST = 64
#: Lloyd iterations of the IVF coarse k-means (faiss's default is 25; lists barely move after 10).
IVF_KMEANS_ITERS = 10
#: HNSW graph degree and construction beam (faiss's defaults for ``HNSW32``).
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 40
#: IVF-PQ + refine: PQ code bytes = dim / this (8-bit sub-quantizers of 8 dims: the usual PQ trade-off).
PQ_DIMS_PER_BYTE = 8
METRICS = ("cosine", "euclidean")
KINDS = ("auto", "flat", "hnsw", "ivf", "ivfpq")


def _faiss():
    import faiss  # imported lazily: `import sardata.index` must stay cheap

    return faiss


def check_metric(metric: str) -> str:
    """Returns ``metric`` if supported, else raises ``ValueError`` naming the allowed values."""
    if metric not in METRICS:
        raise ValueError(f"unsupported metric {metric!r}; allowed: {METRICS}")
    return metric


def choose_kind(n: int, kind: str = "auto", flat_max: int = FLAT_MAX, **_) -> str:
    """Validates ``kind``; for ``auto`` returns ``flat`` below ``flat_max`` vectors, else ``auto`` (to be tuned)."""
    if kind not in KINDS:
        raise ValueError(f"unsupported index kind {kind!r}; allowed: {KINDS}")
    if kind == "auto" and 0 < n < flat_max:
        return "flat"
    return kind


def num_lists(n: int) -> int:
    """IVF list count: ~2·sqrt(n) (faiss suggests 1–16·sqrt(n); fewer lists train faster), at least 1, and at most
    n/39 so that k-means has data for every list."""
    return int(max(1, min(round(2 * math.sqrt(max(n, 1))), n // 39 if n >= 39 else 1)))


def default_nprobe(nlist: int) -> int:
    """Lists visited per query before tuning: 1/16 of the lists, at least 8, at most nlist."""
    return int(min(nlist, max(8, nlist // 16)))


def _divisor_at_most(dim: int, m: int) -> int:
    """Largest divisor of ``dim`` that is ≤ ``m`` (at least 1)."""
    m = max(1, min(dim, int(m)))
    while dim % m:
        m -= 1
    return m


def pq_subquantizers(dim: int, dims_per_byte: int = PQ_DIMS_PER_BYTE) -> int:
    """Sub-quantizers of an 8-bit PQ with ~``dims_per_byte`` dims each, dividing ``dim`` (256-d, 8 → 32 bytes)."""
    return _divisor_at_most(dim, max(1, dim // dims_per_byte))


def make_index(
    dim: int,
    n: int,
    metric: str = "cosine",
    kind: str = "flat",
    gpu: bool | str = "auto",
    flat_max: int = FLAT_MAX,
    **_,
):
    """Creates an empty (untrained for IVF kinds) index for ``n`` vectors of ``dim`` dimensions.

    Args:
        dim: vector dimension.
        n: expected number of vectors (the IVF list count).
        metric ("cosine"): ``cosine`` (inner product; normalise vectors with :func:`prepare`) or ``euclidean``.
        kind ("flat"): ``flat``, ``hnsw``, ``ivf`` or ``ivfpq`` (``auto`` below ``flat_max`` means ``flat``; larger
            ``auto`` indexes are chosen by measuring recall: :func:`sardata.index.tune.build`).
        gpu ("auto"): move a flat or IVF index to all GPUs when faiss sees one; ``False`` forces CPU.
        flat_max (FLAT_MAX): see :func:`choose_kind`.

    Returns:
        an index accepting ``add_with_ids``; IVF kinds need :func:`train_index` before adding.
    """
    faiss = _faiss()
    check_metric(metric)
    kind = choose_kind(n, kind, flat_max=flat_max)
    if kind == "auto":
        raise ValueError("kind='auto' for a large collection is chosen by measuring recall: use tune.build()")
    faiss_metric = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
    flat_cls = faiss.IndexFlatIP if metric == "cosine" else faiss.IndexFlatL2
    if kind == "flat":
        index = faiss.IndexIDMap2(flat_cls(dim))
    elif kind == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dim, HNSW_M, faiss_metric)
        hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index = faiss.IndexIDMap2(hnsw)
    else:
        nlist = num_lists(n)
        quantizer = flat_cls(dim)
        if kind == "ivf":
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss_metric)
            index.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct(id), remove_ids with any int64 ids
        else:
            from sardata.index.refine import RefinedIVFPQ

            coarse = faiss.IndexIVFPQ(quantizer, dim, nlist, pq_subquantizers(dim), _pq_bits(n), faiss_metric)
            # polysemous training (on by default) anneals the code order for Hamming pre-filtering, which sardata
            # does not use; with many sub-quantizers it dominates training time
            coarse.do_polysemous_training = False
            coarse.cp.seed, coarse.cp.niter = 0, IVF_KMEANS_ITERS
            coarse.pq.cp.niter, coarse.pq.cp.max_points_per_centroid = IVF_KMEANS_ITERS, 64
            coarse.nprobe = default_nprobe(nlist)
            return RefinedIVFPQ(coarse)
        index.nprobe = default_nprobe(nlist)
        index.cp.seed, index.cp.niter = 0, IVF_KMEANS_ITERS
    if faiss_use_gpu(gpu):
        index = to_gpu(index)
    return index


def to_gpu(index):
    """Clone of a flat or IVF ``index`` on all GPUs for searching; other kinds (HNSW, IVF-PQ + refine) and failed
    clones stay on CPU.

    GPU IVF indexes keep no direct map (no ``reconstruct``/hash-table ``remove_ids``), so the similarity backend
    keeps the CPU index as the master copy and searches a GPU clone rebuilt after each change.
    """
    faiss = _faiss()
    if index_kind(index) not in ("flat", "ivf"):
        return index
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


def train_index(index, vectors: np.ndarray, max_points: int | None = None, seed: int = 0, exclude=None) -> None:
    """Trains an IVF index on (a seeded random subset of) ``vectors``; a no-op for flat, HNSW or trained indexes.

    ``max_points`` defaults to :data:`TRAIN_POINTS_PER_LIST` × nlist (at least 16384). ``exclude``: row positions
    never used for training (the held-out tuning queries).
    """
    if index.is_trained:
        return
    faiss = _faiss()
    ivf = faiss.extract_index_ivf(index.coarse if hasattr(index, "coarse") else index)
    if max_points is None:
        max_points = max(TRAIN_POINTS_PER_LIST * ivf.nlist, 256 * 64)
    pool = np.arange(len(vectors))
    if exclude is not None and len(exclude):
        pool = np.setdiff1d(pool, np.asarray(exclude))
    if len(pool) > max_points:
        rng = np.random.default_rng(seed)
        pool = np.sort(rng.choice(pool, max_points, replace=False))
    sample = vectors if len(pool) == len(vectors) else vectors[pool]
    index.train(np.ascontiguousarray(sample, dtype=np.float32))


def build_index(vectors, ids=None, metric: str = "cosine", kind: str = "flat", gpu: bool | str = "auto", **kwargs):
    """Creates, trains and fills an index of ``kind`` from raw ``vectors`` (normalised here for cosine).

    For ``kind="auto"`` on a large collection use :func:`sardata.index.tune.build` (measures recall).
    """
    x = prepare(vectors, metric)
    n, dim = x.shape
    ids = np.arange(n, dtype=np.int64) if ids is None else np.ascontiguousarray(ids, dtype=np.int64)
    index = make_index(dim, n, metric=metric, kind=kind, gpu=gpu, **kwargs)
    train_index(index, x)
    index.add_with_ids(x, ids)
    return index


def index_kind(index) -> str:
    """``flat``, ``hnsw``, ``ivf`` or ``ivfpq`` for an index made by :func:`make_index` (CPU or GPU)."""
    faiss = _faiss()
    if getattr(index, "kind", None) == "ivfpq":
        return "ivfpq"
    cpu = index if "Gpu" not in type(index).__name__ else to_cpu(index)
    if isinstance(cpu, faiss.IndexIDMap):
        sub = faiss.downcast_index(cpu.index)
        return "hnsw" if isinstance(sub, faiss.IndexHNSW) else "flat"
    ivf = faiss.downcast_index(faiss.extract_index_ivf(cpu))
    return "ivfpq" if isinstance(ivf, faiss.IndexIVFPQ) else "ivf"


def search_params(index) -> dict:
    """The search parameters in force: ``{"nprobe": …}``, ``{"ef_search": …}``, ``{"nprobe", "k_factor"}`` or {}."""
    faiss = _faiss()
    kind = index_kind(index)
    if kind == "hnsw":
        return {"ef_search": int(faiss.downcast_index(index.index).hnsw.efSearch)}
    if kind == "ivf":
        return {"nprobe": int(faiss.extract_index_ivf(index).nprobe)}
    if kind == "ivfpq":
        return {"nprobe": index.nprobe, "k_factor": index.k_factor}
    return {}


def set_search_params(index, nprobe=None, ef_search=None, k_factor=None) -> None:
    """Sets whichever of ``nprobe`` (IVF kinds), ``ef_search`` (HNSW), ``k_factor`` (IVF-PQ + refine) apply."""
    faiss = _faiss()
    kind = index_kind(index)
    if kind == "hnsw" and ef_search is not None:
        faiss.downcast_index(index.index).hnsw.efSearch = int(ef_search)
    elif kind == "ivfpq":
        if nprobe is not None:
            index.nprobe = int(nprobe)
        if k_factor is not None:
            index.k_factor = int(k_factor)
    elif kind == "ivf" and nprobe is not None:
        set_nprobe(index, nprobe)


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


def remove_ids(index, ids):
    """Removes ``ids`` from ``index``; returns the index to keep using (a new one for HNSW).

    FAISS's HNSW cannot delete graph nodes, so an HNSW index is **rebuilt** from the vectors it stores, with the same
    ``M``, ``efConstruction`` and ``efSearch`` (O(n log n): minutes at 10⁶; a warning says so).
    """
    faiss = _faiss()
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    kind = index_kind(index)
    if kind == "ivfpq":
        index.remove_ids(ids)
        return index
    if kind != "hnsw":
        index.remove_ids(faiss.IDSelectorArray(ids))
        return index
    all_ids = faiss.vector_to_array(index.id_map).astype(np.int64)
    keep = all_ids[~np.isin(all_ids, ids)]
    logger.warning("FAISS HNSW cannot remove vectors: rebuilding the graph from its %d remaining vectors", len(keep))
    old = faiss.downcast_index(index.index)
    vectors = index.reconstruct_batch(keep) if len(keep) else np.empty((0, index.d), dtype=np.float32)
    metric = "cosine" if old.metric_type == faiss.METRIC_INNER_PRODUCT else "euclidean"
    new = make_index(index.d, len(keep), metric=metric, kind="hnsw", gpu=False)
    sub = faiss.downcast_index(new.index)
    sub.hnsw.efConstruction = old.hnsw.efConstruction
    sub.hnsw.efSearch = old.hnsw.efSearch
    if len(keep):
        new.add_with_ids(np.ascontiguousarray(vectors), keep)
    return new


def write_index(index, path) -> None:
    """Writes ``index`` to ``path`` atomically (IVF-PQ + refine: also its id map and vector file)."""
    from sardata._io import atomic_path

    if index_kind(index) == "ivfpq":
        index.write(path)
        return
    faiss = _faiss()
    with atomic_path(path) as tmp:
        faiss.write_index(to_cpu(index), str(tmp))


def read_index(path):
    """Reads an index written by :func:`write_index`."""
    from sardata.index.refine import RefinedIVFPQ, is_refined_file

    if is_refined_file(path):
        return RefinedIVFPQ.read(path)
    return _faiss().read_index(str(path))


def index_nbytes(index) -> int:
    """Bytes of ``index`` as written; for IVF-PQ + refine, what it keeps in memory (not its vector file)."""
    if index_kind(index) == "ivfpq":
        return index.nbytes()
    return int(_faiss().serialize_index(to_cpu(index)).nbytes)


def to_cpu(index):
    """CPU copy of a GPU index (to write it); CPU indexes are returned as they are."""
    faiss = _faiss()
    if hasattr(faiss, "index_gpu_to_cpu") and "Gpu" in type(index).__name__:
        return faiss.index_gpu_to_cpu(index)
    return index

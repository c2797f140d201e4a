"""Index kind and search parameters chosen from a recall target, measured on held-out queries at build time.

:func:`build` fills an index and returns it with a ``tuning`` record (stored with the brain run). How recall is
measured: ``queries`` rows of the data are drawn at random (seeded) and kept out of the IVF training sample; their
exact top-``k`` neighbours are found by brute force (``faiss.knn``) over all vectors, the query itself excluded;
recall@k is the mean fraction of those found by the index (searched for ``k + 1``, the query itself dropped). The
queries are data rows because that is how the App asks ("sort by similarity" to a sample).

``kind="auto"`` (in this order; the first kind that reaches the target wins):

1. ``flat`` below ``flat_max`` vectors (exact; recall 1 by construction, not measured);
2. ``ivfpq`` (IVF-PQ + refine) when float32 vectors would exceed ``memory_mib``; its ``nprobe`` and ``k_factor``
   are the cheapest reaching the target (or, if none does, the best measured, with a warning);
3. ``ivf`` with the smallest ``nprobe`` (powers of 2 up to nlist/4) reaching the target — preferred because it
   removes vectors in place and builds fastest;
4. ``hnsw`` with the smallest ``efSearch`` (16 … 1024) reaching the target (HNSW rebuilds to remove);
5. ``flat`` (exact) if neither does.

An explicit ``kind`` is tuned the same way unless its parameters are given (``nprobe``, ``ef_search``,
``k_factor``); then they are used and their recall is still measured.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from sardata.index import build as factory

logger = logging.getLogger(__name__)

#: Default recall@k target of ``auto``.
RECALL_TARGET = 0.95
#: Held-out queries used to measure recall.
TUNE_QUERIES = 200
#: Neighbours per query for the recall measure.
TUNE_K = 10
NPROBE_FRACTION_MAX = 4  # ivf is accepted only with nprobe ≤ nlist / this
EF_SEARCHES = (16, 32, 64, 128, 256, 512, 1024)
K_FACTORS = (4, 8, 16, 32)


def _faiss():
    import faiss

    return faiss


def held_out(n: int, num: int = TUNE_QUERIES, seed: int = 0) -> np.ndarray:
    """Sorted positions of ``min(num, n // 4)`` (at least 1) seeded random rows used as tuning queries (the other
    rows stay for training)."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, max(1, min(int(num), n // 4)), replace=False))


def exact_neighbours(x: np.ndarray, positions: np.ndarray, k: int, metric: str) -> np.ndarray:
    """Exact top-``k`` row positions for the rows ``positions`` of ``x``, each query's own row excluded."""
    faiss = _faiss()
    fm = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
    q = np.ascontiguousarray(x[positions])
    _, nn = faiss.knn(q, x, min(k + 1, len(x)), metric=fm)
    return _drop_self(nn, positions, k)


def _drop_self(found: np.ndarray, self_ids: np.ndarray, k: int) -> np.ndarray:
    out = np.full((len(found), k), -1, dtype=np.int64)
    for row, (ids, me) in enumerate(zip(found, self_ids)):
        ids = ids[(ids != me) & (ids >= 0)][:k]
        out[row, :len(ids)] = ids
    return out


def measure_recall(index, x: np.ndarray, ids: np.ndarray, positions: np.ndarray, truth: np.ndarray,
                   k: int = TUNE_K) -> float:
    """recall@k of ``index`` (holding ``x`` under ``ids``) for the queries ``x[positions]`` against ``truth``
    (positions from :func:`exact_neighbours`)."""
    _, found = index.search(np.ascontiguousarray(x[positions]), k + 1)
    found = _drop_self(found, ids[positions], k)
    want = ids[truth]
    hits = [len(set(f[f >= 0]) & set(w[w >= 0])) / max(1, int((w >= 0).sum())) for f, w in zip(found, want)]
    return float(np.mean(hits))


def _fill(kind, x, ids, metric, exclude, seed):
    index = factory.make_index(x.shape[1], len(x), metric=metric, kind=kind, gpu=False, flat_max=0)
    factory.train_index(index, x, seed=seed, exclude=exclude)
    index.add_with_ids(x, ids)
    return index


def _sweep(index, values, setter, recall_of, target):
    """Tries ``values`` in order; returns (value, recall, tried) for the first reaching ``target``, else the best."""
    tried, best = [], None
    for v in values:
        setter(v)
        r = recall_of()
        tried.append((v, round(r, 4)))
        if best is None or r > best[1]:
            best = (v, r)
        if r >= target:
            return v, r, tried, True
    setter(best[0])
    return best[0], best[1], tried, False


def _tune_kind(kind, index, x, ids, pos, truth, target, k, given):
    """Sets the cheapest search parameters of ``index`` reaching ``target``; returns (params, recall, reached)."""
    recall_of = lambda: measure_recall(index, x, ids, pos, truth, k)  # noqa: E731
    if kind == "flat":
        return {}, recall_of(), True
    if kind == "hnsw":
        if given.get("ef_search") is not None:
            factory.set_search_params(index, ef_search=given["ef_search"])
            r = recall_of()
            return factory.search_params(index), r, r >= target
        ef, r, _, ok = _sweep(index, EF_SEARCHES, lambda v: factory.set_search_params(index, ef_search=v), recall_of,
                              target)
        return {"ef_search": ef}, r, ok
    nlist = _faiss().extract_index_ivf(index.coarse if kind == "ivfpq" else index).nlist
    probes = [p for p in (2 ** i for i in range(20)) if p <= max(1, nlist // NPROBE_FRACTION_MAX)]
    if given.get("nprobe") is not None:
        probes = [int(given["nprobe"])]
    if kind == "ivf":
        p, r, _, ok = _sweep(index, probes, lambda v: factory.set_search_params(index, nprobe=v), recall_of, target)
        return {"nprobe": p}, r, ok
    factors = [int(given["k_factor"])] if given.get("k_factor") is not None else list(K_FACTORS)
    # the most candidates first, to find the fewest lists; then the fewest candidates at that nprobe
    factory.set_search_params(index, k_factor=factors[-1])
    p, r, _, ok = _sweep(index, probes, lambda v: factory.set_search_params(index, nprobe=v), recall_of, target)
    factory.set_search_params(index, nprobe=p)
    kf, r, _, ok = _sweep(index, factors, lambda v: factory.set_search_params(index, k_factor=v), recall_of,
                          target if ok else 2.0)
    return {"nprobe": p, "k_factor": kf}, r, ok


def build(vectors, ids, metric: str = "cosine", kind: str = "auto", recall_target: float = RECALL_TARGET,
          flat_max: int = factory.FLAT_MAX, memory_mib: float = factory.MEMORY_MIB, queries: int = TUNE_QUERIES,
          k: int = TUNE_K, seed: int = 0, nprobe=None, ef_search=None, k_factor=None):
    """Builds, fills and tunes an index of prepared ``vectors`` (see the module docstring for the policy).

    Args:
        vectors: ``n × dim`` float32, already :func:`~sardata.index.factory.prepare`-d for ``metric``.
        ids: ``n`` int64 ids.
        metric ("cosine"), kind ("auto"): see :func:`sardata.index.factory.make_index`.
        recall_target (0.95): recall@k to reach on the held-out queries.
        flat_max (FLAT_MAX): ``auto`` stays exact below this many vectors.
        memory_mib (MEMORY_MIB): ``auto`` uses IVF-PQ + refine when float32 vectors would be larger.
        queries (200), k (10), seed (0): the recall measure.
        nprobe, ef_search, k_factor (None): fixed search parameters instead of tuned ones.

    Returns:
        ``(index, tuning)``; ``tuning`` is a JSON-able dict: ``kind``, ``params``, ``recall_at_k``, ``k``,
        ``queries``, ``target``, ``reached``, ``tried`` (kinds tried before, with their recall).
    """
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    n, dim = x.shape
    given = {"nprobe": nprobe, "ef_search": ef_search, "k_factor": k_factor}
    kind = factory.choose_kind(n, kind, flat_max=flat_max)
    record = {"target": float(recall_target), "k": int(k), "n": int(n), "tried": []}
    if kind == "flat" or n <= k + 1:
        index = factory.make_index(dim, n, metric=metric, kind="flat", gpu=False)
        index.add_with_ids(x, ids)
        record.update(kind="flat", params={}, recall_at_k=1.0, queries=0, reached=True, measured=False)
        return index, record

    pos = held_out(n, queries, seed)
    truth = exact_neighbours(x, pos, k, metric)
    record.update(queries=int(len(pos)), measured=True)
    if kind == "auto":
        float_mib = n * dim * 4 / 2**20
        candidates = ["ivfpq"] if float_mib > memory_mib else ["ivf", "hnsw"]
    else:
        candidates = [kind]
    index = None
    for cand in candidates:
        index = _fill(cand, x, ids, metric, pos, seed)
        params, recall, reached = _tune_kind(cand, index, x, ids, pos, truth, recall_target, k, given)
        logger.info("index %s %s: recall@%d %.3f on %d held-out queries", cand, params, k, recall, len(pos))
        if reached or kind != "auto" or cand == "ivfpq":  # auto falls through ivf → hnsw → flat
            break
        record["tried"].append({"kind": cand, "params": params, "recall_at_k": round(recall, 4)})
        index = None
    if index is None:  # auto: no approximate kind reached the target
        index = _fill("flat", x, ids, metric, pos, seed)
        cand, params, recall, reached = "flat", {}, 1.0, True
    if not reached:
        warnings.warn(f"index {cand} reaches recall@{k} {recall:.3f} < target {recall_target} on {len(pos)} "
                      f"held-out queries (best parameters {params})")
    record.update(kind=cand, params=params, recall_at_k=round(float(recall), 4), reached=bool(reached))
    return index, record

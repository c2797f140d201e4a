"""Similarity at the App's scale: sardata's FAISS indexes vs scikit-learn on the same vectors, in one run.

Data (:func:`clustered_embeddings`): a Gaussian mixture with intrinsic structure, like image embeddings — ``clusters``
centres in ``dim`` dims, each cluster spread in its own random ``intrinsic``-dimensional subspace, plus small
isotropic noise. Queries are fresh draws from the same mixture (not rows of the index). Recall@10 is measured
against exact search (``faiss.knn``) for every query. Metric: Euclidean everywhere.

1. **kNN**, ``n × dim``, k=10: scikit-learn ``NearestNeighbors(algorithm="brute")``; fiftyone-brain's own
   ``sklearn`` backend (its ``NeighborsHelper``, driven directly: a 10⁶-sample FiftyOne dataset would only time
   MongoDB; it centres the vectors, so its queries are centred too); and sardata's ``auto`` index
   (:func:`sardata.index.tune.build`, target recall 0.95 on its own held-out rows). Batch time for all queries and
   single-query latency (p50/p95, one query per call, as the App asks).
2. **IVF-PQ + refine** (``kind="ivfpq"``, tuned to the same target), written and read back: the bytes it keeps in
   memory (coarse codes and id map), its vector file on disk, recall and latency on the same queries.
3. **k-means k=2** with :func:`sardata.scenes.cluster.cluster_embeddings` (its defaults: 5 restarts × 50
   iterations, k-means++) vs ``sklearn.cluster.KMeans`` (lloyd, same restarts and iterations; it stops early at its
   tolerance, faiss always runs every iteration); then one restart of each.
4. ``--hnsw``: HNSW32 tuned to the target as well (its build takes minutes at 10⁶ on 2 cores).

``python -m benchmarks.index`` prints the 10⁶ × 256 figures (about 2.5 minutes and < 5 GiB on a quiet 2-core machine);
``--n 100000`` for a quick look.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def clustered_embeddings(n: int, dim: int = 256, clusters: int = 1000, intrinsic: int = 16, noise: float = 0.05,
                         seed: int = 0) -> np.ndarray:
    """``n × dim`` float32 Gaussian-mixture vectors with low-dimensional structure (see the module docstring).

    Clusters come in families of 20 (siblings overlap, as related classes do): family centres ``ν ~ N(0, I)``,
    cluster centre ``μ_c = ν_f(c) + 0.5 · N(0, I)``. A point is ``μ_c + 0.7 · z @ B_c + noise · ε`` with
    ``z ~ N(0, I_i · dim/i)``, ``B_c`` a random ``i × dim`` Gaussian basis scaled by 1/sqrt(dim) (``i = intrinsic``) and
    ``ε ~ N(0, I_dim)``; cluster sizes are uniform at random. The same ``seed`` always gives the same vectors.
    """
    rng = np.random.default_rng(seed)
    families = rng.standard_normal((max(1, clusters // 20), dim), dtype=np.float32)
    centres = families[rng.integers(0, len(families), clusters)] + 0.5 * rng.standard_normal((clusters, dim),
                                                                                             dtype=np.float32)
    bases = (rng.standard_normal((clusters, intrinsic, dim)) / np.sqrt(dim)).astype(np.float32)
    x = np.empty((n, dim), dtype=np.float32)
    chunk = 50_000
    for start in range(0, n, chunk):
        crng = np.random.default_rng([seed, start // chunk])
        m = min(chunk, n - start)
        lab = crng.integers(0, clusters, m)
        z = crng.standard_normal((m, intrinsic), dtype=np.float32) * np.float32(np.sqrt(dim / intrinsic))
        x[start:start + m] = centres[lab] + 0.7 * np.einsum("ni,nid->nd", z, bases[lab])
        x[start:start + m] += noise * crng.standard_normal((m, dim), dtype=np.float32)
    return x


def _recall(found, truth, k=10):
    return round(float(np.mean([len(set(a[:k]) & set(b[:k])) / k for a, b in zip(found, truth)])), 4)


def _latency_ms(search, q, limit=1000):
    times = []
    for row in q[:limit]:
        start = time.perf_counter()
        search(row[None, :])
        times.append((time.perf_counter() - start) * 1e3)
    return round(float(np.percentile(times, 50)), 3), round(float(np.percentile(times, 95)), 3)


def _rss_gib():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)


def bench_knn(x, q, truth, k=10, target=0.95, hnsw=False) -> dict:
    from fiftyone.brain.internal.core.sklearn import NeighborsHelper
    from sklearn.neighbors import NearestNeighbors

    from sardata.index import build, tune

    n = len(x)
    ids = np.arange(n, dtype=np.int64)
    out = {}
    nn = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(x)
    found, t = _timed(lambda: nn.kneighbors(q, return_distance=False))
    out.update(sklearn_brute_batch_s=round(t, 3), sklearn_brute_recall=_recall(found, truth))
    out["sklearn_brute_p50_ms"], _ = _latency_ms(lambda v: nn.kneighbors(v, return_distance=False), q, 50)
    del nn

    helper = NeighborsHelper(x.copy(), "euclidean")  # the brain's sklearn backend (centres its copy in place)
    neighbors, _ = helper.get_neighbors(can_use_dists=False)
    qc = q - x.mean(axis=0, keepdims=True)
    found, t = _timed(lambda: neighbors.kneighbors(qc, n_neighbors=k, return_distance=False))
    out.update(brain_sklearn_batch_s=round(t, 3), brain_sklearn_recall=_recall(found, truth))
    out["brain_sklearn_p50_ms"], _ = _latency_ms(
        lambda v: neighbors.kneighbors(v, n_neighbors=k, return_distance=False), qc, 50)
    del helper, neighbors

    kinds = [("auto", "auto")] + ([("hnsw", "hnsw")] if hnsw else [])
    for label, kind in kinds:
        (index, tuning), t_build = _timed(lambda: tune.build(x, ids, metric="euclidean", kind=kind,
                                                             recall_target=target))
        (_, found), t = _timed(lambda: index.search(q, k))
        p50, p95 = _latency_ms(lambda v: index.search(v, k), q)
        out.update({
            f"{label}_kind": tuning["kind"], f"{label}_params": tuning["params"],
            f"{label}_build_s": round(t_build, 1), f"{label}_tuning_recall": tuning["recall_at_k"],
            f"{label}_recall": _recall(found, truth), f"{label}_batch_s": round(t, 4),
            f"{label}_speedup_vs_sklearn_brute": round(out["sklearn_brute_batch_s"] / t, 1),
            f"{label}_speedup_vs_brain_sklearn": round(out["brain_sklearn_batch_s"] / t, 1),
            f"{label}_p50_ms": p50, f"{label}_p95_ms": p95,
            f"{label}_index_mib": round(build.index_nbytes(index) / 2**20, 1),
        })
        del index
    return out


def bench_ivfpq(x, q, truth, k=10, target=0.95) -> dict:
    """Built and tuned in memory, then written and read back: the figures are those of the read index, which keeps
    its coarse codes and id map in memory and reads the candidates' exact vectors from its memory-mapped file
    (warm page cache: the file was just written)."""
    import tempfile

    from sardata.index import build, tune

    ids = np.arange(len(x), dtype=np.int64)
    (index, tuning), t_build = _timed(lambda: tune.build(x, ids, metric="euclidean", kind="ivfpq",
                                                         recall_target=target))
    with tempfile.TemporaryDirectory(prefix="sardata-bench-ivfpq-") as tmp:
        path = f"{tmp}/bench.faiss"
        _, t_write = _timed(lambda: build.write_index(index, path))
        del index
        index = build.read_index(path)
        (_, found), t = _timed(lambda: index.search(q, k))
        coarse = index.coarse
        return {
            "ivfpq_nlist": int(coarse.nlist), "ivfpq_params": tuning["params"],
            "ivfpq_memory_bytes_per_vector": int(coarse.code_size) + 8 + 16,
            "ivfpq_index_mib": round(index.nbytes() / 2**20, 1),
            "ivfpq_vector_file_mib": round(index.vector_file_nbytes() / 2**20, 1),
            "flat_index_mib": round(x.nbytes / 2**20, 1),
            "ivfpq_build_s": round(t_build, 1), "ivfpq_write_s": round(t_write, 1), "ivfpq_batch_s": round(t, 3),
            "ivfpq_tuning_recall": tuning["recall_at_k"], "ivfpq_recall": _recall(found, truth),
            "ivfpq_p50_ms": _latency_ms(lambda v: index.search(v, k), q, 200)[0],
        }


def bench_kmeans(x, k=2, seed=0, n_init=5, niter=50) -> dict:
    from sklearn.cluster import KMeans

    from sardata.scenes.cluster import cluster_embeddings

    (labels, _, _), t_ours = _timed(lambda: cluster_embeddings(x, k, seed=seed, n_init=n_init, niter=niter,
                                                               gpu=False))
    km, t_sk = _timed(lambda: KMeans(k, n_init=n_init, max_iter=niter, algorithm="lloyd", random_state=seed).fit(x))
    agree = float(np.mean(labels == km.labels_))
    _, t_one = _timed(lambda: cluster_embeddings(x, k, seed=seed, n_init=1, niter=niter, gpu=False))
    _, t_sk_one = _timed(lambda: KMeans(k, n_init=1, max_iter=niter, algorithm="lloyd", random_state=seed).fit(x))
    return {"kmeans_k": k, "kmeans_restarts": n_init, "kmeans_iters": niter,
            "kmeans_ours_s": round(t_ours, 2), "kmeans_sklearn_s": round(t_sk, 2),
            "kmeans_speedup": round(t_sk / t_ours, 1), "kmeans_label_agreement": round(max(agree, 1 - agree), 4),
            "kmeans_ours_1restart_s": round(t_one, 2), "kmeans_sklearn_1restart_s": round(t_sk_one, 2)}


def run(n=1_000_000, dim=256, queries=1000, k=10, target=0.95, hnsw=False, kmeans=True, seed=0, intrinsic=16,
        noise=0.05) -> dict:
    """Runs the benchmarks on one set of vectors; returns one flat dict of figures."""
    import faiss

    data, t_data = _timed(lambda: clustered_embeddings(n + queries, dim, intrinsic=intrinsic, noise=noise, seed=seed))
    x, q = data[:n], np.ascontiguousarray(data[n:])
    (_, truth), t_truth = _timed(lambda: faiss.knn(q, x, k))
    results = {"n": n, "dim": dim, "queries": queries, "k": k, "recall_target": target,
               "data": f"gaussian mixture: 1000 clusters in families of 20, {intrinsic}-d intrinsic, noise {noise}",
               "data_s": round(t_data, 1),
               "exact_truth_s": round(t_truth, 1)}
    results.update(bench_knn(x, q, truth, k, target, hnsw=hnsw))
    results.update(bench_ivfpq(x, q, truth, k, target))
    if kmeans:
        results.update(bench_kmeans(x))
    results["peak_rss_gib"] = _rss_gib()
    return results


def main(argv=None) -> None:
    import os

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--target", type=float, default=0.95, help="recall@10 target of the tuned indexes")
    parser.add_argument("--hnsw", action="store_true", help="also build and tune HNSW32 (minutes at 10⁶)")
    parser.add_argument("--no-kmeans", action="store_true")
    parser.add_argument("--intrinsic", type=int, default=16, help="dimension of each cluster's subspace")
    parser.add_argument("--noise", type=float, default=0.05, help="isotropic noise (std per dimension)")
    args = parser.parse_args(argv)
    results = run(args.n, args.dim, args.queries, target=args.target, hnsw=args.hnsw, kmeans=not args.no_kmeans,
                  intrinsic=args.intrinsic, noise=args.noise)
    results["load_average"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

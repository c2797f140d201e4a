"""FAISS vs scikit-learn on the same data in one run, and IVF-PQ memory/recall at scale.

1. kNN, k=10 for ``queries`` queries on ``n × dim`` random embedding-like data (:func:`embedding_like`):
   ``sklearn.neighbors.NearestNeighbors(algorithm="brute")`` vs faiss exact ``IndexFlatL2`` (same results; both are
   one BLAS GEMM, so expect ~1-3×) and vs the index ``sardata.index.build`` picks for ``n`` (IVF at 100k; the
   speed-up the backend actually delivers), with recall@10 against the exact answer.
2. k-means: ``faiss.Kmeans`` on all points (as :func:`sardata.scenes.cluster_embeddings`) vs
   ``sklearn.cluster.KMeans`` (lloyd, n_init=1), same k and iteration count.
3. IVF-PQ (:func:`sardata.index.build.make_index`, kind ``ivfpq``) on ``pq_n × dim`` clustered data: bytes per vector
   vs the flat float32 index, build time, and recall@10 against exact search for ``pq_queries`` queries.

``python -m benchmarks.index [--n 100000] [--dim 256] [--pq-n 1000000] ...``; the defaults fit in a few minutes on
2 cores (``--pq-n 1000000`` needs ~1 GB for the raw vectors).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def embedding_like(n: int, dim: int, intrinsic: int = 32, seed: int = 0) -> np.ndarray:
    """Random vectors with the low intrinsic dimension of real embeddings: a random ``intrinsic``-d Gaussian
    mapped linearly to ``dim`` dims, plus small isotropic noise. (On pure ``dim``-d Gaussian noise all neighbours
    are nearly equidistant and no approximate index can beat brute force; the exact timings do not depend on it.)
    """
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((intrinsic, dim), dtype=np.float32) / np.sqrt(intrinsic)
    x = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        x[start:start + m] = rng.standard_normal((m, intrinsic), dtype=np.float32) @ basis
        x[start:start + m] += 0.05 * rng.standard_normal((m, dim), dtype=np.float32)
    return x


def _recall(found, truth, k):
    return float(np.mean([len(set(a[:k]) & set(b[:k])) / k for a, b in zip(found, truth)]))


def bench_knn(n: int, dim: int, queries: int, k: int = 10, seed: int = 0) -> dict:
    """sklearn brute force vs faiss exact (flat) and vs the index sardata builds for ``n`` (``kind="auto"``)."""
    import faiss
    from sklearn.neighbors import NearestNeighbors

    from sardata.index import build

    rng = np.random.default_rng(seed + 1)
    x = embedding_like(n, dim, seed=seed)
    q = x[rng.choice(n, queries, replace=False)] + 0.01 * rng.standard_normal((queries, dim), dtype=np.float32)

    nn = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(x)
    truth, t_sklearn = _timed(lambda: nn.kneighbors(q, return_distance=False))

    flat = faiss.IndexFlatL2(dim)
    flat.add(x)
    (_, ids_flat), t_flat = _timed(lambda: flat.search(q, k))

    auto, t_build = _timed(lambda: build.build_index(x, metric="euclidean", kind="auto", gpu=False))
    (_, ids_auto), t_auto = _timed(lambda: auto.search(q, k))
    return {
        "knn_n": n, "knn_dim": dim, "knn_queries": queries,
        "knn_sklearn_brute_s": round(t_sklearn, 3),
        "knn_faiss_flat_s": round(t_flat, 3), "knn_flat_speedup": round(t_sklearn / t_flat, 1),
        "knn_flat_recall_at_10": round(_recall(ids_flat, truth, k), 4),
        "knn_auto_kind": build.index_kind(auto), "knn_auto_build_s": round(t_build, 2),
        "knn_auto_search_s": round(t_auto, 3), "knn_auto_speedup": round(t_sklearn / t_auto, 1),
        "knn_auto_recall_at_10": round(_recall(ids_auto, truth, k), 4),
    }


def bench_kmeans(n: int, dim: int, k: int, niter: int = 20, seed: int = 0) -> dict:
    import faiss
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim), dtype=np.float32)

    def run_faiss():
        km = faiss.Kmeans(dim, k, niter=niter, seed=seed, max_points_per_centroid=n // k + 1, verbose=False)
        km.train(x)
        return float(km.obj[-1])

    def run_sklearn():
        km = KMeans(k, n_init=1, max_iter=niter, tol=0.0, algorithm="lloyd", random_state=seed).fit(x)
        return float(km.inertia_)

    obj_faiss, t_faiss = _timed(run_faiss)
    obj_sklearn, t_sklearn = _timed(run_sklearn)
    return {
        "kmeans_n": n, "kmeans_k": k, "kmeans_iters": niter,
        "kmeans_faiss_s": round(t_faiss, 3), "kmeans_sklearn_s": round(t_sklearn, 3),
        "kmeans_speedup": round(t_sklearn / t_faiss, 1),
        "kmeans_inertia_ratio_faiss_over_sklearn": round(obj_faiss / obj_sklearn, 4),
    }


def bench_ivfpq(n: int, dim: int, queries: int, k: int = 10, seed: int = 0) -> dict:
    import faiss

    from sardata.index import build

    rng = np.random.default_rng(seed + 1)
    x = embedding_like(n, dim, seed=seed)
    q = x[rng.choice(n, queries, replace=False)] + 0.01 * rng.standard_normal((queries, dim), dtype=np.float32)

    flat = faiss.IndexFlatL2(dim)
    flat.add(x)
    (_, truth), t_exact = _timed(lambda: flat.search(q, k))

    def build_pq():
        index = build.make_index(dim, n, metric="euclidean", kind="ivfpq", gpu=False)
        build.train_index(index, x, seed=seed)
        index.add_with_ids(x, np.arange(n, dtype=np.int64))
        return index

    index, t_build = _timed(build_pq)
    (_, found), t_search = _timed(lambda: index.search(q, k))
    recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(found, truth)]))
    ivf = faiss.extract_index_ivf(index)
    pq_bytes = faiss.serialize_index(index).nbytes
    flat_bytes = faiss.serialize_index(flat).nbytes
    return {
        "ivfpq_n": n, "ivfpq_nlist": int(ivf.nlist), "ivfpq_nprobe": int(ivf.nprobe),
        "ivfpq_code_bytes_per_vector": int(ivf.code_size),
        "ivfpq_index_mb": round(pq_bytes / 2**20, 1), "flat_index_mb": round(flat_bytes / 2**20, 1),
        "ivfpq_memory_ratio_flat_over_pq": round(flat_bytes / pq_bytes, 1),
        "ivfpq_build_s": round(t_build, 1), "ivfpq_search_s": round(t_search, 3), "exact_search_s": round(t_exact, 3),
        "ivfpq_recall_at_10": round(recall, 4),
    }


def run(n: int = 100_000, dim: int = 256, queries: int = 1000, kmeans_k: int = 100, kmeans_iters: int = 20,
        pq_n: int = 200_000, pq_queries: int = 500) -> dict:
    """Runs the three benchmarks; returns one flat dict of figures."""
    results = {}
    results.update(bench_knn(n, dim, queries))
    results.update(bench_kmeans(n, dim, kmeans_k, niter=kmeans_iters))
    if pq_n:
        results.update(bench_ivfpq(pq_n, dim, pq_queries))
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--kmeans-k", type=int, default=100)
    parser.add_argument("--kmeans-iters", type=int, default=20)
    parser.add_argument("--pq-n", type=int, default=200_000, help="IVF-PQ size (1000000 for the 1M figure; 0 skips)")
    parser.add_argument("--pq-queries", type=int, default=500)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.n, args.dim, args.queries, args.kmeans_k, args.kmeans_iters, args.pq_n,
                         args.pq_queries), indent=2))


if __name__ == "__main__":
    main()

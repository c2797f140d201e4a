"""Index kind and search parameters from a recall target; add/remove for every kind; stored tuning round trip."""

import glob
import logging
import os

import numpy as np
import pytest

from sardata.index import build, tune


def _mixture(n, dim=32, clusters=40, intrinsic=4, noise=0.05, seed=0):
    """Gaussian mixture with low-dimensional clusters; rows beyond ``n`` of the same seed are fresh draws."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32) * 2
    bases = rng.standard_normal((clusters, intrinsic, dim)).astype(np.float32) / np.sqrt(intrinsic)
    lab = rng.integers(0, clusters, n)
    z = rng.standard_normal((n, intrinsic)).astype(np.float32)
    x = centres[lab] + np.einsum("ni,nid->nd", z, bases[lab]) + noise * rng.standard_normal((n, dim))
    return x.astype(np.float32)


def _recall(index, q, truth, k=10):
    _, found = index.search(np.ascontiguousarray(q), k)
    return np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth)])


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_auto_reaches_the_target_it_measured_and_on_fresh_queries(metric):
    import faiss

    data = build.prepare(_mixture(8300), metric)
    x, fresh = data[:8000], data[8000:]
    ids = np.arange(len(x), dtype=np.int64) * 3 + 7  # arbitrary ids, not positions
    index, rec = tune.build(x, ids, metric=metric, kind="auto", recall_target=0.95, flat_max=1000)
    assert rec["kind"] in ("ivf", "hnsw") and rec["measured"] and rec["reached"]
    assert rec["recall_at_k"] >= 0.95 and rec["queries"] == 200
    # the stored figure is what the held-out queries give with the chosen parameters
    pos = tune.held_out(len(x))
    again = tune.measure_recall(index, x, ids, pos, tune.exact_neighbours(x, pos, 10, metric))
    assert again == pytest.approx(rec["recall_at_k"], abs=1e-4)
    assert build.search_params(index) == rec["params"]
    # it generalises to queries that are not in the index
    fm = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
    _, truth = faiss.knn(fresh, x, 10, metric=fm)
    assert _recall(index, fresh, ids[truth]) >= 0.9
    # a lower target buys a cheaper search (fewer lists or a narrower beam), measured lower
    cheap, low = tune.build(x, ids, metric=metric, kind=rec["kind"], recall_target=0.5)
    key = "nprobe" if rec["kind"] == "ivf" else "ef_search"
    assert low["params"][key] < rec["params"][key] and low["recall_at_k"] < rec["recall_at_k"]


def test_small_collections_stay_exact_and_big_ones_go_compact():
    x = _mixture(1500)
    ids = np.arange(len(x), dtype=np.int64)
    index, rec = tune.build(x, ids, metric="euclidean")  # below FLAT_MAX
    assert rec["kind"] == "flat" and build.index_kind(index) == "flat" and not rec["measured"]
    index, rec = tune.build(x, ids, metric="euclidean", flat_max=100, memory_mib=0.01)  # over the memory budget
    assert rec["kind"] == "ivfpq" and build.index_kind(index) == "ivfpq" and rec["measured"]
    assert set(rec["params"]) == {"nprobe", "k_factor"}
    # in memory: coarse codes (dim/8 bytes) + coarse ids + the id map (ids and rows): 4 + 8 + 16 bytes per vector;
    # the float32 vectors are the file's, not the memory's
    assert 28 * len(x) <= index.nbytes() < 28 * len(x) + 64 * 1024
    assert index.vector_file_nbytes() == x.nbytes
    # explicit parameters are used as given, and their recall is still measured
    fixed, rec = tune.build(x, ids, metric="euclidean", kind="ivf", nprobe=2)
    assert rec["params"] == {"nprobe": 2} and build.search_params(fixed) == {"nprobe": 2} and rec["measured"]


def test_ivfpq_reranks_by_exact_vectors_from_its_file_and_survives_an_interrupted_write(tmp_path, monkeypatch):
    from sardata.index import refine

    x = _mixture(3000, dim=32)
    ids = np.arange(len(x), dtype=np.int64) * 5 + 1
    index = build.make_index(32, len(x), metric="euclidean", kind="ivfpq", gpu=False, flat_max=0)
    build.train_index(index, x)
    index.add_with_ids(x, ids)
    path = str(tmp_path / "k.faiss")
    build.write_index(index, path)
    back = build.read_index(path)
    assert isinstance(back._file, np.memmap) and len(refine.vector_files_for(path)) == 1
    # vectors come back bit-exact, and returned distances are the exact squared L2 distances
    np.testing.assert_array_equal(back.reconstruct_batch(ids[[7, 0, 2999]]), x[[7, 0, 2999]])
    dist, found = back.search(x[:5] + 0.01, 3)
    exact = ((x[(found - 1) // 5] - (x[:5] + 0.01)[:, None, :]) ** 2).sum(-1)
    np.testing.assert_allclose(dist, exact, rtol=1e-5)
    assert (found[:, 0] == ids[:5]).all()
    # remove + add, then a write that dies after the new vector file: the old files still read as before
    back.remove_ids(ids[:100])
    back.add_with_ids(x[:1] * 0 + 100.0, np.array([99_999]))
    monkeypatch.setattr(refine.np, "savez", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        build.write_index(back, path)
    monkeypatch.undo()
    again = build.read_index(path)
    assert again.ntotal == 3000 and ids[0] in again.ids
    # a complete write compacts the file to the live rows and leaves one vector file
    build.write_index(back, path)
    final = build.read_index(path)
    assert final.ntotal == 2901 and len(final._file) == 2901 and len(refine.vector_files_for(path)) == 1
    np.testing.assert_array_equal(final.reconstruct_batch(np.array([99_999, ids[100]])),
                                  np.stack([np.full(32, 100.0, np.float32), x[100]]))


def _dataset(name, n=300, dim=16):
    import fiftyone as fo

    ds = fo.Dataset(name)
    ds.add_samples([fo.Sample(filepath=f"/nonexistent/img{i:04d}.png") for i in range(n)])
    return ds, _mixture(n, dim=dim, clusters=6, seed=3)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf", "ivfpq"])
def test_remove_and_add_for_every_kind(fo_dataset_name, kind, caplog):
    import fiftyone.brain as fob

    import sardata.index  # noqa: F401  registers "faiss"

    ds, emb = _dataset(fo_dataset_name, n=1200, dim=64)
    ids = ds.values("id")
    index = fob.compute_similarity(ds, backend="faiss", embeddings=emb, brain_key="k", metric="euclidean",
                                   index_kind=kind, flat_max=10)
    assert index.index_kind == kind and index.config.tuning["kind"] == kind
    gone = ids[10:13]
    with caplog.at_level(logging.WARNING, logger="sardata.index.build"):
        index.remove_from_index(sample_ids=gone)
    assert ("rebuilding the graph" in caplog.text) == (kind == "hnsw")
    assert index.total_index_size == 1197 and index.index_kind == kind
    for i in (10, 11, 12):  # a removed sample is never returned, not even for its own vector
        assert not set(gone) & set(ds.sort_by_similarity(emb[i], k=20, brain_key="k").values("id"))
    index.add_to_index(emb[10:13], gone)
    assert index.total_index_size == 1200
    for i in (10, 11, 12):  # back: the nearest to its own vector
        assert ds.sort_by_similarity(emb[i], k=1, brain_key="k").values("id") == [ids[i]]
    # the files hold the change: a reload finds the same index, kind and search parameters
    reloaded = type(index)(ds, index.config, "k")
    assert reloaded.total_index_size == 1200 and reloaded.index_kind == kind
    assert build.search_params(reloaded.faiss_index) == build.search_params(index.faiss_index)
    path = index.config.index_path
    ds.delete_brain_run("k")
    assert not any(os.path.exists(p) for p in (path, path[:-6] + ".ids.npy", path[:-6] + ".refine.npz"))
    assert not glob.glob(path[:-6] + ".refine-*.npy")


def test_tuning_is_stored_with_the_run_and_shown_by_the_cli(fo_dataset_name):
    from typer.testing import CliRunner

    from sardata.cli import app
    from sardata.index import compute_index

    ds, emb = _dataset(fo_dataset_name, n=2000, dim=16)
    ds.set_values("dcgan_embedding", [e.tolist() for e in emb])
    index = compute_index(ds, brain_key="tuned", flat_max=100, recall_target=0.9)
    stored = ds.get_brain_info("tuned").config.tuning
    assert stored == index.config.tuning and stored["target"] == 0.9 and stored["recall_at_k"] >= 0.9
    assert stored["kind"] == index.index_kind and stored["params"] == build.search_params(index.faiss_index)
    ds.clear_cache() if hasattr(ds, "clear_cache") else None
    fresh = type(index)(ds, ds.get_brain_info("tuned").config, "tuned")
    assert build.search_params(fresh.faiss_index) == stored["params"]

    result = CliRunner().invoke(app, ["index", ds.name, "--brain-key", "cli", "--recall-target", "0.9"])
    assert result.exit_code == 0, result.output
    assert "flat (exact)" in result.output and "recall 1 by construction" in result.output
    bad = CliRunner().invoke(app, ["index", ds.name, "--brain-key", "x", "--backend", "nosuch"])
    assert bad.exit_code == 1 and "nosuch" in bad.output

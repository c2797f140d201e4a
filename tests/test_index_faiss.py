"""FAISS index factory, the "faiss" similarity backend (round trip, persistence in a fresh process), duplicates."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from sardata.index import build
from sardata.index.duplicates import exact_duplicates, find_near_duplicates


def _clustered(n, dim, centers=20, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, dim)).astype(np.float32) * 3
    return (c[rng.integers(0, centers, n)] + rng.standard_normal((n, dim))).astype(np.float32)


def test_choose_kind_validates_and_keeps_small_collections_exact():
    assert build.choose_kind(1000) == "flat"
    assert build.choose_kind(60_000) == "auto"  # large: chosen by measured recall (tune.build)
    assert build.choose_kind(300, flat_max=100) == "auto"
    assert build.choose_kind(10, "hnsw") == "hnsw"
    with pytest.raises(ValueError, match="annoy"):
        build.choose_kind(10, "annoy")
    with pytest.raises(ValueError, match="manhattan"):
        build.make_index(8, 10, metric="manhattan")


def test_ivf_built_and_trained():
    x = _clustered(3000, 32)
    index = build.build_index(x, metric="euclidean", kind="ivf", gpu=False)
    assert build.index_kind(index) == "ivf"
    ivf = __import__("faiss").extract_index_ivf(index)
    assert index.is_trained and index.ntotal == 3000
    assert 1 < ivf.nlist <= 3000 // 39 and 1 <= ivf.nprobe <= ivf.nlist
    # approximate search still finds each point itself
    _, ids = index.search(np.ascontiguousarray(x[:50]), 1)
    assert (ids[:, 0] == np.arange(50)).mean() > 0.95
    pq = build.build_index(x, metric="cosine", kind="ivfpq", gpu=False)
    assert build.index_kind(pq) == "ivfpq"


def test_find_near_duplicates_planted():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((200, 64)).astype(np.float32)
    planted = [(3, 150), (10, 11), (42, 199)]
    for i, j in planted:
        x[j] = x[i] + 0.01 * rng.standard_normal(64)
    pairs = find_near_duplicates(x, threshold=0.95)
    assert [(i, j) for i, j, _ in pairs] == planted
    assert all(s >= 0.95 for _, _, s in pairs)
    pairs_l2 = find_near_duplicates(x, threshold=0.5, metric="euclidean")
    assert [(i, j) for i, j, _ in pairs_l2] == planted


def test_exact_duplicates(tmp_path):
    paths = []
    for i, content in enumerate([b"a", b"b", b"a", b"c", b"b", b"a"]):
        p = tmp_path / f"f{i}.bin"
        p.write_bytes(content)
        paths.append(p)
    with pytest.warns(UserWarning, match="missing.bin"):
        groups = exact_duplicates(paths + [tmp_path / "missing.bin"])
    assert groups == [[0, 2, 5], [1, 4]]


@pytest.fixture
def emb_dataset(fo_dataset_name):
    import fiftyone as fo

    ds = fo.Dataset(fo_dataset_name)
    ds.persistent = True
    ds.add_samples([fo.Sample(filepath=f"/nonexistent/img{i:03d}.png") for i in range(60)])
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((60, 16)).astype(np.float32)
    emb[7] = emb[3] + 0.001
    return ds, emb


_RELOAD_SCRIPT = """
import json, sys
import fiftyone as fo
ds = fo.load_dataset(sys.argv[1])
view = ds.sort_by_similarity(sys.argv[2], k=3, brain_key="fx")
idx = ds.load_brain_results("fx")
print(json.dumps({"ids": view.values("id"), "size": idx.total_index_size, "cls": type(idx).__name__,
                  "loaded": sorted(m for m in sys.modules if m.startswith("sardata"))}))
"""


def _fresh_process(dataset_name, query_id):
    env = dict(os.environ)  # same private database and SARDATA_HOME as this session
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_RELOAD_SCRIPT), dataset_name, query_id],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_backend_round_trip(emb_dataset):
    import fiftyone.brain as fob

    import sardata.index  # noqa: F401  registers "faiss"

    ds, emb = emb_dataset
    ids = ds.values("id")
    index = fob.compute_similarity(ds, backend="faiss", embeddings=emb, brain_key="fx")
    path = index.config.index_path
    assert path.endswith("fx.faiss") and os.path.exists(path) and os.path.exists(index.config.ids_path)
    assert ds.get_brain_info("fx").config.index_path == path  # persisted with the run
    assert index.total_index_size == 60 and index.index_kind == "flat"
    assert "mean" in index.config.supported_aggregations

    # by id: the planted twin comes first after the query itself
    top = ds.sort_by_similarity(ids[3], k=2, brain_key="fx").values("id")
    assert set(top) == {ids[3], ids[7]}
    # by vector, with distances (cosine distance 0 to itself)
    view = ds.sort_by_similarity(emb[10], k=3, brain_key="fx", dist_field="d")
    assert view.first().id == ids[10] and abs(view.first().d) < 1e-5
    assert view.values("d") == sorted(view.values("d"))
    # least similar: cosine distances near the top of the range
    far = ds.sort_by_similarity(ids[10], k=3, reverse=True, brain_key="fx", dist_field="d")
    assert min(far.values("d")) > max(view.values("d"))
    # restricted to a view
    sub = ds.limit(20)
    with index.use_view(sub):
        got, _ = index._kneighbors(query=ids[40], k=5)
    assert len(got) == 5 and set(got) <= set(sub.values("id"))
    # duplicates via DuplicatesMixin (needs _radius_neighbors)
    index.find_duplicates(thresh=0.01)
    assert len(index.duplicate_ids) == 1 and index.duplicate_ids[0] in (ids[3], ids[7])
    # get_embeddings returns unit vectors for cosine
    e, sids, _ = index.get_embeddings(sample_ids=[ids[5]])
    np.testing.assert_allclose(e[0], emb[5] / np.linalg.norm(emb[5]), atol=1e-5)

    # fresh process: reload from the stored config path
    fresh = _fresh_process(ds.name, ids[3])
    assert fresh["size"] == 60 and fresh["cls"] == "FaissSimilarityIndex"
    assert set(fresh["ids"][:2]) == {ids[3], ids[7]}

    # add / remove keep the file in sync
    index.remove_from_index(sample_ids=[ids[7]])
    assert index.total_index_size == 59
    assert ids[7] not in ds.sort_by_similarity(ids[3], k=5, brain_key="fx").values("id")
    new_vec = emb[3:4] * 2.0  # overwrite sample 20 with the direction of sample 3
    index.add_to_index(new_vec, [ids[20]])
    assert index.total_index_size == 59
    assert ids[20] in ds.sort_by_similarity(ids[3], k=2, brain_key="fx").values("id")
    index.add_to_index(emb[7:8], [ids[7]])
    assert index.total_index_size == 60
    fresh = _fresh_process(ds.name, ids[3])
    assert fresh["size"] == 60 and set(fresh["ids"]) >= {ids[3], ids[20]}

    # deleting the run deletes the files
    ds.delete_brain_run("fx")
    assert not os.path.exists(path) and not os.path.exists(index.config.ids_path)


def test_backend_ivf_euclidean_and_cleanup(emb_dataset):
    import fiftyone.brain as fob

    from sardata.index.faiss import FaissSimilarityConfig

    ds, _ = emb_dataset
    emb = _clustered(60, 16, centers=3, seed=2)
    index = fob.compute_similarity(
        ds, backend=FaissSimilarityConfig, embeddings=emb, brain_key="fx_l2", metric="euclidean", flat_max=10,
        index_kind="ivf",
    )
    assert index.index_kind == "ivf"
    ids = ds.values("id")
    view = ds.sort_by_similarity(emb[0], k=1, brain_key="fx_l2", dist_field="d")
    assert view.first().id == ids[0] and view.first().d < 1e-3
    path = index.config.index_path
    index.cleanup()
    assert not os.path.exists(path) and index.total_index_size == 0


def test_index_cli(emb_dataset):
    from typer.testing import CliRunner

    from sardata.cli import app

    ds, emb = emb_dataset
    ds.set_values("dcgan_embedding", [e.tolist() for e in emb])
    runner = CliRunner()
    result = runner.invoke(app, ["index", ds.name, "--brain-key", "cli_fx"])
    assert result.exit_code == 0, result.output
    assert "indexed 60 samples" in result.output and ds.load_brain_results("cli_fx").total_index_size == 60
    again = runner.invoke(app, ["index", ds.name, "--brain-key", "cli_fx"])
    assert again.exit_code == 1 and "already exists" in again.output
    assert runner.invoke(app, ["index", ds.name, "--brain-key", "cli_fx", "--overwrite"]).exit_code == 0
    missing = runner.invoke(app, ["index", ds.name, "--field", "cc_embedding"])
    assert missing.exit_code == 1 and "cc_embedding" in missing.output

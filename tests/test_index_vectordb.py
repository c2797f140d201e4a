"""``sardata index --backend lancedb`` (an embedded vector database from PyPI) answers like FAISS flat, on scenes."""

import os

import numpy as np
import pytest

if os.environ.get("CI"):
    import lancedb  # noqa: F401  CI installs the `test` extra, which has it: never skip there
else:
    lancedb = pytest.importorskip("lancedb", reason="install the `vectordb` extra (pip install -e '.[vectordb]')")


@pytest.fixture
def scene_dataset(fo_dataset_name, tmp_path, monkeypatch):
    import fiftyone as fo
    import fiftyone.brain as fob
    from PIL import Image

    import sardata.index  # noqa: F401  registers "faiss"

    # where LanceDB keeps its tables: fiftyone-brain reads the backend's parameters from its brain config
    monkeypatch.setitem(fob.brain_config.similarity_backends["lancedb"], "uri", str(tmp_path / "lancedb"))
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal((30, 24)) + 6.0, rng.standard_normal((90, 24)) - 6.0])
    x += 0.5 * rng.standard_normal(x.shape)
    samples = []
    for i in range(len(x)):
        path = tmp_path / f"img{i:03d}.png"
        Image.fromarray(np.full((24, 24), 200 if i < 30 else 40, np.uint8)).save(path)
        samples.append(fo.Sample(filepath=str(path)))
    ds = fo.Dataset(fo_dataset_name)
    ds.add_samples(samples)
    ds.set_values("dcgan_embedding", [v.astype(np.float32).tolist() for v in x])
    return ds


def test_lancedb_backend_index_scenes_sort_matches_faiss_flat(scene_dataset):
    from typer.testing import CliRunner

    from sardata.cli import app

    ds = scene_dataset
    runner = CliRunner()
    for args in (["--backend", "lancedb", "--brain-key", "lance"], ["--kind", "flat", "--brain-key", "flat"]):
        result = runner.invoke(app, ["index", ds.name, *args])
        assert result.exit_code == 0, result.output
    assert "indexed 120 samples" in result.output
    assert type(ds.load_brain_results("lance")).__name__ == "LanceDBSimilarityIndex"
    assert ds.get_brain_info("flat").config.tuning["kind"] == "flat"
    result = runner.invoke(app, ["scenes", ds.name, "--k", "2", "--n-init", "1", "--viz", "none"])
    assert result.exit_code == 0, result.output
    assert ds.count_sample_tags() == {"inshore": 30, "offshore": 90}

    checked = 0
    for tag in ("inshore", "offshore"):
        view = ds.match_tags(tag)
        for query in view.take(3, seed=1).values("id"):
            lance = view.sort_by_similarity(query, k=8, brain_key="lance").values("id")
            flat = view.sort_by_similarity(query, k=8, brain_key="flat").values("id")
            assert len(flat) == 8 and lance == flat
            assert set(lance) <= set(view.values("id"))  # restricted to the scene
            checked += 1
    # a query vector over the whole dataset, too
    vec = np.asarray(ds.first().dcgan_embedding)
    assert (ds.sort_by_similarity(vec, k=5, brain_key="lance").values("id")
            == ds.sort_by_similarity(vec, k=5, brain_key="flat").values("id"))
    assert checked == 6
    ds.delete_brain_run("lance")
    assert "lance" not in ds.list_brain_runs()


def test_unknown_backend_and_faiss_only_options_are_clear_errors(scene_dataset):
    from sardata.index import compute_index

    with pytest.raises(ValueError, match="nosuch.*available"):
        compute_index(scene_dataset, backend="nosuch", brain_key="x")
    with pytest.raises(ValueError, match="FAISS option"):
        compute_index(scene_dataset, backend="lancedb", kind="hnsw", brain_key="x")

"""benchmarks/scenes.py: one row per condition through the library defaults (tiny smoke run), baselines, table."""

import numpy as np

from benchmarks import scenes as bench


def test_reference_features(tmp_path):
    from PIL import Image

    paths = []
    for i, level in enumerate((20, 200)):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.full((40, 50), level, np.uint8)).save(path)
        paths.append(str(path))
    refs = bench.reference_features(paths)
    np.testing.assert_allclose(refs["stats"][:, 0], [20 / 255, 200 / 255], rtol=1e-5)
    np.testing.assert_allclose(refs["stats"][:, 2], [0.0, 1.0])
    assert refs["pixels"].shape == (2, 32 * 32)


def test_tiny_run_one_row_per_condition(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "budget_settings", lambda budget: {
        "images": 10, "gan_steps": 1, "gan_image_size": 32, "gan_batch_size": 4, "cc_steps": 1, "cc_image_size": 32})
    import sardata.embed.dcgan as dcgan

    real = dcgan.train_gan
    monkeypatch.setattr(dcgan, "train_gan", lambda *a, **k: real(*a, **{**k, "base_channels": 64}))
    result = bench.run(conditions=("default",), budget="demo", models=("dcgan", "cc"), out=tmp_path)
    rows = result["rows"]
    assert [r["model"] for r in rows] == ["stats", "pixels", "dcgan", "dcgan_sizeguard", "dcgan_trimmed", "cc"]
    for row in rows:
        assert row["condition"] == "default" and row["images"] == 10
        assert row["accuracy"] <= 1.0 and -1.0 <= row["ari"] <= 1.0
        assert row["space"].split("/")[0] in ("flat", "trimmed", "spread")
    assert rows[4]["space"].startswith("trimmed") and isinstance(rows[2]["reliable"], bool)
    assert rows[3]["space"].startswith("spread")  # the rule with the balance guard alone
    assert rows[2]["space"].startswith("spread") and rows[2]["train_seconds"] > 0  # the DCGAN F has a layout
    assert set(result["verdict"]) == {"dcgan", "cc"}
    assert (tmp_path / "scenes-demo.json").is_file()
    table = bench.format_table(result)
    assert table.splitlines()[1].startswith("default") and "dcgan acc/ARI" in table.splitlines()[0]

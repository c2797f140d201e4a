"""benchmarks/scenes.py: a tiny end-to-end run (synth → train → extract → k=2 tags → accuracy), its helpers."""

import math

import numpy as np
import pytest

from benchmarks import scenes as bench


def test_normalize_variants():
    x = np.array([[3.0, 4.0], [6.0, 8.0], [0.0, 2.0]])
    l2 = bench.normalize(x, "l2")
    np.testing.assert_allclose(np.linalg.norm(l2, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(l2[0], [0.6, 0.8], rtol=1e-6)
    std = bench.normalize(x, "standardize")
    np.testing.assert_allclose(std.mean(0), 0.0, atol=1e-6)
    np.testing.assert_allclose(std.std(0), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(bench.normalize(x, "none"), x.astype(np.float32))
    with pytest.raises(ValueError, match="unknown normalisation"):
        bench.normalize(x, "whiten")


def test_probe_accuracy_sees_a_separable_feature():
    rng = np.random.default_rng(0)
    truth = ["inshore"] * 10 + ["offshore"] * 30
    x = rng.standard_normal((40, 5))
    x[:10, 0] += 8.0  # the scene is in feature 0
    assert bench.probe_accuracy(x, truth) >= 0.95
    assert math.isnan(bench.probe_accuracy(x, ["offshore"] * 40))


def test_tiny_run(tmp_path):
    result = bench.run(images=8, epochs=(0, 1), image_sizes=(32,), models=("dcgan", "cc"), pca_dims=(None,),
                       norms=("l2",), batch_size=4, dcgan_base_channels=64, out=tmp_path, name="bench-scenes-test")
    assert {"images", "true_inshore", "aim", "seconds", "best", "rows", "dcgan_best_accuracy",
            "cc_best_accuracy"} <= set(result)
    assert result["images"] == 8 and 0 <= result["true_inshore"] <= 8
    # references (2) + 2 models × 2 epoch counts, each × 1 normalisation
    assert len(result["rows"]) == 2 + 2 * 2
    for row in result["rows"]:
        assert 0.0 <= row["accuracy"] <= 1.0
        assert row["accuracy"] <= row["matched_accuracy"] <= 1.0
        assert 0 <= row["predicted_inshore"] <= 4  # the smaller of two clusters
    trained = [r for r in result["rows"] if r["model"] == "dcgan" and r["epochs"] == 1]
    assert all(r["train_seconds"] > 0 for r in trained)
    assert (tmp_path / "scenes.json").is_file()
    assert (tmp_path / "dcgan-32" / "checkpoint.pth").is_file()

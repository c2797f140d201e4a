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


def test_score_tells_a_naming_error_from_a_clustering_error(tmp_path, fo_dataset_name):
    import fiftyone as fo

    dataset = fo.Dataset(fo_dataset_name)
    dataset.add_samples([fo.Sample(filepath=str(tmp_path / f"{i}.png")) for i in range(6)])
    features = np.array([[0.0, 0.0]] * 4 + [[10.0, 10.0]] * 2)  # two clean clusters of 4 and 2
    # truth agrees with "smaller cluster = inshore": perfect
    dataset.set_values("scene_truth", ["offshore"] * 4 + ["inshore"] * 2)
    assert bench._score(dataset, features, seed=0) == {"accuracy": 1.0, "matched_accuracy": 1.0,
                                                       "predicted_inshore": 2, "silhouette": 1.0}
    # the larger cluster is the true inshore: the split is perfect, the naming rule gets every image wrong
    dataset.set_values("scene_truth", ["inshore"] * 4 + ["offshore"] * 2)
    score = bench._score(dataset, features, seed=0)
    assert score["accuracy"] == 0.0 and score["matched_accuracy"] == 1.0


def test_tiny_run(tmp_path):
    result = bench.run(images=8, epochs=(0, 1), image_sizes=(32,), models=("dcgan", "cc"), pca_dims=(None,),
                       norms=("l2",), batch_size=4, dcgan_base_channels=64, out=tmp_path, name="bench-scenes-test")
    assert {"images", "true_inshore", "aim", "seconds", "best", "rows", "dcgan_best_accuracy",
            "cc_best_accuracy"} <= set(result)
    assert result["images"] == 8 and result["true_inshore"] == 2  # seed 0 synthesises 2 inshore images of 8
    # references (2) + 2 models × 2 epoch counts, each × 1 normalisation, in that order
    assert [(r["model"], r["epochs"], r["norm"]) for r in result["rows"]] == [
        ("pixels", None, "l2"), ("stats", None, "l2"), ("dcgan", 0, "l2"), ("dcgan", 1, "l2"), ("cc", 0, "l2"),
        ("cc", 1, "l2")]
    # the intensity statistics separate this seed's scenes exactly (land is bright): a scorer reading the wrong
    # truth, samples out of order or a wrong naming rule would not give 1.0 with both inshore images found
    stats = result["rows"][1]
    assert stats["accuracy"] == stats["matched_accuracy"] == 1.0 and stats["predicted_inshore"] == 2
    assert result["best"]["stats"] == stats and result["stats_best_accuracy"] == 1.0
    trained = [r for r in result["rows"] if r["model"] == "dcgan" and r["epochs"] == 1]
    assert all(r["train_seconds"] > 0 for r in trained)
    assert (tmp_path / "scenes.json").is_file()
    assert (tmp_path / "dcgan-32" / "checkpoint.pth").is_file()

"""benchmarks/difficulty.py: the issue's threshold detector and a tiny end-to-end run (synth → tune CFAR → AP50)."""

import numpy as np

from benchmarks import difficulty as bench


def test_threshold_detector_finds_a_bright_blob():
    rng = np.random.default_rng(0)
    gray = rng.integers(10, 30, (60, 80)).astype(np.uint8)
    gray[20:26, 30:40] = 250
    boxes, scores = bench.threshold_detector(gray)
    best = boxes[np.argmax(scores)]
    np.testing.assert_allclose(best, [29, 19, 41, 27], atol=1)  # the 3×3 mean spreads the blob by one pixel


def test_tiny_run(tmp_path):
    result = bench.run(images=20, seed=3, tune_images=6, conditions=("easy",), out=tmp_path)
    row = result["detail"]["rows"]["easy"]
    assert row["test_images"] == 4 and set(row["cfar"]) == {"all", "inshore", "offshore"}
    assert row["cfar_settings"]["pfa"] in bench.PFAS
    assert result["easy_cfar_AP50_all"] == row["cfar"]["all"]
    assert row["cfar"]["all"] > 0.3  # easy data: large bright ships, CFAR finds most of them

"""benchmarks/scenes_probe.py: the labelled probe, and a tiny step sweep through the library calls."""

import numpy as np
import pytest

from benchmarks import scenes as bench
from benchmarks import scenes_probe as probe


def test_probe_reads_a_separable_label_and_not_noise():
    rng = np.random.default_rng(0)
    labels = np.array([1] * 10 + [0] * 30)
    x = rng.normal(size=(40, 50))
    assert probe.probe(x + 3.0 * labels[:, None], labels)["balanced"] == 1.0
    assert probe.probe(x, labels)["balanced"] < 0.8


def test_tiny_sweep_one_row_per_step(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "budget_settings", lambda budget: {
        "images": 10, "gan_steps": 1, "gan_image_size": 32, "gan_batch_size": 4, "cc_steps": 1, "cc_image_size": 32})
    import sardata.embed.dcgan as dcgan

    real = dcgan.train_gan
    monkeypatch.setattr(dcgan, "train_gan", lambda *a, **k: real(*a, **{**k, "base_channels": 64}))
    monkeypatch.setattr(probe, "PROBE_FOLDS", 2)
    rows = probe.run_condition("default", gan_steps=(2, 0), out=tmp_path)
    assert [(r["model"], r.get("gan_steps")) for r in rows] == [("stats", None), ("dcgan", 0), ("dcgan", 2)]
    assert rows[1]["train_seconds"] >= 0 and isinstance(rows[1]["reliable"], bool)
    for row in rows[1:]:
        assert 0.0 <= row["probe_flat"]["balanced"] <= 1.0 and row["space"].startswith("spread")
    assert 0.0 <= rows[0]["probe"]["balanced"] <= 1.0
    assert "default" in probe.format_table(rows).splitlines()[1]
    with pytest.raises(ValueError, match="2-step run, not 0"):  # the run directory is past step 0 now
        probe.run_condition("default", gan_steps=(0,), out=tmp_path)

"""LANet + contrastive clustering: modules, losses, metrics, the masks-export reader, training, reload, FiftyOne."""

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from sardata.embed.contrastive import cluster_loss, nt_xent
from sardata.train.lanet import LANet, AttentionEmbedding, PatchAttention
from sardata.train.seg_data import IGNORE_INDEX, MasksExportDataset
from sardata.train.segment import (
    SegmentConfig,
    confusion_matrix,
    contrastive_clustering_loss,
    knn_indices,
    load_segmentation_predictions,
    load_segmenter,
    segmentation_metrics,
    train,
)

torch.set_num_threads(2)
CLASS_MAP = {"0": "background", "10": "farmland", "20": "city", "40": "water", "70": "others"}


def _export(root, n_train=6, n_val=2, size=32, optical=True):
    """A tiny masks export: SAR texture depends on the class, so the classes are learnable."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    (root / "class_map.json").write_text(json.dumps(CLASS_MAP))
    raw_values = [0, 10, 20, 40, 70]
    for split, n in (("train", n_train), ("val", n_val)):
        for sub in ("images", "optical", "masks"):
            (root / split / sub).mkdir(parents=True)
        for i in range(n):
            labels = np.zeros((size, size), np.uint8)
            half = size // 2
            for q, (ys, xs) in enumerate([(slice(0, half), slice(0, half)), (slice(0, half), slice(half, None)),
                                          (slice(half, None), slice(0, half)), (slice(half, None), slice(half, None))]):
                labels[ys, xs] = raw_values[(i + q) % len(raw_values)]
            sar = (labels.astype(np.float32) * 3 + rng.normal(0, 5, labels.shape)).clip(0, 255).astype(np.uint8)
            stem = f"tile_{split}_{i}"
            Image.fromarray(sar).save(root / split / "images" / f"{stem}.png")
            Image.fromarray(labels).save(root / split / "masks" / f"{stem}.png")
            if optical:
                np.save(root / split / "optical" / f"{stem}.npy",
                        np.stack([labels.astype(np.uint16) * 100 + b for b in range(4)], axis=-1))
    return root


# ------------------------------------------------------------------------------------------------ modules


def test_pam_and_aem_shapes_and_patchwise_weights():
    pam = PatchAttention(16, patch_grid=4)
    x = torch.randn(2, 16, 12, 12)
    assert pam(x).shape == x.shape
    weights = pam.weights(x)
    assert weights.shape == x.shape and (weights > 0).all() and (weights < 1).all()
    # One weight per (channel, patch): constant inside each 3×3 patch, different across patches.
    assert torch.equal(weights[:, :, 0:3, 0:3], weights[:, :, 0:1, 0:1].expand(-1, -1, 3, 3))
    assert not torch.allclose(weights[:, :, 0, 0], weights[:, :, 11, 11])
    aem = AttentionEmbedding(high_channels=32, low_channels=16, patch_grid=4)
    low = torch.randn(2, 16, 24, 24)
    out = aem(torch.randn(2, 32, 3, 3), low)
    assert out.shape == low.shape
    ratio = out / low  # low + low·a with a ∈ (0, 1)
    assert (ratio > 1).all() and (ratio < 2).all()


@pytest.mark.parametrize("channels", [1, 4, 5])
def test_lanet_shapes(channels):
    model = LANet(num_classes=5, in_channels=channels, num_clusters=10).eval()
    x = torch.randn(2, channels, 64, 64)
    logits, emb = model(x, with_embeddings=True)
    assert logits.shape == (2, 5, 64, 64)
    assert emb["features"].shape == (2, 512) and emb["instance"].shape == (2, 128) and emb["cluster"].shape == (2, 10)
    assert torch.allclose(emb["instance"].norm(dim=1), torch.ones(2), atol=1e-5)
    assert torch.allclose(emb["cluster"].sum(dim=1), torch.ones(2), atol=1e-5)
    with pytest.raises(ValueError, match="input channels"):
        model(torch.randn(1, channels + 1, 64, 64))


# ------------------------------------------------------------------------------------------------ losses


def test_knn_and_contrastive_clustering_loss_on_hand_made_embeddings():
    features = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    assert knn_indices(features, 1).squeeze(1).tolist() == [1, 0, 3, 2]
    assert knn_indices(features, 5).shape == (4, 3)  # k capped at N − 1
    z = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    p = torch.softmax(torch.randn(4, 3), dim=1)
    instance, cluster = contrastive_clustering_loss({"features": features, "instance": z, "cluster": p}, knn=1)
    order = [1, 0, 3, 2]
    assert instance.item() == pytest.approx(nt_xent(z, z[order], 0.5).item(), rel=1e-6)
    assert cluster.item() == pytest.approx(cluster_loss(p, p[order], 1.0).item(), rel=1e-6)
    # Instance projections that agree with the neighbour structure score lower than random ones.
    aligned = torch.nn.functional.normalize(features, dim=1)
    good, _ = contrastive_clustering_loss({"features": features, "instance": aligned, "cluster": p}, knn=1)
    bad, _ = contrastive_clustering_loss({"features": features, "instance": aligned[[0, 2, 1, 3]],
                                          "cluster": p}, knn=1)
    assert good < bad
    single = {"features": features[:1], "instance": z[:1], "cluster": p[:1]}
    assert all(v.item() == 0 for v in contrastive_clustering_loss(single))


# ------------------------------------------------------------------------------------------------ metrics


def test_metrics_on_hand_made_confusion_exclude_others():
    names = ["background", "farmland", "others"]
    confusion = np.array([[8, 2, 0],
                          [1, 4, 1],
                          [3, 3, 10]])
    m = segmentation_metrics(confusion, names)
    assert m["pixel_accuracy"] == pytest.approx(12 / 16)
    assert m["pixel_accuracy_all"] == pytest.approx(22 / 32)
    f1_bg, f1_farm = 16 / 19, 8 / 12
    assert m["per_class"]["background"]["f1"] == pytest.approx(f1_bg)
    assert m["per_class"]["farmland"]["f1"] == pytest.approx(f1_farm)
    assert m["per_class"]["background"]["iou"] == pytest.approx(8 / 11)
    assert m["per_class"]["farmland"]["iou"] == pytest.approx(4 / 8)
    assert m["mean_f1"] == pytest.approx((f1_bg + f1_farm) / 2)
    assert m["mean_iou"] == pytest.approx((8 / 11 + 4 / 8) / 2)
    assert "others" not in m["per_class"] and m["excluded"] == ["others"]


def test_confusion_matrix_skips_ignored_pixels():
    target = torch.tensor([[0, 1], [2, IGNORE_INDEX]])
    pred = torch.tensor([[0, 2], [2, 1]])
    conf = confusion_matrix(pred, target, 3)
    assert conf.tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 1]]


# ------------------------------------------------------------------------------------------------ data


def test_masks_export_reader(tmp_path):
    root = _export(tmp_path / "masks", n_train=2, n_val=1)
    sar = MasksExportDataset(root, "train", "sar")
    item = sar[0]
    assert item["image"].shape == (1, 32, 32) and item["image"].dtype == torch.float32
    assert sorted(item["mask"].unique().tolist()) == [0, 1, 2, 3]  # raw 0/10/20/40 → indices 0..3
    assert sar.class_names == ["background", "farmland", "city", "water", "others"]
    both = MasksExportDataset(root, "train", "both")
    assert both[0]["image"].shape == (5, 32, 32) and both.in_channels == 5
    assert MasksExportDataset(root, "train", "optical")[0]["image"].max() <= 1.0

    (root / "train" / "optical" / "tile_train_1.npy").unlink()
    with pytest.warns(UserWarning, match="tile_train_1"):
        assert len(MasksExportDataset(root, "train", "optical")) == 1
    Image.fromarray(np.full((32, 32), 33, np.uint8)).save(root / "train" / "masks" / "tile_train_0.png")
    with pytest.warns(UserWarning, match="not in class_map"):
        assert (sar.labels(0) == IGNORE_INDEX).all()
    with pytest.raises(ValueError, match="input"):
        MasksExportDataset(root, "train", "rgb")


# ------------------------------------------------------------------------------------------------ training


def test_training_loss_falls_resume_and_reload(tmp_path):
    root = _export(tmp_path / "masks")
    out = tmp_path / "run"
    cfg = SegmentConfig(data=str(root), input="sar", cc=True, epochs=3, batch_size=6, lr=3e-3, out_dir=str(out),
                        augment=False, device="cpu", progress=False)
    result = train(cfg)
    losses = [r["loss_ce"] for r in result["history"]]
    assert losses[-1] < losses[0]
    assert all(r["loss_instance"] > 0 for r in result["history"])
    assert not (out / "model_2.pth").exists()  # only the resumable checkpoint by default
    for name in ("checkpoint.pth", "history.csv", "loss_curve.png", "confusion.png", "metrics.json"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["pixel_accuracy"] <= 1 and "others" not in metrics["per_class"]

    # Reloaded checkpoint reproduces the written predictions exactly.
    model, args = load_segmenter(out / "checkpoint.pth", device="cpu")
    val = MasksExportDataset(root, "val", "sar")
    with torch.no_grad():
        pred = model(val[0]["image"][None]).argmax(1)[0].numpy()
    raw = np.array([0, 10, 20, 40, 70])[pred]
    written = np.asarray(Image.open(result["predictions"] / f"{val[0]['stem']}.png"))
    assert np.array_equal(raw, written)

    resumed = train(SegmentConfig(**{**cfg.__dict__, "epochs": 4, "resume": str(out / "checkpoint.pth")}))
    assert [r["epoch"] for r in resumed["history"]] == [0, 1, 2, 3]


# ------------------------------------------------------------------------------------------------ FiftyOne


def test_load_segmentation_predictions(tmp_path, fo_dataset_name):
    import fiftyone as fo

    pred_dir = tmp_path / "pred"
    pred_dir.mkdir()
    (pred_dir / "class_map.json").write_text(json.dumps(CLASS_MAP))
    samples = []
    for stem in ("a", "b"):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / f"{stem}.png")
        Image.fromarray(np.full((8, 8), 10, np.uint8)).save(pred_dir / f"{stem}.png")
        samples.append(fo.Sample(filepath=str(tmp_path / f"{stem}.png")))
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(pred_dir / "orphan.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(pred_dir / "a__rep1.png")  # a replica: skipped, not orphaned
    dataset = fo.Dataset(fo_dataset_name)
    dataset.add_samples(samples)
    with pytest.warns(UserWarning, match="1 predictions match no sample"):
        assert load_segmentation_predictions(dataset, pred_dir) == 2
    sample = dataset.first()
    assert isinstance(sample["predictions"], fo.Segmentation)
    assert sample["predictions"].mask_path.endswith("a.png")
    assert int(sample["predictions"].get_mask()[0, 0]) == 10
    assert dataset.mask_targets["predictions"][10] == "farmland"

    ids = dataset.values("id")
    with pytest.warns(UserWarning, match="match no sample"):
        assert load_segmentation_predictions(dataset, pred_dir, field="by_id", sample_ids={"b": ids[0]}) == 1
    assert dataset.first()["by_id"].mask_path.endswith("b.png")


def test_cli_segment_and_distill_wiring(tmp_path):
    from typer.testing import CliRunner

    from sardata.cli import app

    root = _export(tmp_path / "masks", n_train=2, n_val=1)
    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["train", "segment", "--data", str(root), "--no-cc", "--epochs", "1",
                                      "--batch-size", "2", "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "pixel_accuracy" in result.output and (out / "checkpoint.pth").is_file()
    record = json.loads((out / "history.json").read_text())[0]  # --no-cc: LANet alone
    assert record["loss_instance"] == 0 and record["loss"] == pytest.approx(record["loss_ce"])
    bad = CliRunner().invoke(app, ["train", "segment", "--data", str(tmp_path / "nope")])
    assert bad.exit_code == 1 and "classmapnotfound" in "".join(bad.output.split())  # rich wraps lines
    help_text = CliRunner().invoke(app, ["train", "distill", "--help"]).output
    assert "--ablation" in help_text and "--teacher" in help_text
    missing = CliRunner().invoke(app, ["train", "distill", "--data", str(root), "--teacher", str(tmp_path / "t.pth")])
    message = " ".join(missing.output.split())
    assert missing.exit_code == 1 and "checkpoint not found" in message and "t.pth" in message and "teacher" in message

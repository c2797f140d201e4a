"""LANet + contrastive clustering: modules, losses, metrics, the masks-export reader, training, reload, FiftyOne."""

import json
import math
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from sardata.embed.contrastive import cluster_loss, nt_xent
from sardata.train.lanet import LANet, AttentionEmbedding, PatchAttention
from sardata.train.seg_data import IGNORE_INDEX, MasksExportDataset
from sardata.train.seg_cc import (
    augment_view,
    contrastive_clustering_loss,
    knn_indices,
    multi_positive_nt_xent,
    positive_mask,
)
from sardata.train.segment import (
    WHU_SCORED_CLASSES,
    SegmentConfig,
    confusion_matrix,
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


def test_pam_is_residual_and_patchwise():
    pam = PatchAttention(16, patch_grid=4)
    x = torch.randn(2, 16, 12, 12)
    weights = pam.weights(x)
    assert weights.shape == x.shape and (weights > 0).all() and (weights < 1).all()
    assert torch.allclose(pam(x), x + x * weights)  # enhanced features added to the original
    # One weight per (channel, patch): constant inside each 3×3 patch, different across patches.
    assert torch.equal(weights[:, :, 0:3, 0:3], weights[:, :, 0:1, 0:1].expand(-1, -1, 3, 3))
    assert not torch.allclose(weights[:, :, 0, 0], weights[:, :, 11, 11])
    # With a zeroed last projection the attention is sigmoid(0) = ½ everywhere: PAM(x) = x + ½x.
    torch.nn.init.zeros_(pam.attention[2].weight)
    torch.nn.init.zeros_(pam.attention[2].bias)
    assert torch.allclose(pam(x), 1.5 * x)
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
    assert torch.allclose(model.embed(x)["instance"], emb["instance"])
    with pytest.raises(ValueError, match="input channels"):
        model(torch.randn(1, channels + 1, 64, 64))


# ------------------------------------------------------------------------------------------------ losses


def test_nt_xent_by_hand_with_a_knn_positive_excluded_from_negatives():
    """Three unit vectors; 0 and 1 are positives (a neighbour pair), 2 has no positive."""
    z = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    positives = torch.tensor([[0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=torch.bool)
    tau = 0.5
    s01, s02, s12 = 0.6, 0.0, 0.8
    anchor0 = -math.log(math.exp(s01 / tau) / (math.exp(s01 / tau) + math.exp(s02 / tau)))
    anchor1 = -math.log(math.exp(s01 / tau) / (math.exp(s01 / tau) + math.exp(s12 / tau)))
    assert multi_positive_nt_xent(z, positives, tau).item() == pytest.approx((anchor0 + anchor1) / 2, rel=1e-6)
    # A positive is not among the negatives: aligned positives, opposite negative → the loss goes to ~0 (the old
    # form, positive also in the denominator twice, could not go below log 3 ≈ 1.10).
    aligned = torch.tensor([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    assert multi_positive_nt_xent(aligned, positives, tau).item() == pytest.approx(math.log(1 + math.exp(-4)), rel=1e-5)
    # Augmentation positives only (K = 0): SimCLR's NT-Xent.
    za, zb = torch.randn(3, 4), torch.randn(3, 4)
    simclr = multi_positive_nt_xent(torch.cat([za, zb]), positive_mask(torch.zeros(3, 0, dtype=torch.long), 3), 0.5)
    assert simclr.item() == pytest.approx(nt_xent(za, zb, 0.5).item(), rel=1e-5)


def test_knn_positives_are_symmetric_and_never_negatives():
    features = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.3, 0.7]])
    neighbours = knn_indices(features, 1)
    assert neighbours.squeeze(1).tolist() == [1, 0, 3, 2]
    assert knn_indices(features, 5).shape == (4, 3)  # k capped at N − 1
    # 3 tiles, nn(0) = 1, nn(1) = 0, nn(2) = 1 → tile pairs {0, 1}, {1, 2}; rows 0..2 view a, 3..5 view b.
    mask = positive_mask(torch.tensor([[1], [0], [1]]), 3)
    tiles = {0: {0, 1}, 1: {0, 1, 2}, 2: {1, 2}}  # the tile itself (its other view) and its neighbour pairs
    for row in range(6):
        expected = {s for s in range(6) if s % 3 in tiles[row % 3]} - {row}
        assert set(torch.nonzero(mask[row]).flatten().tolist()) == expected
    assert torch.equal(mask, mask.T) and not mask.diagonal().any()
    # The instance loss with these positives, written out anchor by anchor.
    z = torch.nn.functional.normalize(torch.randn(6, 5), dim=1)
    tau = 0.5
    sim = (z @ z.T / tau).tolist()
    total = 0.0
    for r in range(6):
        pos = [s for s in range(6) if mask[r, s]]
        neg = [s for s in range(6) if s != r and s not in pos]
        total += sum(-sim[r][p] + math.log(math.exp(sim[r][p]) + sum(math.exp(sim[r][n]) for n in neg))
                     for p in pos) / len(pos)
    assert multi_positive_nt_xent(z, mask, tau).item() == pytest.approx(total / 6, rel=1e-5)


def test_contrastive_clustering_loss_of_two_views():
    torch.manual_seed(0)
    features = torch.randn(5, 8)
    view = lambda z, p: {"features": features, "instance": torch.nn.functional.normalize(z, dim=1), "cluster": p}
    z = torch.randn(5, 4)
    p_a, p_b = torch.softmax(torch.randn(5, 3), 1), torch.softmax(torch.randn(5, 3), 1)
    _, cluster0 = contrastive_clustering_loss(view(z, p_a), view(z, p_b), knn=0)
    assert cluster0.item() == pytest.approx(cluster_loss(p_a, p_b, 1.0).item(), rel=1e-6)  # Li et al. with K = 0
    # Views that agree with each other and with the neighbour structure score lower than unrelated ones.
    agree, _ = contrastive_clustering_loss(view(features[:, :4], p_a), view(features[:, :4], p_b), knn=1)
    unrelated, _ = contrastive_clustering_loss(view(features[:, :4], p_a), view(torch.randn(5, 4), p_b), knn=1)
    assert agree < unrelated
    one = {k: v[:1] for k, v in view(z, p_a).items()}
    assert all(v.item() == 0 for v in contrastive_clustering_loss(one, one))
    images = torch.rand(3, 2, 16, 12)
    views = augment_view(images, torch.Generator().manual_seed(0))
    assert views.shape == images.shape and views.min() >= 0 and not torch.allclose(views, images)


# ------------------------------------------------------------------------------------------------ metrics


def test_metrics_six_classes_without_no_data_and_others():
    """Pixels: no-data is never counted; "others" ground truth is removed; predicting "others" is an error."""
    names = ["farmland", "city", "others"]
    farmland, city, others = 0, 1, 2
    target = torch.tensor([farmland, farmland, farmland, city, city, others, IGNORE_INDEX])
    pred = torch.tensor([farmland, farmland, city, city, others, farmland, city])
    confusion = confusion_matrix(pred, target, 3)
    assert confusion.tolist() == [[2, 1, 0], [0, 1, 1], [1, 0, 0]]
    m = segmentation_metrics(confusion, names)
    assert m["pixel_accuracy"] == pytest.approx(3 / 5)
    assert m["per_class"]["farmland"] == {"precision": 1.0, "recall": pytest.approx(2 / 3), "f1": pytest.approx(0.8),
                                          "iou": pytest.approx(2 / 3), "support": 3}
    assert m["per_class"]["city"]["precision"] == 0.5 and m["per_class"]["city"]["recall"] == 0.5
    assert m["mean_f1"] == pytest.approx((0.8 + 0.5) / 2)
    assert m["mean_precision"] == pytest.approx(0.75) and m["mean_recall"] == pytest.approx((2 / 3 + 0.5) / 2)
    assert "others" not in m["per_class"] and m["excluded"] == ["others"] and m["scored"] == ["farmland", "city"]


def test_whu_class_map_scores_the_six_classes(tmp_path):
    root = tmp_path / "masks"
    (root / "train" / "masks").mkdir(parents=True)
    (root / "train" / "images").mkdir(parents=True)
    (root / "class_map.json").write_text(json.dumps({"0": "background", "10": "farmland", "20": "city",
                                                     "30": "village", "40": "water", "50": "forest", "60": "road",
                                                     "70": "others"}))
    Image.fromarray(np.array([[0, 10], [70, 60]], np.uint8)).save(root / "train" / "masks" / "t.png")
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(root / "train" / "images" / "t.png")
    data = MasksExportDataset(root, "train")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no-data is expected, not an unknown value
        labels = data.labels(0)
    assert labels.tolist() == [[IGNORE_INDEX, 0], [6, 5]]
    assert data.no_data_values == [0]
    m = segmentation_metrics(np.eye(7), data.class_names)
    assert m["scored"] == list(WHU_SCORED_CLASSES)


# ------------------------------------------------------------------------------------------------ data


def test_masks_export_reader(tmp_path):
    root = _export(tmp_path / "masks", n_train=2, n_val=1)
    sar = MasksExportDataset(root, "train", "sar")
    item = sar[0]
    assert item["image"].shape == (1, 32, 32) and item["image"].dtype == torch.float32
    # raw 10/20/40 → indices 0..2; raw 0 is no data
    assert sorted(item["mask"].unique().tolist()) == [0, 1, 2, IGNORE_INDEX]
    assert sar.class_names == ["farmland", "city", "water", "others"]
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
    assert "others" not in metrics["per_class"] and metrics["scored"] == ["farmland", "city", "water"]

    # Reloaded checkpoint reproduces the written predictions exactly.
    model, args = load_segmenter(out / "checkpoint.pth", device="cpu")
    val = MasksExportDataset(root, "val", "sar")
    with torch.no_grad():
        pred = model(val[0]["image"][None]).argmax(1)[0].numpy()
    raw = np.array([10, 20, 40, 70])[pred]
    written = np.asarray(Image.open(result["predictions"] / f"{val[0]['stem']}.png"))
    assert np.array_equal(raw, written)

    resumed = train(SegmentConfig(**{**cfg.__dict__, "epochs": 4, "resume": str(out / "checkpoint.pth")}))
    assert [r["epoch"] for r in resumed["history"]] == [0, 1, 2, 3]


# ------------------------------------------------------------------------------------------------ FiftyOne


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


def test_segmenter_learns_easy_tiles(tmp_path):
    """Classes differ by SAR brightness: LANet + CC must score well above chance after 16 steps (3 scored classes:
    the best constant guess gets ≤ 0.4 of the pixels, the untrained net 0.1–0.2; measured 0.57 pixel accuracy and
    0.44 mean F1 here, 0.68 / 0.57 after 10 epochs: evaluation lags the training loss while the batch-norm running
    statistics settle)."""
    root = _export(tmp_path / "masks", n_train=6, n_val=4, size=64, optical=False)
    result = train(SegmentConfig(data=str(root), cc=True, epochs=8, batch_size=3, lr=2e-3, out_dir=str(tmp_path / "r"),
                                 augment=True, device="cpu", progress=False, predict=False))
    metrics = result["metrics"]
    assert metrics["pixel_accuracy"] > 0.45, metrics
    assert metrics["mean_f1"] > 0.35, metrics
    # (a batch of 3 with K = 3 neighbours has no negatives left: L_ins = 0 by definition; L_clu still acts)
    assert result["history"][-1]["loss_cluster"] != 0


def test_augmented_view_leaves_batch_norm_statistics_alone():
    from sardata.train.segment import frozen_bn_statistics

    model = LANet(num_classes=3).train()
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    with frozen_bn_statistics(model):
        model.embed(torch.rand(2, 1, 32, 32) * 5)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    model(torch.rand(2, 1, 32, 32) * 5)  # an ordinary training pass still updates them
    assert not all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())

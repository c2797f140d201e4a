"""Contrastive clustering: losses on hand-made tensors, SAR augmentations, encoder, training and resume."""

import csv
import math

import numpy as np
import pytest
import torch
from PIL import Image

from sardata.embed import augment, contrastive
from sardata.embed.data import SampleImageDataset, load_gray

SMALL = {"image_size": 32, "num_workers": 0, "progress": False}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models on a shared 2-core machine run much faster on one thread than fighting for two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _write_pngs(folder, n=8, size=40, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        img = (rng.gamma(2.0, 0.15, (size, size)) * 255).clip(0, 255).astype(np.uint8)
        if i % 2:
            img[:, : size // 2] = 200  # "land" on half of the images
        path = folder / f"img_{i:02d}.png"
        Image.fromarray(img).save(path)
        paths.append(str(path))
    return paths


# ------------------------------------------------------------------------------------------------ losses


def test_nt_xent_identical_pairs_orthogonal_negatives():
    # Two samples e1, e2; each view identical. Anchor e1: positive cos=1, two negatives cos=0:
    # loss = -log(e^{1/τ} / (e^{1/τ} + 2)) = log(1 + 2 e^{-1/τ}), the same for all four anchors.
    z = torch.eye(2)
    for tau in (0.5, 1.0):
        expected = math.log(1 + 2 * math.exp(-1 / tau))
        assert contrastive.nt_xent(z, z.clone(), tau).item() == pytest.approx(expected, rel=1e-6)
    # Normalisation: scaling a row does not change the loss.
    assert contrastive.nt_xent(z * 3, z, 0.5).item() == pytest.approx(math.log(1 + 2 * math.exp(-2)), rel=1e-6)


def test_nt_xent_matches_explicit_loop():
    torch.manual_seed(0)
    z_a, z_b = torch.randn(5, 7), torch.randn(5, 7)
    tau = 0.5
    z = torch.nn.functional.normalize(torch.cat([z_a, z_b]), dim=1)
    n = 5
    total = 0.0
    for i in range(2 * n):
        pos = (i + n) % (2 * n)
        denom = sum(math.exp(float(z[i] @ z[k]) / tau) for k in range(2 * n) if k != i)
        total += -math.log(math.exp(float(z[i] @ z[pos]) / tau) / denom)
    assert contrastive.nt_xent(z_a, z_b, tau).item() == pytest.approx(total / (2 * n), rel=1e-5)


def test_cluster_entropy_and_cluster_loss():
    m = 4
    uniform = torch.full((6, m), 1 / m)
    collapsed = torch.zeros(6, m)
    collapsed[:, 0] = 1
    assert contrastive.cluster_entropy(uniform).item() == pytest.approx(math.log(m))
    assert contrastive.cluster_entropy(collapsed).item() == pytest.approx(0.0, abs=1e-9)
    # Hard, balanced assignments of 2 samples to 2 clusters: columns are e1, e2 (orthogonal, identical in both
    # views) → NT-Xent over columns = log(1 + 2 e^{-1/τ}) with τ=1, minus H(a)+H(b) = 2·log 2.
    p = torch.eye(2)
    expected = math.log(1 + 2 * math.exp(-1.0)) - 2 * math.log(2)
    assert contrastive.cluster_loss(p, p.clone(), tau=1.0).item() == pytest.approx(expected, rel=1e-6)
    # The entropy term rewards balanced clusters: a collapsed assignment has a higher loss.
    torch.manual_seed(0)
    balanced = torch.softmax(torch.randn(8, m) * 5, dim=1)
    skewed = balanced.clone()
    skewed[:, 0] += 5
    skewed = skewed / skewed.sum(1, keepdim=True)
    gap = contrastive.cluster_loss(skewed, skewed, 1.0) - contrastive.nt_xent(skewed.T, skewed.T, 1.0)
    assert gap.item() == pytest.approx(-2 * contrastive.cluster_entropy(skewed).item(), rel=1e-6)
    assert contrastive.cluster_entropy(skewed) < contrastive.cluster_entropy(balanced)


# ------------------------------------------------------------------------------------------- augmentations


def test_speckle_keeps_mean_and_has_gamma_variance():
    gen = torch.Generator().manual_seed(0)
    img = torch.full((1, 256, 256), 0.5)
    for looks in (1.0, 4.0):
        out = augment.speckle(img, looks, generator=gen)
        assert out.shape == img.shape and torch.isfinite(out).all() and (out >= 0).all()
        assert out.mean().item() == pytest.approx(0.5, rel=0.01)
        # Intensity speckle: variance of the multiplier is 1/L.
        assert (out / 0.5).var().item() == pytest.approx(1 / looks, rel=0.05)
    with pytest.raises(ValueError):
        augment.speckle(img, 0)


def test_db_jitter_is_gain_and_offset_in_db():
    img = torch.tensor([[[0.0, 0.01, 0.1, 1.0]]])
    assert torch.allclose(augment.db_jitter(img, 1.0, 0.0), img, atol=1e-7)
    assert torch.allclose(augment.db_jitter(img, 1.0, 10.0), img * 10, rtol=1e-5)  # +10 dB = ×10
    # scale 2 in dB = square in linear units; zeros stay zero.
    assert torch.allclose(augment.db_jitter(img, 2.0, 0.0), img**2, rtol=1e-5, atol=1e-9)


def test_flip_rot90_permutes_pixels_and_sar_augment_keeps_shape():
    torch.manual_seed(0)
    img = torch.rand(1, 32, 32)
    for _ in range(5):
        out = augment.random_flip_rot90(img)
        assert torch.equal(out.flatten().sort().values, img.flatten().sort().values)
    aug = augment.SarAugment(24)
    for x in (torch.rand(1, 40, 40), torch.rand(3, 1, 40, 40)):
        out = aug(x)
        assert out.shape == x.shape[:-2] + (24, 24)
        assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


# ------------------------------------------------------------------------------------------------- model


def test_encoder_one_channel_and_weights_file(tmp_path):
    from torchvision.models import resnet18

    enc = contrastive.build_encoder()
    assert enc.conv1.in_channels == 1
    assert enc(torch.rand(2, 1, 64, 64)).shape == (2, 512)
    rgb = resnet18(weights=None)
    torch.save(rgb.state_dict(), tmp_path / "r18.pth")
    enc = contrastive.build_encoder(tmp_path / "r18.pth")
    assert torch.allclose(enc.conv1.weight, rgb.conv1.weight.sum(1, keepdim=True))
    torch.save({"not": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="not a ResNet18"):
        contrastive.build_encoder(tmp_path / "bad.pth")


def test_model_outputs_and_nearest_neighbours():
    model = contrastive.ContrastiveClustering(clusters=5).eval()
    with torch.inference_mode():
        h, z, p = model(torch.rand(3, 1, 32, 32))
    assert h.shape == (3, 512) and z.shape == (3, 128) and p.shape == (3, 5)
    assert torch.allclose(p.sum(1), torch.ones(3))
    bank = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.8, 0.2]])
    nn_idx = contrastive.nearest_neighbours(bank, 2, chunk=2)
    assert nn_idx.shape == (5, 2)
    assert set(nn_idx[0].tolist()) == {1, 4} and set(nn_idx[2].tolist()) == {3, 4}
    assert all(i not in row for i, row in enumerate(nn_idx.tolist()))


def test_second_view_comes_from_the_neighbour(tmp_path):
    paths = _write_pngs(tmp_path / "imgs", n=3)
    picker = contrastive._NeighbourPicker(np.array([[2], [0], [1]]))
    ds = SampleImageDataset(paths, 32, views=2, pair_index=picker)
    item = ds[0]
    assert item["image"].shape == (2, 1, 32, 32)
    assert torch.equal(item["image"][0], load_gray(paths[0], 32))
    assert torch.equal(item["image"][1], load_gray(paths[2], 32))


# ----------------------------------------------------------------------------------------------- training


def test_train_cc_knn_positives_and_resume(tmp_path, monkeypatch):
    paths = _write_pngs(tmp_path / "imgs")
    real_epoch = contrastive._cc_epoch
    ran = []
    pairs = []  # (epoch, index, image of the second view) of every item the loader built
    real_pick = contrastive._NeighbourPicker.__call__

    def recording_pick(self, index):
        chosen = real_pick(self, index)
        pairs.append((len(ran), index, chosen))
        return chosen

    monkeypatch.setattr(contrastive._NeighbourPicker, "__call__", recording_pick)

    def interrupt_at_2(*args, **kwargs):
        if args[6] == 2:
            raise KeyboardInterrupt
        ran.append(args[6])
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(contrastive, "_cc_epoch", interrupt_at_2)
    with pytest.raises(KeyboardInterrupt):
        contrastive.train_cc(paths, tmp_path / "run", epochs=2, batch_size=4, clusters=3, knn_positives=3, **SMALL)
    first = torch.load(tmp_path / "run" / "checkpoint.pth", weights_only=True)
    assert first["epoch"] == 1 and first["kind"] == "cc"
    assert first["bank"].abs().sum(1).gt(0).all()  # every sample's feature is in the memory bank after epoch 1
    # epoch 1 has no neighbours yet: both views come from the image itself
    assert pairs and all(j == i for _, i, j in pairs)
    # plant a memory bank whose neighbourhoods cut across the images' own structure (land on odd images):
    # images 0-3 are one tight group, 4-7 another, so each image's 3 nearest neighbours are the rest of its group
    planted = torch.zeros_like(first["bank"])
    planted[:4, 0], planted[4:, 1] = 1.0, 1.0
    planted[:, 2] = torch.linspace(0, 0.01, 8)
    torch.save({**first, "bank": planted}, tmp_path / "run" / "checkpoint.pth")
    pairs.clear()

    def counting(*args, **kwargs):
        ran.append(args[6])
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(contrastive, "_cc_epoch", counting)
    ckpt = contrastive.train_cc(paths, tmp_path / "run", epochs=2, batch_size=4, clusters=3, knn_positives=3, **SMALL)
    assert ran == [1, 2]
    # epoch 2 drew every positive from the planted neighbours, never the image itself nor the other group
    group = [set(range(4)), set(range(4, 8))]
    assert sorted(i for _, i, _ in pairs) == list(range(8))
    assert all(j in group[i // 4] - {i} for _, i, j in pairs), pairs
    state = torch.load(ckpt, weights_only=True)
    assert state["epoch"] == 2
    rows = list(csv.DictReader(open(tmp_path / "run" / "losses.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(np.isfinite(float(r["instance"])) and float(r["entropy"]) > 0 for r in rows)
    assert (tmp_path / "run" / "losses.png").is_file()
    model = contrastive.model_from_checkpoint(state).eval()
    with torch.inference_mode():
        h, p = model.embed(torch.rand(2, 1, 32, 32))
    assert h.shape == (2, 512) and p.shape == (2, 3)


# ------------------------------------------------------------------------------------------ learning, budget


def test_cc_cluster_head_learns_two_trivial_image_families(tmp_path):
    """Two families (speckled sea vs sea with a bright half) end in two different clusters of the cluster head:
    far above the chance level of an untrained head, which puts nearly everything in one cluster."""
    from sklearn.metrics import adjusted_rand_score

    from sardata.embed import data as edata

    paths = _write_pngs(tmp_path / "imgs", n=24, size=32)
    family = np.arange(24) % 2
    ckpt = contrastive.train_cc(paths, tmp_path / "run", steps=30, batch_size=12, clusters=2, knn_positives=0,
                                lr=1e-3, **SMALL)
    state = torch.load(ckpt, weights_only=True)
    assert state["step"] == 30 and state["config"]["input_norm"] == "db_zscore"
    model = contrastive.model_from_checkpoint(state).eval()
    images = edata.to_model_input(torch.stack([load_gray(p, 32) for p in paths]))
    with torch.no_grad():
        _, probs = model.embed(images)
    assert adjusted_rand_score(family, probs.argmax(1).numpy()) > 0.8


def test_cc_defaults_are_seed_003_knn_and_a_step_budget():
    import inspect

    params = inspect.signature(contrastive.train_cc).parameters
    assert params["knn_positives"].default == 3 == contrastive.DEFAULT_KNN
    assert params["steps"].default is None and contrastive.DEFAULT_STEPS > 0
    with pytest.raises(ValueError, match="not both"):
        contrastive.train_cc(["a.png", "b.png"], "unused", steps=2, epochs=2)

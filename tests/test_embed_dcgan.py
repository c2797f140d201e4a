"""BSLM DCGAN: architecture (C12/C13/C14 wiring, 28672-d feature), training files, checkpoint resume."""

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from sardata.embed import data as edata
from sardata.embed import dcgan



@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models on a shared 2-core machine run ~10× faster on one thread than fighting for two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


SMALL = {"image_size": 32, "base_channels": 64, "num_workers": 0, "progress": False}


def _write_pngs(folder, n=8, size=40, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        img = (rng.gamma(2.0, 0.15, (size, size)) * 255).clip(0, 255).astype(np.uint8)
        img[size // 3 : size // 2, size // 3 : size // 2] = 255  # a bright "ship"
        path = folder / f"img_{i:02d}.png"
        Image.fromarray(img).save(path)
        paths.append(str(path))
    return paths


def test_generator_maps_100d_noise_to_256_image():
    torch.manual_seed(0)
    gen = dcgan.Generator().eval()
    noise = dcgan.sample_noise(2)
    assert noise.shape == (2, 100) and noise.min() >= -1 and noise.max() <= 1
    assert noise.min() < 0 < noise.max()  # uniform on [-1, 1], not [0, 1]
    with torch.inference_mode():
        out = gen(noise)
    assert out.shape == (2, 1, 256, 256)
    assert out.abs().max() <= 1.0  # tanh output
    assert [name for name, _ in gen.blocks.named_children()] == [f"G{i}" for i in range(1, 8)]


def test_discriminator_feature_is_concat_of_pooled_c12_c13_c14():
    torch.manual_seed(0)
    disc = dcgan.Discriminator().eval()
    assert [n for n, _ in disc.named_children()][:7] == list(dcgan.BLOCK_NAMES)
    maps = {}
    hooks = [
        getattr(disc, name).register_forward_hook(lambda m, i, o, name=name: maps.__setitem__(name, o.clone()))
        for name in ("C12", "C13", "C14")
    ]
    x = torch.rand(2, 1, 256, 256) * 2 - 1
    with torch.inference_mode():
        feature = disc.features(x)
        logits = disc(x)
    for h in hooks:
        h.remove()
    assert feature.shape == (2, 28672) == (2, disc.feature_dim)
    assert maps["C12"].shape == (2, 256, 16, 16)
    assert maps["C13"].shape == (2, 512, 8, 8)
    assert maps["C14"].shape == (2, 1024, 4, 4)
    expected = torch.cat(
        [maps["C14"], torch.nn.functional.max_pool2d(maps["C13"], 2), torch.nn.functional.max_pool2d(maps["C12"], 4)],
        dim=1,
    ).flatten(1)
    assert torch.equal(feature, expected)
    assert logits.shape == (2,)


@pytest.mark.parametrize("size", [32, 64])
def test_small_sizes_keep_c12_c13_c14_geometry(size):
    disc = dcgan.Discriminator(size, 64).eval()
    gen = dcgan.Generator(size, 64).eval()
    with torch.inference_mode():
        img = gen(dcgan.sample_noise(2))
        assert img.shape == (2, 1, size, size)
        assert disc.features(img).shape == (2, 28 * 64)


def test_bad_geometry_is_rejected():
    with pytest.raises(ValueError, match="power of two"):
        dcgan.Discriminator(100)


def test_train_gan_writes_checkpoint_grids_and_curves(tmp_path):
    paths = _write_pngs(tmp_path / "imgs")
    ckpt = dcgan.train_gan(paths, tmp_path / "run", epochs=2, batch_size=4, **SMALL)
    assert ckpt == tmp_path / "run" / "checkpoint.pth"
    state = torch.load(ckpt, weights_only=True)
    assert state["kind"] == "dcgan" and state["epoch"] == 2
    assert set(state) >= {"generator", "discriminator", "opt_g", "opt_d", "config", "rng", "history"}
    for epoch in (1, 2):
        grid = Image.open(tmp_path / "run" / "samples" / f"epoch_{epoch:03d}.png")
        assert grid.size[0] > 32
    rows = list(csv.DictReader(open(tmp_path / "run" / "losses.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(np.isfinite(float(r["loss_d"])) and float(r["loss_d"]) > 0 for r in rows)
    assert (tmp_path / "run" / "losses.png").stat().st_size > 1000
    disc = dcgan.discriminator_from_checkpoint(state)
    assert torch.equal(disc.C14[0].weight, state["discriminator"]["C14.0.weight"])


def test_interrupted_training_resumes_at_next_epoch(tmp_path, monkeypatch):
    paths = _write_pngs(tmp_path / "imgs")
    real_epoch = dcgan._gan_epoch
    ran = []

    def interrupt_at_2(*args, **kwargs):
        epoch = args[6]
        if epoch == 2:
            raise KeyboardInterrupt
        ran.append(epoch)
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(dcgan, "_gan_epoch", interrupt_at_2)
    with pytest.raises(KeyboardInterrupt):
        dcgan.train_gan(paths, tmp_path / "run", epochs=3, batch_size=4, **SMALL)
    cut = torch.load(tmp_path / "run" / "checkpoint.pth", weights_only=True)
    assert cut["epoch"] == 1 and cut["bn_real"] is False
    # features of an unfinished run would be normalised with training statistics: refused, naming the file
    from sardata.embed.extract import load_embedder

    with pytest.raises(ValueError, match=r"run/checkpoint\.pth: DCGAN checkpoint of an unfinished run.*train-gan"):
        load_embedder("dcgan", checkpoint=tmp_path / "run" / "checkpoint.pth")

    def counting(*args, **kwargs):
        ran.append(args[6])
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(dcgan, "_gan_epoch", counting)
    ckpt = dcgan.train_gan(paths, tmp_path / "run", epochs=3, batch_size=4, **SMALL)
    assert ran == [1, 2, 3]  # epoch 1 was not trained again
    resumed = torch.load(ckpt, weights_only=True)
    assert resumed["epoch"] == 3 and [row["epoch"] for row in resumed["history"]] == [1, 2, 3]
    assert resumed["bn_real"] is True

    # Each epoch is seeded from (seed, epoch): the resumed run equals an uninterrupted one.
    monkeypatch.setattr(dcgan, "_gan_epoch", real_epoch)
    straight = torch.load(dcgan.train_gan(paths, tmp_path / "straight", epochs=3, batch_size=4, **SMALL),
                          weights_only=True)
    for key, value in straight["discriminator"].items():
        assert torch.allclose(value.float(), resumed["discriminator"][key].float(), atol=1e-5), key

    # Already complete: nothing to do.
    ran.clear()
    monkeypatch.setattr(dcgan, "_gan_epoch", counting)
    dcgan.train_gan(paths, tmp_path / "run", epochs=3, batch_size=4, **SMALL)
    assert ran == []


def test_resume_with_other_architecture_is_refused(tmp_path):
    paths = _write_pngs(tmp_path / "imgs", n=4)
    dcgan.train_gan(paths, tmp_path / "run", epochs=1, batch_size=4, **SMALL)
    with pytest.raises(ValueError, match="architecture differs"):
        dcgan.train_gan(paths, tmp_path / "run", epochs=2, batch_size=4, **{**SMALL, "image_size": 64})


def test_unreadable_image_is_skipped_with_warning(tmp_path):
    paths = _write_pngs(tmp_path / "imgs", n=5)
    broken = tmp_path / "imgs" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.warns(UserWarning, match="broken.png"):
        ckpt = dcgan.train_gan(paths + [str(broken)], tmp_path / "run", epochs=1, batch_size=6, **SMALL)
    assert torch.load(ckpt, weights_only=True)["epoch"] == 1


def test_train_on_fiftyone_dataset_uses_work_dir(tmp_path, fo_dataset_name):
    import fiftyone as fo

    from sardata.paths import work_dir

    paths = _write_pngs(tmp_path / "imgs", n=4)
    ds = fo.Dataset(fo_dataset_name)
    ds.add_samples([fo.Sample(filepath=p) for p in paths])
    ckpt = dcgan.train_gan(ds, epochs=1, batch_size=4, **SMALL)
    assert ckpt == work_dir(fo_dataset_name, "dcgan") / "checkpoint.pth"
    assert ckpt.is_file()


def test_batchnorm_is_recalibrated_on_real_images(tmp_path):
    paths = _write_pngs(tmp_path / "imgs", n=6)
    disc = dcgan.Discriminator(32, 64).eval()
    norm = disc.C9[1]
    norm.running_mean.fill_(5.0)  # as if polluted by generated batches
    momentum = norm.momentum
    dataset = edata.SampleImageDataset(paths, 32)
    loader = edata.make_loader(dataset, 6, False, 0, torch.device("cpu"))
    dcgan.recalibrate_batchnorm(disc, loader, torch.device("cpu"))
    x = edata.to_model_input(torch.stack([dataset[i]["image"] for i in range(6)]))  # the training input
    with torch.no_grad():
        pre_norm = disc.C9[0](disc.C8(x))
    torch.testing.assert_close(norm.running_mean, pre_norm.mean((0, 2, 3)), rtol=1e-4, atol=1e-5)
    assert norm.momentum == momentum and not disc.training


# ------------------------------------------------------------------------------------- input norm, budget, learning


def test_standardize_db_is_a_per_image_zscore_in_db():
    rng = np.random.default_rng(0)
    a = rng.integers(1, 255, (2, 1, 16, 16)).astype(np.uint8)
    a[1] = np.clip(a[1].astype(int) // 4, 0, 255)  # a darker image: same scene, lower level
    out = edata.standardize_db(torch.from_numpy(a))
    for i in range(2):
        db = 20 * np.log10(a[i].astype(np.float64) + 1)
        z = np.clip((db - db.mean()) / db.std(), -3, 3) / 3
        np.testing.assert_allclose(out[i].numpy(), z, atol=1e-5)
    # uint8 and [0, 1] floats give the same input; a constant image maps to 0
    torch.testing.assert_close(edata.standardize_db(torch.from_numpy(a).float() / 255), out, atol=1e-4, rtol=0)
    assert edata.standardize_db(torch.full((1, 1, 4, 4), 80, dtype=torch.uint8)).abs().max() == 0
    with pytest.raises(ValueError, match="input_norm"):
        edata.to_model_input(torch.zeros(1, 1, 2, 2), "bogus")


def test_step_budget_and_paper_preset():
    assert dcgan.resolve_budget("paper")["epochs"] == 25 and dcgan.resolve_budget("paper")["image_size"] == 256
    assert dcgan.resolve_budget("default", steps=7)["steps"] == 7
    assert dcgan.resolve_budget("default", epochs=3) | {"steps": None} == dcgan.resolve_budget("default", epochs=3)
    with pytest.raises(ValueError, match="not both"):
        dcgan.resolve_budget("default", steps=3, epochs=2)
    with pytest.raises(ValueError, match="preset"):
        dcgan.resolve_budget("bogus")


def test_train_gan_counts_optimiser_steps_and_records_input_norm(tmp_path):
    paths = _write_pngs(tmp_path / "imgs", n=12)
    # 12 images at batch 4: 3 steps an epoch; 7 steps = 2 full epochs and 1 step of a third
    ckpt = dcgan.train_gan(paths, tmp_path / "run", steps=7, batch_size=4, **SMALL)
    state = torch.load(ckpt, weights_only=True)
    assert state["step"] == 7 and state["epoch"] == 3 and [r["step"] for r in state["history"]] == [3, 6, 7]
    assert state["config"]["input_norm"] == "db_zscore"
    # a larger budget continues the run; another input normalisation cannot resume it
    state = torch.load(dcgan.train_gan(paths, tmp_path / "run", steps=9, batch_size=4, **SMALL), weights_only=True)
    assert state["step"] == 9
    with pytest.raises(ValueError, match="input_norm"):
        dcgan.train_gan(paths, tmp_path / "run", steps=12, batch_size=4, input_norm="none", **SMALL)


def test_zero_steps_is_the_initialised_discriminator_with_real_batchnorm(tmp_path):
    """``steps=0``: no update, the batch norm re-estimated on real images (features can be extracted), and a run
    resumed from it with a budget is the same as one trained from scratch."""
    from sardata.embed.extract import extract_features

    paths = _write_pngs(tmp_path / "imgs", n=8)
    ckpt = dcgan.train_gan(paths, tmp_path / "run", steps=0, batch_size=4, **SMALL)
    state = torch.load(ckpt, weights_only=True)
    assert state["step"] == 0 and state["epoch"] == 0 and state["bn_real"] is True and state["history"] == []
    torch.manual_seed(0)
    dcgan.Generator(32, 64)
    init = dcgan.Discriminator(32, 64).state_dict()  # train_gan's initialisation at seed 0
    weights = [k for k in init if "running" not in k and "num_batches" not in k]
    for k in weights:
        torch.testing.assert_close(state["discriminator"][k], init[k], rtol=0, atol=0)
    disc = dcgan.discriminator_from_checkpoint(state)
    dataset = edata.SampleImageDataset(paths, 32)
    x = edata.to_model_input(torch.stack([dataset[i]["image"] for i in range(8)]))
    with torch.no_grad():
        pre_norm = disc.C9[0](disc.C8(x))
    torch.testing.assert_close(disc.C9[1].running_mean, pre_norm.mean((0, 2, 3)), rtol=1e-4, atol=1e-5)
    features = extract_features(paths, model="dcgan", checkpoint=ckpt, num_workers=0, device="cpu", progress=False)
    assert features.features.shape == (8, 28 * 64) and np.isfinite(features.features).all()

    resumed = torch.load(dcgan.train_gan(paths, tmp_path / "run", steps=3, batch_size=4, **SMALL), weights_only=True)
    straight = torch.load(dcgan.train_gan(paths, tmp_path / "straight", steps=3, batch_size=4, **SMALL),
                          weights_only=True)
    assert resumed["step"] == straight["step"] == 3
    for k, v in straight["discriminator"].items():
        torch.testing.assert_close(resumed["discriminator"][k], v, rtol=0, atol=0)
    with pytest.raises(ValueError, match="at least"):
        dcgan.resolve_budget("default", epochs=0)


def test_gan_learns_to_tell_real_images_from_noise(tmp_path):
    """The discriminator of a short run separates the training images from uniform noise; the untrained one does
    not (its sigmoid outputs are all ~0.5)."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    folder.mkdir()
    paths = []
    for i in range(16):  # dark speckled sea with one bright block: far from uniform noise
        img = (rng.gamma(1.0, 20.0, (32, 32))).clip(0, 255).astype(np.uint8)
        y, x = rng.integers(4, 24, 2)
        img[y : y + 5, x : x + 5] = 250
        Image.fromarray(img).save(folder / f"{i:02d}.png")
        paths.append(str(folder / f"{i:02d}.png"))
    real = edata.to_model_input(torch.stack([edata.load_gray(p, 32) for p in paths]))
    noise = torch.rand(16, 1, 32, 32) * 2 - 1

    def gap(disc):
        disc.eval()
        with torch.no_grad():
            return (torch.sigmoid(disc(real)).mean() - torch.sigmoid(disc(noise)).mean()).item()

    torch.manual_seed(0)
    assert abs(gap(dcgan.Discriminator(32, 64))) < 0.2
    ckpt = dcgan.train_gan(paths, tmp_path / "run", steps=40, batch_size=8, lr=5e-4, **SMALL)
    state = torch.load(ckpt, weights_only=True)
    assert gap(dcgan.discriminator_from_checkpoint(state)) > 0.5
    losses = [row["loss_d"] for row in state["history"]]
    assert losses[-1] < losses[0]

"""Feature extraction: checkpoint rules, cache/resume, order, PCA, FiftyOne fields, CLI."""

import numpy as np
import pytest
import torch
from PIL import Image

from sardata._io import TMP_MARK
from sardata.embed import contrastive, dcgan, extract
from sardata.checkpoints import CHECKPOINT_NAME

N_IMAGES = 10


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models on a shared 2-core machine run much faster on one thread than fighting for two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def image_paths(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(N_IMAGES):
        img = (rng.gamma(2.0, 0.1 + 0.03 * i, (40, 40)) * 255).clip(0, 255).astype(np.uint8)
        path = folder / f"img_{i:02d}.png"
        Image.fromarray(img).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def gan_ckpt(image_paths, tmp_path_factory):
    out = tmp_path_factory.mktemp("gan")
    return dcgan.train_gan(image_paths, out, epochs=1, batch_size=5, image_size=32, base_channels=64,
                           num_workers=0, progress=False)


@pytest.fixture
def dataset(image_paths, fo_dataset_name):
    import fiftyone as fo

    ds = fo.Dataset(fo_dataset_name)
    ds.add_samples([fo.Sample(filepath=p) for p in image_paths])
    return ds


def _count_embedded(monkeypatch):
    """Counts images that go through the model."""
    seen = []
    real = extract._embed_batch

    def counting(embedder, images):
        seen.append(images.shape[0])
        return real(embedder, images)

    monkeypatch.setattr(extract, "_embed_batch", counting)
    return seen


def test_no_checkpoint_is_an_error_unless_random_init_is_asked(dataset):
    with pytest.raises(ValueError, match="no dcgan checkpoint.*train-gan.*allow_random_init"):
        extract.extract_features(dataset, "dcgan", num_workers=0, progress=False)
    with pytest.raises(ValueError, match="unknown model"):
        extract.extract_features(dataset, "vgg", num_workers=0, progress=False)
    result = extract.extract_features(dataset, "dcgan", allow_random_init=True, batch_size=4, num_workers=2,
                                      progress=False)
    assert result.checkpoint_hash == "random-init"
    assert result.features.shape == (N_IMAGES, 28672) and result.features.dtype == np.float32
    assert np.isfinite(result.features).all()
    assert result.sample_ids == dataset.values("id")


def test_wrong_kind_of_checkpoint_is_refused(image_paths, gan_ckpt, tmp_path):
    with pytest.raises(ValueError, match="'dcgan' checkpoint, but model='cc'"):
        extract.extract_features(image_paths, "cc", checkpoint=gan_ckpt, cache_dir=tmp_path, progress=False)


def test_cache_resumes_after_kill_and_keeps_sample_order(dataset, gan_ckpt, tmp_path, monkeypatch):
    real_write = extract._write_shard
    written = []

    def killed_after_two(*args, **kwargs):
        if len(written) == 2:
            raise KeyboardInterrupt("simulated kill")
        written.append(real_write(*args, **kwargs))
        return written[-1]

    monkeypatch.setattr(extract, "_write_shard", killed_after_two)
    cache = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        extract.extract_features(dataset, checkpoint=gan_ckpt, batch_size=3, num_workers=0, cache_dir=cache,
                                 progress=False)
    monkeypatch.setattr(extract, "_write_shard", real_write)
    shard_dir = cache / extract.cache_key("dcgan", extract.file_hash(gan_ckpt), "db_zscore")
    assert len(list(shard_dir.glob("shard-*.npz"))) == 2
    assert not [p for p in shard_dir.iterdir() if TMP_MARK in p.name]

    seen = _count_embedded(monkeypatch)
    resumed = extract.extract_features(dataset, checkpoint=gan_ckpt, batch_size=3, num_workers=0, cache_dir=cache,
                                       progress=False)
    assert sum(seen) == N_IMAGES - 6  # only the samples of the unfinished batches
    assert resumed.features.shape == (N_IMAGES, 28 * 64)

    seen.clear()
    fresh = extract.extract_features(dataset, checkpoint=gan_ckpt, batch_size=4, num_workers=0,
                                     cache_dir=tmp_path / "fresh", progress=False)
    assert sum(seen) == N_IMAGES
    np.testing.assert_allclose(resumed.features, fresh.features, rtol=1e-4, atol=1e-5)

    # A view in another order gets its rows in its own order, all from the cache.
    seen.clear()
    view = dataset.sort_by("filepath", reverse=True)
    reordered = extract.extract_features(view, checkpoint=gan_ckpt, num_workers=0, cache_dir=cache, progress=False)
    assert sum(seen) == 0
    assert reordered.sample_ids == view.values("id")
    row_of = {sid: i for i, sid in enumerate(fresh.sample_ids)}
    np.testing.assert_allclose(reordered.features, fresh.features[[row_of[s] for s in reordered.sample_ids]],
                               rtol=1e-4, atol=1e-5)


def test_default_checkpoint_pca_and_field(dataset, image_paths):
    import fiftyone as fo

    from sardata.paths import work_dir

    ckpt = dcgan.train_gan(dataset, epochs=1, batch_size=5, image_size=32, base_channels=64, num_workers=0,
                           progress=False)
    assert ckpt == work_dir(dataset.name, "dcgan") / CHECKPOINT_NAME
    calls = []
    real_set_values = fo.Dataset.set_values
    monkey = pytest.MonkeyPatch()
    monkey.setattr(fo.Dataset, "set_values", lambda self, *a, **k: calls.append(k) or real_set_values(self, *a, **k))
    try:
        result = extract.extract_features(dataset, "dcgan", pca_dim=4, embedding_field="dcgan_embedding",
                                          num_workers=0, progress=False)
    finally:
        monkey.undo()
    assert result.checkpoint_hash == extract.file_hash(ckpt)
    assert (work_dir(dataset.name, "features") / extract.cache_key("dcgan", result.checkpoint_hash, "db_zscore")).is_dir()
    assert result.features.shape == (N_IMAGES, 4) and result.pca is not None
    assert len(calls) == 1 and calls[0]["key_field"] == "id"  # one batched write, not per-sample saves
    stored = dict(zip(*dataset.values(["id", "dcgan_embedding"])))
    for sid, vec in zip(result.sample_ids, result.features):
        np.testing.assert_allclose(stored[sid], vec, rtol=1e-6)
    # The PCA keeps the leading variance of the 1792-d features, in decreasing order; no spatial layout is left.
    ratios = result.pca.explained_variance_ratio_
    assert list(ratios) == sorted(ratios, reverse=True) and ratios.sum() > 4 / (N_IMAGES - 1)
    assert result.positions == 1 and dataset.get_field("dcgan_embedding").info["positions"] == 1


def test_cc_features_cluster_probs_and_cluster_field(dataset, image_paths, tmp_path):
    ckpt = contrastive.train_cc(image_paths, tmp_path / "cc", epochs=1, batch_size=5, clusters=3, image_size=32,
                                num_workers=0, progress=False)
    result = extract.extract_features(dataset, "cc", checkpoint=ckpt, embedding_field="cc_embedding",
                                      cluster_field="cc_cluster", num_workers=0, progress=False)
    assert result.features.shape == (N_IMAGES, 512)
    assert result.cluster_probs.shape == (N_IMAGES, 3)
    np.testing.assert_allclose(result.cluster_probs.sum(1), 1.0, rtol=1e-5)
    clusters = dict(zip(*dataset.values(["id", "cc_cluster"])))
    assert [clusters[s] for s in result.sample_ids] == result.cluster_probs.argmax(1).tolist()
    assert len(dataset.values("cc_embedding")[0]) == 512


def test_unreadable_image_gets_nan_and_none(dataset, gan_ckpt, tmp_path):
    import fiftyone as fo

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    bad = fo.Sample(filepath=str(broken))
    dataset.add_sample(bad)
    with pytest.warns(UserWarning, match="could not be read"):
        result = extract.extract_features(dataset, checkpoint=gan_ckpt, embedding_field="dcgan_embedding",
                                          num_workers=0, progress=False)
    assert result.failed_ids == [bad.id]
    row = result.sample_ids.index(bad.id)
    assert np.isnan(result.features[row]).all()
    assert np.isfinite(np.delete(result.features, row, axis=0)).all()
    assert dataset[bad.id]["dcgan_embedding"] is None


def test_cli_extract(dataset, gan_ckpt):
    from typer.testing import CliRunner

    import sardata.cli.embed  # noqa: F401  registers the commands
    from sardata.cli._app import app

    runner = CliRunner()
    res = runner.invoke(app, ["embed", "extract", dataset.name, "--model", "dcgan", "--num-workers", "0"])
    assert res.exit_code == 1 and "no dcgan checkpoint" in res.output
    res = runner.invoke(app, ["embed", "extract", dataset.name, "--model", "dcgan", "--checkpoint", str(gan_ckpt),
                              "--pca-dim", "3", "--num-workers", "0"])
    assert res.exit_code == 0, res.output
    vectors = dataset.values("dcgan_embedding")
    assert len(vectors) == N_IMAGES and all(len(v) == 3 for v in vectors)


def test_float_tiff_is_read_through_the_display_remap(tmp_path):
    import tifffile

    from sardata.embed.data import load_gray

    amplitude = np.random.default_rng(0).gamma(1.0, 1.0, (50, 70)).astype(np.float32)
    amplitude[10:20, 10:20] = 50.0  # a bright target
    tifffile.imwrite(tmp_path / "chip.tif", amplitude)
    image = load_gray(tmp_path / "chip.tif", 32)
    assert image.shape == (1, 32, 32) and image.dtype == torch.float32
    assert 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0.05
    assert load_gray(tmp_path / "chip.tif", 32, uint8=True).dtype == torch.uint8


def test_checkpoint_hash_is_remembered_until_the_file_changes(tmp_path, monkeypatch):
    import hashlib
    import os

    first, second = (hashlib.sha256(b).hexdigest()[:16] for b in (b"first", b"second!"))
    ckpt = tmp_path / "checkpoint.pt"
    ckpt.write_bytes(b"first")
    assert extract.file_hash(ckpt) == first
    assert (tmp_path / "checkpoint.pt.sha256.json").is_file()
    hashed = []
    real_sha = hashlib.sha256
    monkeypatch.setattr(extract.hashlib, "sha256", lambda *a: hashed.append(1) or real_sha(*a))
    assert extract.file_hash(ckpt) == first
    assert hashed == []  # served from the sidecar
    ckpt.write_bytes(b"second!")
    os.utime(ckpt, ns=(1, 2))
    assert extract.file_hash(ckpt) == second
    assert hashed == [1]


def test_input_norm_is_part_of_the_cache_key_and_never_mixed(image_paths, gan_ckpt, tmp_path):
    """A checkpoint trained without input standardisation gives features in its own cache entry, and asking it
    for standardised inputs is an error, not a silent mix."""
    old_state = torch.load(gan_ckpt, weights_only=True)
    old_state["config"].pop("input_norm")  # as written before input standardisation existed
    old = tmp_path / "old.pt"
    torch.save(old_state, old)
    new = extract.extract_features(image_paths, "dcgan", checkpoint=gan_ckpt, cache_dir=tmp_path / "cache",
                                   num_workers=0, progress=False)
    legacy = extract.extract_features(image_paths, "dcgan", checkpoint=old, cache_dir=tmp_path / "cache",
                                      num_workers=0, progress=False)
    assert new.input_norm == "db_zscore" and legacy.input_norm == "none"
    assert new.positions == 16 and new.features.shape[1] % 16 == 0
    folders = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert folders == sorted([extract.cache_key("dcgan", new.checkpoint_hash, "db_zscore"),
                              extract.cache_key("dcgan", legacy.checkpoint_hash, "none")])
    assert not np.allclose(new.features, legacy.features)
    with pytest.raises(ValueError, match="trained with input_norm='none'"):
        extract.extract_features(image_paths, "dcgan", checkpoint=old, input_norm="db_zscore",
                                 cache_dir=tmp_path / "cache", num_workers=0, progress=False)

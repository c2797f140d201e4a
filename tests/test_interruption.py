"""kill -9 in the middle of long jobs: feature extraction, export, detector training. A rerun must pick up the
finished work (not redo it), give the same result as an uninterrupted run, and nothing half-written may look done.

Each job runs in a subprocess (same environment: the session's FiftyOne database and caches) that is SIGKILLed once
a trigger file appears. Where a job is too quick to catch mid-way, the subprocess slows one step down by wrapping a
module function with a short sleep (the code under test is unchanged otherwise).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jobs import finish, kill_when, start


def stamps(paths) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in paths}


# --------------------------------------------------------------------------------------------- (a) embeddings

EXTRACT = """
    import json, sys, time
    import numpy as np, torch
    torch.set_num_threads(1)
    from sardata.embed import extract

    paths, cache, out, counter, delay = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
    checkpoint = sys.argv[6]
    embed_batch, write_shard = extract._embed_batch, extract._write_shard

    def counting_embed(embedder, images):  # records every image that goes through the network
        with open(counter, "a") as f:
            f.write(f"{images.shape[0]}\\n")
        return embed_batch(embedder, images)

    def slow_write(*args, **kwargs):  # widens the window between shards so the kill lands mid-run
        path = write_shard(*args, **kwargs)
        time.sleep(delay)
        return path

    extract._embed_batch, extract._write_shard = counting_embed, slow_write
    result = extract.extract_features(paths, model="dcgan", checkpoint=checkpoint, batch_size=1, num_workers=0,
                                      cache_dir=cache, device="cpu", progress=False)
    np.save(out, result.features)
"""


def small_random_discriminator(path: Path) -> Path:
    """An untrained 32-px discriminator as a checkpoint file.

    ``allow_random_init=True`` builds the full 256-px, 1024-channel model, ~50x slower on CPU; a checkpoint is the
    API's way to choose the image size, and its weights are just as random.
    """
    import torch

    from sardata.embed import dcgan

    torch.manual_seed(0)
    net = dcgan.Discriminator(32, 64)
    torch.save({"kind": "dcgan", "config": {"image_size": 32, "base_channels": 64},
                "discriminator": net.state_dict()}, path)
    return path


def _embedded(counter: Path) -> int:
    return sum(int(line) for line in counter.read_text().split()) if counter.exists() else 0


def test_killed_extraction_resumes_without_recomputing_finished_shards(tmp_path):
    from sardata.embed.extract import extract_features, file_hash

    rng = np.random.default_rng(0)
    images = []
    for i in range(10):
        path = tmp_path / "images" / f"chip_{i:02d}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (24, 24), dtype=np.uint8)).save(path)
        images.append(str(path))
    paths_file = tmp_path / "paths.json"
    paths_file.write_text(json.dumps(images))
    checkpoint = small_random_discriminator(tmp_path / "d.pt")
    cache = tmp_path / "cache"
    shards = f"dcgan-{file_hash(checkpoint)}-*/shard-*.npz"  # the folder also names the input normalisation

    first = start(tmp_path, "extract1", EXTRACT, paths_file, cache, tmp_path / "f1.npy", tmp_path / "count1", 0.3,
                  checkpoint)
    kill_when(first, lambda: len(list(cache.glob(shards))) >= 3, tmp_path / "extract1.log")
    survivors = sorted(cache.glob(shards))
    before = stamps(survivors)
    cached = sum(len(np.load(s)["ids"]) for s in survivors)  # every finished shard is readable
    assert 3 <= cached < len(images)
    assert not (tmp_path / "f1.npy").exists()

    second = start(tmp_path, "extract2", EXTRACT, paths_file, cache, tmp_path / "f2.npy", tmp_path / "count2", 0,
                   checkpoint)
    finish(second, tmp_path / "extract2.log")
    assert _embedded(tmp_path / "count2") == len(images) - cached  # only the missing samples were computed
    after = stamps(p for p in cache.glob(shards) if p.name in before)
    assert after == before  # finished shards untouched (same inode, same mtime)

    resumed = np.load(tmp_path / "f2.npy")

    fresh = extract_features(images, model="dcgan", checkpoint=checkpoint, batch_size=4, num_workers=0,
                             cache_dir=tmp_path / "fresh", device="cpu", progress=False).features
    assert resumed.shape == fresh.shape and np.isfinite(resumed).all()
    np.testing.assert_allclose(resumed, fresh, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------------------------- (b) export

EXPORT = """
    import sys, time
    import fiftyone as fo
    import exporters, exporters.coco as coco

    name, out, delay, overwrite = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4] == "1"
    place = coco.place_replicas

    def slow_place(*args, **kwargs):  # one image at a time, slowly: the kill lands mid-export
        files = place(*args, **kwargs)
        time.sleep(delay)
        return files

    coco.place_replicas = slow_place
    exporters.export_view(fo.load_dataset(name), out, "coco", overwrite=overwrite,
                          split_field=None if overwrite else "split")
"""


@pytest.fixture(scope="module")
def ssdd_dataset(tmp_path_factory):
    import fiftyone as fo

    import sardata
    from sardata.synth import synthesize

    name = "test-interruption-ssdd"
    root = synthesize("ssdd", tmp_path_factory.mktemp("ssdd"), n=10)
    if fo.dataset_exists(name):
        fo.delete_dataset(name)
    dataset = sardata.load("ssdd", root, name=name, progress=False)
    yield dataset
    fo.delete_dataset(name)


def _temp_dirs(out: Path) -> list[Path]:
    return [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.sardata-tmp-")]


def _check_complete(out: Path) -> dict:
    manifest = json.loads((out / "manifest.json").read_text())
    for rel in manifest["checksums"]:
        assert (out / rel).is_file(), rel
    return manifest


def test_killed_export_never_looks_complete_and_rerun_succeeds(tmp_path, ssdd_dataset):
    import exporters

    out = tmp_path / "exports" / "coco"
    out.parent.mkdir()
    proc = start(tmp_path, "export1", EXPORT, ssdd_dataset.name, out, 0.5, 0)

    def half_written():
        temps = _temp_dirs(out)
        return bool(temps) and len(list(temps[0].rglob("*.jpg"))) >= 2

    kill_when(proc, half_written, tmp_path / "export1.log")
    assert not out.exists()  # the half-written export lives only in the hidden temporary directory
    assert not list(out.parent.rglob("manifest.json"))
    manifest = exporters.export_view(ssdd_dataset, out, "coco")
    assert manifest["skipped_existing"] is False
    assert _check_complete(out)["counts"]["replicas"] == len(ssdd_dataset)
    assert _temp_dirs(out) == []  # the dead process's temporary directory was cleaned up


def test_killed_overwrite_leaves_the_previous_export_intact(tmp_path, ssdd_dataset):
    import exporters

    out = tmp_path / "exports" / "coco"
    exporters.export_view(ssdd_dataset, out, "coco")
    old = _check_complete(out)
    proc = start(tmp_path, "export2", EXPORT, ssdd_dataset.name, out, 0.5, 1)

    def half_written():
        temps = _temp_dirs(out)
        return bool(temps) and len(list(temps[0].rglob("*.jpg"))) >= 2

    kill_when(proc, half_written, tmp_path / "export2.log")
    assert _check_complete(out)["fingerprint"] == old["fingerprint"]  # the old export, whole
    again = exporters.export_view(ssdd_dataset, out, "coco", split_field=None, overwrite=True)
    assert again["fingerprint"] != old["fingerprint"] and _check_complete(out)["fingerprint"] == again["fingerprint"]
    assert _temp_dirs(out) == []


# --------------------------------------------------------------------------------------------- (c) detector

TRAIN = """
    import sys
    from pathlib import Path
    import torch
    torch.set_num_threads(1)
    from sardata.train.detector import DetectorConfig, train

    data, out, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sys.path.insert(0, sys.argv[4])
    from test_interruption import train_config

    train(DetectorConfig(**train_config(data, out, epochs)))
"""


def train_config(data, out, epochs: int) -> dict:
    """A detector small enough to train an epoch in about a second on one CPU thread."""
    small = dict(rpn_pre_nms_top_n_train=100, rpn_post_nms_top_n_train=50, rpn_pre_nms_top_n_test=50,
                 rpn_post_nms_top_n_test=20, box_batch_size_per_image=32)
    return dict(data=Path(data), arch="faster_rcnn", backbone="mobilenet_v3", out_dir=Path(out), image_size=64,
                batch_size=2, epochs=epochs, workers=0, progress=False, warmup_iters=2, eval_every=100,
                model_options=small)


def make_coco(root: Path, size: int = 64) -> Path:
    """A tiny COCO export: bright rectangles on speckle, 2 train images (one batch per epoch) and 1 test image."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 2), ("test", 1)):
        (root / "images" / split).mkdir(parents=True)
        images, annotations = [], []
        for i in range(n):
            sea = rng.gamma(1.0, 0.15, (size, size))
            x, y = (int(v) for v in rng.integers(4, size - 20, 2))
            sea[y:y + 12, x:x + 10] = 0.95
            Image.fromarray((np.clip(sea, 0, 1) * 255).astype(np.uint8)).save(root / "images" / split / f"{i}.png")
            images.append({"id": i + 1, "file_name": f"{i}.png", "width": size, "height": size})
            annotations.append({"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [x, y, 10, 12],
                                "area": 120, "iscrowd": 0})
        (root / "annotations").mkdir(exist_ok=True)
        coco = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "ship"}]}
        (root / "annotations" / f"{split}.json").write_text(json.dumps(coco))
    return root


def test_killed_training_resumes_at_the_next_epoch(tmp_path):
    from sardata import checkpoints
    from sardata.train.detector import load_detector

    data = make_coco(tmp_path / "coco")
    out = tmp_path / "run"
    epochs = 3
    proc = start(tmp_path, "train1", TRAIN, data, out, epochs, Path(__file__).parent)
    kill_when(proc, lambda: (out / "checkpoint.pth").is_file(), tmp_path / "train1.log", timeout=120)

    for path in out.glob("*.pth"):  # whatever the kill interrupted, every visible checkpoint is whole
        checkpoints.load_checkpoint(path)
    done = int(checkpoints.load_checkpoint(out / "checkpoint.pth")["epoch"])
    assert done < epochs - 1, "the kill came after the last epoch"
    finished = stamps(out / f"model_{e}.pth" for e in range(done + 1))

    import torch

    from sardata.train.detector import DetectorConfig, train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:  # the rerun in this process (torch is already imported here: saves a second start-up)
        history = train(DetectorConfig(resume=out / "checkpoint.pth", **train_config(data, out, epochs)))["history"]
    finally:
        torch.set_num_threads(threads)
    assert [r["epoch"] for r in history] == list(range(epochs))
    state = checkpoints.load_checkpoint(out / "checkpoint.pth")
    assert state["epoch"] == epochs - 1
    assert [r["epoch"] for r in state["history"]] == list(range(epochs))
    assert stamps(out / f"model_{e}.pth" for e in range(done + 1)) == finished  # finished epochs not redone
    assert all((out / f"model_{e}.pth").is_file() for e in range(epochs))
    load_detector(out / "checkpoint.pth")

    # a checkpoint cut short (a copy killed mid-write by a non-atomic tool) never loads: a clear error naming it
    cut = tmp_path / "cut.pth"
    data_bytes = (out / "checkpoint.pth").read_bytes()
    cut.write_bytes(data_bytes[: len(data_bytes) // 2])
    with pytest.raises(ValueError, match="cut.pth"):
        checkpoints.load_checkpoint(cut)
    with pytest.raises(ValueError, match="cut.pth"):
        load_detector(cut)

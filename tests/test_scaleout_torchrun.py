"""Past one machine, compute: ``torchrun --nproc_per_node 2`` (gloo, CPU) trains the detector and extracts features
with the results of one process.

Detector. With DistributedDataParallel the global batch is ``world_size × batch_size`` and the gradients are averaged
over the ranks, so one process at batch ``2B`` and two at ``B`` take the same optimizer steps when (1) each step sees
the same images with the same augmentation, which the trainer guarantees (training order and augmentation are
functions of ``(seed, epoch, index)``, never of the process; :mod:`sardata.train.detector`), (2) the loss is the mean
of per-image terms, so the mean of the two ranks' losses is the loss of the whole batch, and (3) the model draws no
random numbers while training. RetinaNet (focal and box losses normalised per image, then averaged over the images)
on the GroupNorm ``tiny`` backbone meets (2) and (3); Faster R-CNN would not (each rank samples its own anchors and
RoIs). The runs are fp32 (``--no-amp``): bf16 autocast, the default on CPUs with native bf16, rounds a batch of 2
differently from a batch of 4. Plain SGD keeps rounding differences (the all-reduce adds in another order, ~1e-7 relative) from being
amplified the way Adam's division by a tiny second moment can. Then the parameters after N steps agree to ~1e-5, the
logged losses (averaged over the ranks) agree, and so do the test metrics that rank 0 alone computes and writes.

Features: each rank embeds every other sample still to compute into the shared cache; rank 0 assembles and writes
the FiftyOne field, which must equal a one-process extraction.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sardata import checkpoints
from sardata._io import TMP_MARK

pytestmark = [pytest.mark.scaleout, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[1]


def _make_coco(root: Path, size: int = 64, splits=(("train", 8), ("test", 4)), seed: int = 0) -> Path:
    """Bright rectangles on gamma speckle, two per image, all images the same size (no batch padding)."""
    rng = np.random.default_rng(seed)
    for split, n in splits:
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for i in range(n):
            sea = rng.gamma(1.0, 0.15, (size, size))
            for _ in range(2):
                w, h = (int(v) for v in rng.integers(8, 16, 2))
                x, y = (int(v) for v in rng.integers(2, size - 18, 2))
                sea[y:y + h, x:x + w] = 0.9 + 0.1 * rng.random((h, w))
                annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": 1,
                                    "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
            Image.fromarray((np.clip(sea, 0, 1) * 255).astype(np.uint8)).save(root / "images" / split / f"{i}.png")
            images.append({"id": i + 1, "file_name": f"{i}.png", "width": size, "height": size,
                           "sample_id": f"{split}{i:022d}", "replica": 0})
        (root / "annotations").mkdir(exist_ok=True)
        (root / "annotations" / f"{split}.json").write_text(json.dumps(
            {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "ship"}]}))
    return root


def _env(**extra) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "FIFTYONE_DO_NOT_TRACK": "true", **extra}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)  # the launcher's, never the test session's
    return env


def _sardata(args: list[str], nproc: int | None, **env) -> subprocess.CompletedProcess:
    """``sardata ARGS`` as one plain process (``nproc`` None) or under ``torchrun --standalone``."""
    cli = ["-c", "from sardata.cli import main; main()"]
    if nproc is None:
        command = [sys.executable, *cli, *args]
    else:  # torchrun's own entry point, so the test needs no `torchrun` script on PATH
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                   "--no-python", sys.executable, *cli, *args]
    done = subprocess.run(command, env=_env(**env), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return done


def _train(coco: Path, out: Path, nproc: int | None, batch_size: int, iterations: int = 4) -> None:
    _sardata(["train", "detector", "--data", str(coco), "--arch", "retinanet", "--preset", "cpu", "--backbone",
              "tiny", "--crop-size", "0", "--image-size", "64", "--batch-size", str(batch_size), "--iterations",
              str(iterations),
              "--optimizer", "sgd", "--lr", "0.01", "--momentum", "0.9", "--weight-decay", "0.0001",
              "--warmup-iters", "1", "--workers", "0", "--device", "cpu", "--seed", "3", "--out", str(out),
              "--no-amp"], nproc)  # fp32: bf16 rounds batches of 2 and of 4 differently (3e-5 after 4 steps)


def test_two_processes_train_the_detector_of_one_at_twice_the_batch(tmp_path):
    coco = _make_coco(tmp_path / "coco")
    one, two = tmp_path / "one", tmp_path / "two"
    _train(coco, one, None, batch_size=4)  # one plain process, global batch 4
    _train(coco, two, 2, batch_size=2)  # two ranks × 2 = global batch 4

    first, second = (checkpoints.load_checkpoint(d / "checkpoint.pth") for d in (one, two))
    assert first["epoch"] == second["epoch"] == 1  # 8 images / global batch 4 = 2 steps per epoch, 4 steps
    assert [r["iters"] for r in second["history"]] == [2, 2]
    # Training moved the parameters far more than the tolerance: the comparison below can fail. (An iteration
    # budget keeps no per-epoch model, so the reference is a 2-step run of the same seed.)
    _train(coco, tmp_path / "half", None, batch_size=4, iterations=2)
    after_epoch0 = checkpoints.load_checkpoint(tmp_path / "half" / "checkpoint.pth")["model"]
    moved = max((first["model"][k].float() - after_epoch0[k].float()).abs().max().item() for k in after_epoch0)
    assert moved > 1e-3, moved
    worst = max((first["model"][k].float() - second["model"][k].float()).abs().max().item() for k in first["model"])
    assert worst < 1e-5, f"parameters differ by {worst:.2e} between 1 process at batch 4 and 2 at batch 2"
    assert set(first["model"]) == set(second["model"])

    # The logged losses are the global batch's (averaged over ranks), so they match too.
    for a, b in zip(first["history"], second["history"]):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-6)
        assert a["lr"] == pytest.approx(b["lr"], rel=1e-9)
    # Rank 0's evaluation: the same detections (4 steps are too few for a non-zero AP, so the detections themselves
    # are compared: boxes and scores), hence the same metrics.
    predictions = [json.loads((d / "predictions_test.json").read_text()) for d in (one, two)]
    assert len(predictions[0]) == len(predictions[1]) > 10
    for a, b in zip(*(sorted(p, key=lambda r: (r["image_id"], -r["score"], r["bbox"])) for p in predictions)):
        assert (a["image_id"], a["category_id"]) == (b["image_id"], b["category_id"])
        assert a["score"] == pytest.approx(b["score"], abs=1e-4)
        assert a["bbox"] == pytest.approx(b["bbox"], abs=0.05)
    metrics = [json.loads((d / "metrics_test.json").read_text()) for d in (one, two)]
    for key in ("AP50", "mAP", "AR100", "n_pred"):
        assert metrics[0][key] == pytest.approx(metrics[1][key], abs=1e-3), key

    # Rank 0 alone wrote: one set of checkpoints, curves and predictions, and the config records the world size.
    assert json.loads((two / "config.json").read_text())["world_size"] == 2
    assert sorted(p.name for p in two.glob("*.pth")) == ["checkpoint.pth", "model_1.pth"]
    assert not [p.name for p in two.iterdir() if TMP_MARK in p.name]  # no rank left a half-written file
    assert {p["sample_id"] for p in predictions[1]} <= {f"test{i:022d}" for i in range(4)}


def test_two_processes_extract_the_features_of_one(tmp_path, fo_dataset_name):
    import fiftyone as fo

    from sardata.embed.extract import extract_features

    rng = np.random.default_rng(1)
    samples = []
    for i in range(10):  # 10 samples, batch 2: rank 0 gets 5 samples (3 batches), rank 1 gets 5
        path = tmp_path / "images" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray((rng.gamma(1.0, 0.2, (48, 64)).clip(0, 1) * 255).astype(np.uint8)).save(path)
        samples.append(fo.Sample(filepath=str(path)))
    dataset = fo.Dataset(fo_dataset_name)
    dataset.persistent = True  # the ranks are other processes: they must find it
    dataset.add_samples(samples)

    home = tmp_path / "home"  # the ranks' feature cache: work_dir(dataset, "features") under SARDATA_HOME
    _sardata(["embed", "extract", fo_dataset_name, "--random-init", "--batch-size", "2", "--num-workers", "0",
              "--device", "cpu"], 2, SARDATA_HOME=str(home))
    shards = list(home.glob(f"{fo_dataset_name}/features/*/shard-*.npz"))
    pids = {p.stem.rsplit("-", 1)[1] for p in shards}
    assert len(pids) == 2 and len(shards) == 6, [p.name for p in shards]  # both ranks computed, 3 batches each

    dataset.reload()
    two = np.stack(dataset.values("dcgan_embedding"))
    torch.set_num_threads(1)
    one = extract_features(dataset, model="dcgan", allow_random_init=True, batch_size=4, num_workers=0,
                           device="cpu", cache_dir=tmp_path / "one-process", progress=False)
    assert one.sample_ids == dataset.values("id")
    assert two.shape == one.features.shape == (10, 28672)
    assert np.isfinite(two).all() and two.std() > 0
    np.testing.assert_allclose(two, one.features, rtol=1e-4, atol=1e-5)
    assert dataset.get_field("dcgan_embedding").info["checkpoint_hash"] == "random-init"


def test_shard_splits_work_disjointly_and_completely():
    from sardata import runtime

    items = list(range(11))
    parts = [runtime.shard(items, rank, 3) for rank in range(3)]
    assert parts == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8]]
    assert runtime.shard(items) == items  # outside a process group: one rank holds everything
    assert runtime.get_world_size() == 1 and runtime.is_main_process()
    assert runtime.all_gather_list(["a"]) == ["a"] and runtime.all_reduce_mean({"x": 2.0}) == {"x": 2.0}

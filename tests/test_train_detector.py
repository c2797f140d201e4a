"""Detector trainer: every architecture trains, checkpoints reload exactly, resume continues, torchrun path runs."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sardata import checkpoints
from sardata.train import common
from sardata.train.coco_data import CocoDetection, collate
from sardata.train.detector import (
    DetectorConfig,
    build_detector,
    load_detector,
    predict,
    train,
    train_one_epoch,
    warmup_step_lambda,
)



@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: on a shared 2-core machine two OpenMP threads per process spin against each other."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def make_coco(root: Path, size: int = 64, splits=(("train", 4, 2), ("test", 2, 1)), seed: int = 0) -> Path:
    """Bright rectangles (ships) on gamma speckle; ``(split, n_images, n_replicas_of_first)`` per split.

    Replicated copies share a ``sample_id`` and differ in ``replica``, as sardata's exporter writes them.
    """
    rng = np.random.default_rng(seed)
    for split, n, replicas in splits:
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for i in range(n):
            sea = rng.gamma(1.0, 0.15, (size, size))
            boxes = []
            for _ in range(2):
                w, h = rng.integers(8, 16, 2)
                x, y = rng.integers(2, size - 18, 2)
                sea[y:y + h, x:x + w] = 0.9 + 0.1 * rng.random((h, w))
                boxes.append([int(x), int(y), int(w), int(h)])
            pixels = (np.clip(sea, 0, 1) * 255).astype(np.uint8)
            name = f"{split}_{i}.png"
            Image.fromarray(pixels).save(root / "images" / split / name)
            copies = 1 + (replicas if i == 0 else 0)
            for replica in range(copies):
                image_id = len(images) + 1
                images.append({"id": image_id, "file_name": name, "width": size, "height": size,
                               "sample_id": f"{split}{i:022d}", "replica": replica})
                for b in boxes:
                    annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                                        "bbox": b, "area": b[2] * b[3], "iscrowd": 0})
        coco = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "ship"}]}
        (root / "annotations").mkdir(exist_ok=True)
        (root / "annotations" / f"{split}.json").write_text(json.dumps(coco))
    return root


@pytest.fixture(scope="module")
def coco_dir(tmp_path_factory):
    return make_coco(tmp_path_factory.mktemp("coco"))


#: Fewer proposals and sampled RoIs: the R-CNN box head on 512 RoIs/image dominates CPU time at test sizes.
SMALL_RCNN = dict(rpn_pre_nms_top_n_train=200, rpn_post_nms_top_n_train=100, rpn_pre_nms_top_n_test=100,
                  rpn_post_nms_top_n_test=50, box_batch_size_per_image=64)


def _batch(coco_dir, n=2):
    dataset = CocoDetection(coco_dir, "train")
    return collate([dataset[i] for i in range(n)])


@pytest.mark.parametrize(
    "arch,backbone,size,batch",
    [
        ("faster_rcnn", "resnet18", 64, 2),
        ("cascade_rcnn", "resnet18", 64, 2),
        ("retinanet", "mobilenet_v3", 64, 2),
        ("fcos", "mobilenet_v2", 64, 2),
        ("ssd", "vgg16", 300, 1),  # VGG16-SSD needs ≥ 300 px for its last 3×3 maps
    ],
)
def test_each_arch_trains_two_steps_and_predicts(coco_dir, arch, backbone, size, batch):
    torch.manual_seed(0)
    options = SMALL_RCNN if arch.endswith("rcnn") else {}
    model = build_detector(arch, backbone, num_classes=2, image_size=size, **options)
    dataset = CocoDetection(coco_dir, "train", train=True)
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, range(2 * batch)), batch_size=batch,
                                         collate_fn=collate)
    params = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in params]
    optimizer = torch.optim.SGD(params, lr=0.001, momentum=0.9)
    losses = train_one_epoch(model, optimizer, loader, torch.device("cpu"), 0, progress=False)
    assert np.isfinite(losses["loss"]) and losses["loss"] > 0
    changed = sum(not torch.equal(b, p) for b, p in zip(before, params))
    assert changed > len(params) // 2, f"only {changed} of {len(params)} parameter tensors were updated"
    model.eval()
    with torch.no_grad():
        out = model([dataset[0][0]])
    assert set(out[0]) >= {"boxes", "scores", "labels"} and out[0]["boxes"].shape[1] == 4
    if arch != "ssd":  # torchvision's structure kept: the FPN's dict of levels
        features = model.backbone(torch.zeros(1, 3, 64, 64))
        assert isinstance(features, dict) and all(f.shape[1] == 256 for f in features.values())


def test_cascade_stages_follow_the_paper():
    model = build_detector("cascade_rcnn", "resnet18", num_classes=3, image_size=64, **SMALL_RCNN)
    stages = model.roi_heads.stages
    assert [s.proposal_matcher.high_threshold for s in stages] == [0.5, 0.6, 0.7]
    assert [tuple(s.box_coder.weights) for s in stages] == [(10, 10, 5, 5), (20, 20, 10, 10), (30, 30, 15, 15)]
    assert all(s.fg_bg_sampler.batch_size_per_image == 64 for s in stages)  # sampling options reach every stage
    assert all(s.box_predictor.cls_score.out_features == 3 for s in stages)
    assert len({id(s.box_head) for s in stages}) == 3  # a head per stage, one shared RoIAlign
    assert len({id(s.box_roi_pool) for s in stages}) == 1


def test_resnet50_default_resizes_to_512_and_normalises_with_the_given_statistics():
    model = build_detector("faster_rcnn", "resnet50", num_classes=2, image_mean=[0.3] * 3, image_std=[0.2] * 3)
    model.eval()
    images, _ = model.transform([torch.full((3, 200, 400), 0.5)])
    assert images.image_sizes == [(256, 512)]  # the longer side to 512, aspect kept
    torch.testing.assert_close(images.tensors[0, :, :256, :512], torch.full((3, 256, 512), 1.0))  # (0.5-0.3)/0.2
    assert list(model.backbone(torch.zeros(1, 3, 64, 64))) == ["0", "1", "2", "3", "pool"]
    # From scratch every backbone layer trains and norm layers are GroupNorm (batch 4 cannot estimate BN statistics).
    assert all(p.requires_grad for p in model.backbone.body.parameters())
    assert any(isinstance(m, torch.nn.GroupNorm) for m in model.backbone.body.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.backbone.body.modules())


def test_backbone_weights_from_file_are_loaded_and_frozen(tmp_path):
    import torchvision

    net = torchvision.models.resnet18(weights=None)
    path = tmp_path / "r18.pth"
    torch.save(net.state_dict(), path)
    model = build_detector("retinanet", "resnet18", 2, image_size=64, backbone_weights=str(path), trainable_layers=2)
    assert torch.equal(model.backbone.body.conv1.weight, net.conv1.weight)
    assert not model.backbone.body.layer2[0].conv1.weight.requires_grad
    assert model.backbone.body.layer4[0].conv1.weight.requires_grad
    with pytest.raises(ValueError, match="neither an existing file"):
        build_detector("retinanet", "resnet18", 2, backbone_weights="no/such/file.pth")


def test_overfit_one_batch_loss_falls(coco_dir):
    torch.manual_seed(0)
    model = build_detector("faster_rcnn", "mobilenet_v3", num_classes=2, image_size=64, **SMALL_RCNN)
    images, targets = _batch(coco_dir)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    model.train()
    losses = []
    for _ in range(12):
        loss = sum(model(list(images), list(targets)).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.6 * losses[0], losses


def test_checkpoint_reloads_to_identical_outputs(tmp_path, coco_dir):
    torch.manual_seed(0)
    kwargs = dict(arch="cascade_rcnn", backbone="resnet18", num_classes=2, image_size=64,
                  image_mean=[0.2] * 3, image_std=[0.1] * 3, **SMALL_RCNN)
    model = build_detector(**kwargs).eval()
    # Low threshold so the untrained model returns boxes to compare.
    model.roi_heads.stages[-1].score_thresh = 0.0
    image = CocoDetection(coco_dir, "test")[0][0]
    common.save_checkpoint(tmp_path, 0, model, args={"model_kwargs": kwargs})
    reloaded, args = load_detector(tmp_path / "checkpoint.pth", device="cpu")
    reloaded.roi_heads.stages[-1].score_thresh = 0.0
    assert args["model_kwargs"]["arch"] == "cascade_rcnn"
    with torch.no_grad():
        a, b = model([image])[0], reloaded([image])[0]
    assert len(a["boxes"]) > 0
    assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["scores"], b["scores"])


def test_non_finite_loss_stops_training():
    class Broken(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, images, targets):
            return {"loss": self.w * float("nan")}

    model = Broken()
    loader = [([torch.zeros(3, 8, 8)], [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}])]
    with pytest.raises(FloatingPointError, match="nan"):
        train_one_epoch(model, torch.optim.SGD(model.parameters(), lr=0.1), loader, torch.device("cpu"), 0,
                        progress=False)


def test_schedule_warms_up_then_steps():
    factor = warmup_step_lambda(iters_per_epoch=10, warmup_iters=5, warmup_factor=0.001, lr_steps=(2, 3), gamma=0.1)
    assert factor(0) == pytest.approx(0.001)
    assert factor(5) == 1.0 and factor(19) == 1.0
    assert factor(20) == pytest.approx(0.1) and factor(30) == pytest.approx(0.01)


def test_config_rejects_bad_combinations(coco_dir):
    with pytest.raises(ValueError, match="ssd"):
        DetectorConfig(data=coco_dir, arch="ssd", backbone="resnet50").validate()
    with pytest.raises(ValueError, match="resume"):
        DetectorConfig(data=coco_dir, test_only=True).validate()
    with pytest.raises(ValueError, match="unknown arch"):
        DetectorConfig(data=coco_dir, arch="yolo").validate()


def test_dataset_reads_replicas_for_training_and_dedups_for_eval(coco_dir):
    assert len(CocoDetection(coco_dir, "train")) == 6  # 4 images + 2 replicated copies
    unique = CocoDetection(coco_dir, "train", dedup=True)
    assert len(unique) == 4 and all(im["replica"] == 0 for im in unique.images)
    image, target = unique[0]
    assert image.shape == (3, 64, 64) and 0 <= image.min() and image.max() <= 1
    assert target["boxes"].shape == (2, 4) and target["labels"].tolist() == [1, 1]
    assert (target["boxes"][:, 2:] > target["boxes"][:, :2]).all()


def test_train_under_torchrun_then_resume_and_test_only(tmp_path, coco_dir, monkeypatch):
    out = tmp_path / "run"
    # A one-process torchrun world on gloo: exercises DistributedDataParallel + DistributedSampler on CPU.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for key, value in {"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": str(port)}.items():
        monkeypatch.setenv(key, value)
    cfg = dict(data=coco_dir, arch="faster_rcnn", backbone="mobilenet_v3", out_dir=out, image_size=64, batch_size=2,
               workers=0, progress=False, warmup_iters=2, model_options=SMALL_RCNN)
    first = train(DetectorConfig(epochs=1, **cfg))
    assert torch.distributed.is_available() and not torch.distributed.is_initialized()  # cleaned up
    for name in ("model_0.pth", "checkpoint.pth", "metrics.csv", "metrics.json", "metrics.png", "config.json"):
        assert (out / name).is_file(), name
    assert [r["epoch"] for r in first["history"]] == [0]
    # From scratch, the input is standardised per image in dB inside the model, not with ImageNet's RGB statistics.
    config = json.loads((out / "config.json").read_text())
    assert config["model_kwargs"]["db"] is True and config["categories"] == [{"id": 1, "name": "ship"}]
    assert {"loss", "lr", "mAP", "AP50"} <= set(first["history"][0])
    preds = json.loads(first["predictions"].read_text())
    assert all("sample_id" in p and len(p["bbox"]) == 4 for p in preds)
    assert len({p["image_id"] for p in preds}) <= 2  # one test image per sample, the replica is not predicted

    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(key)
    second = train(DetectorConfig(epochs=2, resume=out / "checkpoint.pth", **cfg))
    assert [r["epoch"] for r in second["history"]] == [0, 1]
    assert (out / "model_1.pth").is_file()
    ckpt = checkpoints.load_checkpoint(out / "checkpoint.pth")
    assert ckpt["epoch"] == 1 and set(ckpt) >= {"model", "optimizer", "lr_scheduler", "args", "epoch"}
    assert ckpt["lr_scheduler"]["last_epoch"] > checkpoints.load_checkpoint(out / "model_0.pth")["lr_scheduler"]["last_epoch"]

    only = train(DetectorConfig(epochs=2, resume=out / "checkpoint.pth", test_only=True, **cfg))
    assert only["history"] == [] and set(only["metrics"]) >= {"mAP", "AP50"}
    model, _ = load_detector(out / "checkpoint.pth", device="cpu")
    assert len(predict(model, coco_dir, "test", progress=False)) == len(json.loads(only["predictions"].read_text()))

    from typer.testing import CliRunner

    from sardata.cli import app

    # --test-only takes the architecture from the checkpoint (no --arch/--backbone needed).
    base = ["train", "detector", "--data", str(coco_dir), "--out", str(out), "--workers", "0"]
    (out / "predictions_test.json").unlink()
    result = CliRunner().invoke(app, base + ["--test-only", "--resume", str(out / "checkpoint.pth")])
    assert result.exit_code == 0, result.output
    assert "AP50" in result.output and (out / "predictions_test.json").is_file()
    bad = CliRunner().invoke(app, base + ["--test-only"])
    assert bad.exit_code == 1 and "--resume" in bad.output


def test_cosine_schedule_warms_up_then_decays_to_final_factor():
    from sardata.train.engine import warmup_cosine_lambda

    factor = warmup_cosine_lambda(total_iters=110, warmup_iters=10, warmup_factor=0.001, final_factor=0.01)
    assert factor(0) == pytest.approx(0.001)
    assert factor(10) == pytest.approx(1.0)
    assert factor(60) == pytest.approx(0.01 + 0.99 * 0.5)  # half way through the cosine
    assert factor(110) == pytest.approx(0.01) and factor(500) == pytest.approx(0.01)
    values = [factor(i) for i in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_train_one_epoch_stops_after_max_iters():
    class Counting(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))
            self.calls = 0

        def forward(self, images, targets):
            self.calls += 1
            return {"loss_a": self.w ** 2}

    model = Counting()
    batch = ([torch.zeros(3, 8, 8)], [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}])
    out = train_one_epoch(model, torch.optim.SGD(model.parameters(), lr=0.1), [batch] * 5, torch.device("cpu"), 0,
                          progress=False, max_iters=3)
    assert model.calls == 3 and out["iters"] == 3
    assert out["loss"] == pytest.approx(out["loss_a"])


def test_tiled_forward_finds_boxes_in_every_tile_once():
    from sardata.train.engine import tiled_forward

    class BrightBlobs(torch.nn.Module):
        """A fake detector: one box around the brightest pixel of the window, in window coordinates."""

        def forward(self, images):
            outs = []
            for image in images:
                flat = int(image[0].argmax())
                y, x = divmod(flat, image.shape[-1])
                box = torch.tensor([[x - 2.0, y - 2.0, x + 3.0, y + 3.0]])
                outs.append({"boxes": box, "scores": torch.tensor([float(image[0, y, x])]),
                             "labels": torch.tensor([1])})
            return outs

    image = torch.zeros(3, 300, 500)
    image[:, 40, 60] = 1.0  # only in the top-left window
    image[:, 250, 450] = 0.9  # only in the bottom-right window
    out = tiled_forward(BrightBlobs(), image, tile_size=200, overlap=40)
    centres = sorted(((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in out["boxes"].tolist() if True)
    assert (60.5, 40.5) in centres and (450.5, 250.5) in centres


# --------------------------------------------------------------------------------------------- crops, negatives


def _target(boxes):
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    return {"boxes": boxes, "labels": torch.ones(len(boxes), dtype=torch.int64),
            "area": (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]),
            "iscrowd": torch.zeros(len(boxes), dtype=torch.int64), "image_id": 1}


class _FixedWindow:
    """A stand-in for ``random``: every crop window starts at ``(y, x)``."""

    def __init__(self, y, x):
        self.values = [y, x]
        self.i = 0

    def randint(self, a, b):
        value = self.values[self.i % 2]
        self.i += 1
        return min(max(value, a), b)


def test_crop_keeps_boxes_mostly_inside_clipped_and_drops_slivers():
    from sardata.train.coco_data import random_crop

    image = torch.zeros(3, 100, 100)
    # window [20, 84) in x and y: box A fully inside, B 60 % inside (kept, clipped), C 20 % inside (dropped)
    target = _target([[30, 30, 40, 40], [76, 30, 86, 40], [82, 50, 92, 60]])
    crop, out = random_crop(image, target, 64, tries=1, rng=_FixedWindow(20, 20))
    assert crop.shape == (3, 64, 64)
    assert out["boxes"].tolist() == [[10, 10, 20, 20], [56, 10, 64, 20]]
    assert out["labels"].tolist() == [1, 1] and out["area"].tolist() == [100, 80]
    assert out["iscrowd"].tolist() == [0, 0]


def test_crop_redraws_windows_that_would_cut_a_box_into_a_sliver():
    from sardata.train.coco_data import random_crop

    class Sequence:
        def __init__(self, values):
            self.values = list(values)

        def randint(self, a, b):
            return self.values.pop(0)

    image = torch.zeros(3, 100, 100)
    target = _target([[60, 10, 70, 20]])
    # the first window (x0 = 67) would keep 30 % of the box (a dropped sliver): redrawn; the next (x0 = 50) holds it
    _, out = random_crop(image, target, 32, rng=Sequence([0, 67, 0, 50]))
    assert out["boxes"].tolist() == [[10, 10, 20, 20]]


def test_images_without_boxes_train_as_negatives(tmp_path):
    root = make_coco(tmp_path / "coco", splits=(("train", 2, 0),))
    coco = json.loads((root / "annotations" / "train.json").read_text())
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] != 2]  # image 2: sea only
    (root / "annotations" / "train.json").write_text(json.dumps(coco))
    dataset = CocoDetection(root, "train", train=True, crop_size=48)
    assert len(dataset) == 2
    empty = [dataset[i][1] for i in range(2) if dataset.images[i]["id"] == 2][0]
    assert empty["boxes"].shape == (0, 4)
    torch.manual_seed(0)
    model = build_detector("faster_rcnn", "tiny", 2, native=True, db=True, representation_size=64, **SMALL_RCNN)
    losses = model([dataset[1][0]], [empty])  # a negative alone: classification losses, no box regression
    assert losses["loss_objectness"] > 0 and losses["loss_classifier"] > 0
    assert losses["loss_box_reg"] == 0 and losses["loss_rpn_box_reg"] == 0


# --------------------------------------------------------------------------------------------- categories


def test_categories_that_do_not_match_the_model_are_a_clear_error(tmp_path, coco_dir):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(coco_dir, other)
    test = json.loads((other / "annotations" / "test.json").read_text())
    test["categories"] = [{"id": 1, "name": "tanker"}]
    (other / "annotations" / "test.json").write_text(json.dumps(test))
    cfg = dict(arch="faster_rcnn", backbone="tiny", preset="cpu", iterations=1, batch_size=2, workers=0,
               progress=False, model_options=SMALL_RCNN)
    with pytest.raises(ValueError, match=r"test\.json.*tanker.*train\.json.*ship"):
        train(DetectorConfig(data=other, out_dir=tmp_path / "a", **cfg))
    first = train(DetectorConfig(data=coco_dir, out_dir=tmp_path / "b", **cfg))
    with pytest.raises(ValueError, match=r"test\.json.*tanker.*model config of .*checkpoint\.pth.*ship"):
        train(DetectorConfig(data=other, out_dir=tmp_path / "c", resume=first["checkpoint"], test_only=True, **cfg))
    zero = tmp_path / "zero"
    shutil.copytree(coco_dir, zero)
    for split in ("train", "test"):
        coco = json.loads((zero / "annotations" / f"{split}.json").read_text())
        coco["categories"] = [{"id": 0, "name": "ship"}]
        (zero / "annotations" / f"{split}.json").write_text(json.dumps(coco))
    with pytest.raises(ValueError, match="train.json: category ids must start at 1"):
        train(DetectorConfig(data=zero, out_dir=tmp_path / "d", **cfg))


# --------------------------------------------------------------------------------------------- anchors, input


def test_anchors_follow_the_box_sizes():
    from sardata.train.anchors import anchor_fit, derive_anchors

    rng = np.random.default_rng(0)
    scale = np.exp(rng.normal(np.log(12), 0.5, 400))  # SSDD-like: median 12 px
    ratio = np.exp(rng.choice([-0.9, 0.0, 0.9], 400) + rng.normal(0, 0.1, 400))
    wh = np.stack([scale / np.sqrt(ratio), scale * np.sqrt(ratio)], axis=1)
    plan = derive_anchors(wh, [4, 8, 16, 32, 64])
    assert 6 <= plan["base"] <= 12  # an 8–16 px-ish anchor at stride 4, not torchvision's 32
    assert [level[0] for level in plan["sizes"]] == pytest.approx([plan["base"] * 2**i for i in range(5)], abs=0.2)
    low, mid, high = plan["aspect_ratios"][0]
    assert low < 0.6 and 0.8 < mid < 1.25 and high > 1.7  # the three ship orientations
    assert plan["fit"] > 0.9
    coco_default = anchor_fit(wh, [[32], [64], [128], [256], [512]], (0.5, 1.0, 2.0))
    assert coco_default < 0.3 < plan["fit"]  # the COCO defaults leave most ships without an anchor


def test_anchor_floor_in_strides_lets_the_finest_anchor_follow_small_ships():
    from sardata.train.anchors import anchor_fit, derive_anchors

    rng = np.random.default_rng(1)
    scale = np.exp(rng.normal(np.log(8), 0.4, 400))  # mostly ships under 10 px
    ratio = np.exp(rng.choice([-0.9, 0.0, 0.9], 400) + rng.normal(0, 0.1, 400))
    wh = np.stack([scale / np.sqrt(ratio), scale * np.sqrt(ratio)], axis=1)
    floored = derive_anchors(wh, [4, 8, 16, 32, 64])
    assert floored["base"] == 8.0  # the default floor: 2 strides of the stride-4 level
    free = derive_anchors(wh, [4, 8, 16, 32, 64], octaves=2, min_strides=1.0)
    assert 4.0 <= free["base"] < 8.0  # the k-means centre of the smallest boxes, above 1 stride
    assert len(free["sizes"][0]) == 2 and free["sizes"][0][1] == pytest.approx(free["base"] * 2**0.5, abs=0.1)
    small = np.sqrt(wh.prod(axis=1)) < 8
    assert anchor_fit(wh[small], free["sizes"], free["aspect_ratios"][0]) > anchor_fit(
        wh[small], floored["sizes"], floored["aspect_ratios"][0]) + 0.1


def test_config_rejects_a_non_positive_anchor_floor(coco_dir):
    with pytest.raises(ValueError, match="anchor_min_strides"):
        DetectorConfig(data=coco_dir, preset="cpu", anchor_min_strides=0).validate()


def test_cpu_preset_lr_is_per_arch_and_an_explicit_lr_wins(coco_dir):
    from sardata.train.detector import CPU_LR_DEFAULT

    assert DetectorConfig(data=coco_dir, preset="cpu", arch="faster_rcnn").validate().lr == 1e-3  # measured
    assert DetectorConfig(data=coco_dir, preset="cpu", arch="retinanet").validate().lr == 5e-4  # measured
    assert DetectorConfig(data=coco_dir, preset="cpu", arch="ssd").validate().lr == CPU_LR_DEFAULT == 2e-3
    assert DetectorConfig(data=coco_dir, preset="cpu", arch="faster_rcnn", lr=3e-3).validate().lr == 3e-3
    assert DetectorConfig(data=coco_dir, preset="paper", arch="faster_rcnn").validate().lr is None  # scaled rule


def test_db_standardisation_is_the_models_and_the_same_in_training_and_eval():
    from sardata.train.sar_input import db_standardize

    image = torch.rand(3, 40, 50) * 0.3
    image[:, 10:14, 10:20] = 0.9
    z = db_standardize(image)
    assert z.mean().abs() < 1e-4 and z.std(unbiased=False) == pytest.approx(1.0, abs=1e-3)
    expected = 20 * torch.log10(image + 0.5 / 255)
    expected = (expected - expected.mean()) / expected.std(unbiased=False)
    assert torch.allclose(z, expected.clamp(-6, 6), atol=1e-5)
    assert torch.allclose(db_standardize(image * 4), db_standardize(image * 4))
    model = build_detector("faster_rcnn", "tiny", 2, native=True, db=True, representation_size=64)
    for mode in (True, False):
        model.train(mode)
        batch, _ = model.transform([image])
        assert batch.tensors.shape[-2:] == (64, 64)  # native: padded to /32, never resized
        assert torch.allclose(batch.tensors[0, :, :40, :50], z)


def test_ssd_boxes_have_the_same_pixel_size_on_any_input():
    model = build_detector("ssd", "tiny", 2, image_size=512, native=True, db=True)
    model.eval()
    from torchvision.models.detection.image_list import ImageList

    sizes = []
    for side in (256, 448):
        images = ImageList(torch.zeros(1, 3, side, side), [(side, side)])
        features = list(model.backbone(images.tensors).values())
        boxes = model.anchor_generator(images, features)[0]
        scale = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).sqrt()
        sizes.append(sorted(set(scale.round().tolist()))[:3])
    # mmdetection's SSD512 first box: 0.04 of the 512 reference, whatever the input size (torchvision: 0.07 → 36 px)
    assert sizes[0] == sizes[1] and sizes[0][0] == pytest.approx(0.04 * 512, abs=1)


# --------------------------------------------------------------------------------------------- cascade


def test_cascade_regression_is_class_agnostic():
    model = build_detector("cascade_rcnn", "tiny", num_classes=3, native=True, representation_size=64,
                           **SMALL_RCNN)
    for stage in model.roi_heads.stages:
        assert stage.box_predictor.bbox_pred.out_features == 4
        scores, deltas = stage.box_predictor(torch.randn(5, 64))
        assert scores.shape == (5, 3) and deltas.shape == (5, 12)
        assert torch.equal(deltas[:, 4:8], deltas[:, 8:12]) and torch.equal(deltas[:, :4], deltas[:, 4:8])


def test_cascade_removes_ground_truth_proposals_before_refinement():
    torch.manual_seed(0)
    model = build_detector("cascade_rcnn", "tiny", num_classes=2, native=True, representation_size=64,
                           **SMALL_RCNN)
    heads = model.roi_heads
    seen = []
    for stage in heads.stages:
        original = stage.add_gt_proposals

        def spy(proposals, gt_boxes, original=original):
            seen.append([p.clone() for p in proposals])
            return original(proposals, gt_boxes)

        stage.add_gt_proposals = spy
    gt = torch.tensor([[10.0, 10.0, 30.0, 22.0], [40.0, 40.0, 52.0, 60.0]])
    proposals = [torch.tensor([[0.0, 0.0, 8.0, 8.0], [50.0, 0.0, 60.0, 6.0], [11.0, 11.0, 29.0, 23.0]])]
    features = model.backbone(torch.zeros(1, 3, 64, 64))
    heads.train()
    _, losses = heads(features, proposals, [(64, 64)], [{"boxes": gt, "labels": torch.tensor([1, 1])}])
    assert set(losses) >= {"loss_classifier_s2", "loss_box_reg_s2"}
    # stage 0 sampled the 3 proposals + 2 ground-truth boxes; the 2 ground-truth RoIs are dropped before stage 1
    assert [len(p[0]) for p in seen] == [3, 3, 3]
    sample = heads.sample(heads.stages[0], [proposals[0]], [{"boxes": gt, "labels": torch.tensor([1, 1])}])
    assert sample[3][0].sum() == 2 and torch.equal(sample[0][0][sample[3][0]].sort(0)[0], gt.sort(0)[0])


# --------------------------------------------------------------------------------------------- learning


def make_squares(root: Path, n_train: int = 24, n_test: int = 8, size: int = 96, seed: int = 0) -> Path:
    """Easy data: 1–3 bright squares (8–16 px) on gamma speckle; a quarter of the train images are sea only."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for i in range(n):
            sea = rng.gamma(2.0, 0.06, (size, size))
            count = 0 if (split == "train" and i % 4 == 3) else int(rng.integers(1, 4))
            for _ in range(count):
                side = int(rng.integers(8, 17))
                x, y = (int(v) for v in rng.integers(2, size - side - 2, 2))
                sea[y:y + side, x:x + side] = 0.7 + 0.3 * rng.random((side, side))
                annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": 1,
                                    "bbox": [x, y, side, side], "area": side * side, "iscrowd": 0})
            Image.fromarray((np.clip(sea, 0, 1) * 255).astype(np.uint8)).save(root / "images" / split / f"{i}.png")
            images.append({"id": i + 1, "file_name": f"{i}.png", "width": size, "height": size})
        (root / "annotations").mkdir(exist_ok=True)
        coco = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "ship"}]}
        (root / "annotations" / f"{split}.json").write_text(json.dumps(coco))
    return root


def test_amp_is_fp16_on_cuda_bf16_on_cpus_with_native_bf16_and_fp32_otherwise(monkeypatch):
    """``amp`` (on by default) autocasts to bf16 only where the CPU computes it natively; ``--no-amp`` is fp32."""
    assert common.mixed_precision_dtype(torch.device("cuda")) is torch.float16
    cpu, x = torch.device("cpu"), torch.randn(8, 8)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    for native, expected in ((False, torch.float32), (True, torch.bfloat16)):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda native=native: native)
        with common.autocast(cpu, enabled=True):
            assert (x @ x).dtype is expected
    with common.autocast(cpu, enabled=False):
        assert (x @ x).dtype is torch.float32
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported")  # a torch without the probe: fp32, no error
    assert common.mixed_precision_dtype(cpu) is None
    assert common.grad_scaler(cpu, True) is None  # bf16 keeps fp32's range: no loss scaling



def test_bf16_autocast_runs_strided_convolutions_over_one_pixel_wide_maps_in_fp32(monkeypatch):
    """oneDNN's bf16 convolution sometimes gives non-finite weight gradients for a stride-2 3x3 convolution over a
    one-pixel-wide map (RetinaNet's P7 on a 64-px image); under :func:`common.autocast` those run in fp32."""
    cpu = torch.device("cpu")
    native = common.mixed_precision_dtype(cpu) is torch.bfloat16
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)  # the dtype rule on any CPU
    strided, plain = torch.nn.Conv2d(16, 16, 3, 2, 1), torch.nn.Conv2d(16, 16, 3, 1, 1)
    with common.autocast(cpu, enabled=True):
        assert strided(torch.randn(2, 16, 2, 1)).dtype is torch.float32  # narrower than the kernel: fp32
        assert strided(torch.randn(2, 16, 1, 1)).dtype is torch.float32
        assert strided(torch.randn(2, 16, 8, 8)).dtype is torch.bfloat16  # everything else stays bf16
        assert plain(torch.randn(2, 16, 1, 1)).dtype is torch.bfloat16
        assert (torch.randn(4, 4) @ torch.randn(4, 4)).dtype is torch.bfloat16
    if not native:
        return  # the gradients below only go wrong in oneDNN's native bf16 kernels
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(64, 64, 3, 2, 1)
    for trial in range(200):  # without the guard about 45 % of these trials are non-finite
        conv.zero_grad()
        with common.autocast(cpu, enabled=True):
            out = conv(torch.relu(torch.randn(2, 64, 2, 1)))
        out.float().backward(torch.randn(out.shape))
        assert torch.isfinite(conv.weight.grad).all(), f"trial {trial}: non-finite weight gradient"

def test_cpu_preset_detector_learns_easy_data(tmp_path):
    """A few hundred steps of the ``cpu`` preset (tiny backbone, crops, anchors from the data) reach AP50 ≥ 0.5 on
    easy squares; an untrained model or a broken loop stays near 0."""
    data = make_squares(tmp_path / "squares")
    result = train(DetectorConfig(data=data, arch="faster_rcnn", preset="cpu", out_dir=tmp_path / "run",
                                  crop_size=64, iterations=200, warmup_iters=20, batch_size=4, workers=0,
                                  progress=False, seed=0))
    assert result["metrics"]["AP50"] >= 0.5, result["metrics"]
    history = result["history"]
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    assert sum(r["iters"] for r in history) == 200
    # an iteration budget's epochs are resume points: checkpoint.pth and the final model_<last>.pth only
    assert sorted(p.name for p in (tmp_path / "run").glob("*.pth")) == ["checkpoint.pth", f"model_{len(history) - 1}.pth"]


def test_history_plot_draws_torchvision_loss_terms_as_losses_and_leaves_out_bookkeeping(tmp_path):
    # A RetinaNet run's records: its loss dict has no "loss" in the names; "iters" (40) and "lr" are counters.
    history = [{"epoch": e, "loss": 1.3 - 0.1 * e, "classification": 0.8 - 0.05 * e, "bbox_regression": 0.5,
                "lr": 5e-4, "iters": 40, "time_s": 30.0} for e in range(3)]
    history[-1].update({"mAP": 0.04, "AP50": 0.10, "AP75": 0.01})
    losses, metrics = common.history_panels(history)
    assert losses == ["loss", "classification", "bbox_regression"]
    assert metrics == ["mAP", "AP50", "AP75"]
    assert common.plot_history(history, tmp_path / "metrics.png").stat().st_size > 0

"""IFKD distillation: loss mathematics on hand-made tensors, mask sources, and short runs on tiny detectors."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from sardata.train import distill_losses as dl
from sardata.train.distill import ABLATION_VARIANTS, DistillConfig, Distiller, distill, match_levels, run_ablation
from sardata.train.masks import BoxMaskSource, MobileSAMMaskSource, build_mask_source

torch.set_num_threads(2)


# ------------------------------------------------------------------------------------------------ FRS


def test_frs_mask_is_max_sigmoid_over_anchors_and_classes():
    logits = torch.full((1, 6, 2, 2), -10.0)
    logits[0, 4, 1, 0] = 0.0  # one (anchor, class) channel at one location is at p = 0.5
    logits[0, 1, 0, 1] = math.log(3.0)  # p = 0.75
    mask = dl.frs_mask(logits)
    assert mask.shape == (1, 1, 2, 2)
    assert mask[0, 0, 1, 0].item() == pytest.approx(0.5)
    assert mask[0, 0, 0, 1].item() == pytest.approx(0.75)
    assert mask[0, 0, 0, 0].item() == pytest.approx(torch.sigmoid(torch.tensor(-10.0)).item())
    assert torch.equal(dl.frs_mask(logits.view(1, 3, 2, 2, 2)), mask)


def test_masked_feature_loss_equals_mse_with_ones_and_is_scale_invariant():
    gen = torch.Generator().manual_seed(0)
    t, s = torch.randn(2, 8, 5, 5, generator=gen), torch.randn(2, 8, 5, 5, generator=gen)
    ones = torch.ones(2, 1, 5, 5)
    assert dl.masked_feature_loss(t, s, ones).item() == pytest.approx(torch.nn.functional.mse_loss(s, t).item(), rel=1e-5)
    mask = torch.rand(2, 1, 5, 5, generator=gen)
    assert dl.masked_feature_loss(t, s, mask).item() == pytest.approx(dl.masked_feature_loss(t, s, 7.5 * mask).item(),
                                                                      rel=1e-5)
    # Hand-computed: only location (0, 0) counts, where every channel differs by 2 → (2²·C)/(C·1) = 4.
    t0, s0 = torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    s0[0, :, 0, 0] = 2.0
    s0[0, :, 1, 1] = 100.0  # masked out
    m0 = torch.zeros(1, 1, 2, 2)
    m0[0, 0, 0, 0] = 1.0
    assert dl.masked_feature_loss(t0, s0, m0).item() == pytest.approx(4.0)


def test_head_losses():
    logits = torch.randn(2, 6, 3, 3)
    mask = torch.ones(2, 1, 3, 3)
    at_teacher = dl.masked_bce_head_loss(logits, logits, mask)
    assert dl.masked_bce_head_loss(logits + 1.0, logits, mask) > at_teacher  # minimum at the teacher's logits
    roi = torch.randn(5, 4)
    assert dl.kl_logits_loss(roi, roi).item() == pytest.approx(0.0, abs=1e-6)
    assert dl.kl_logits_loss(roi, roi.flip(1)).item() > 0


# ------------------------------------------------------------------------------------------------ FDR


def test_low_and_high_bands_reconstruct_the_input():
    x = torch.randn(2, 4, 9, 12)
    for ratio in (0.25, 0.5, 1.0):
        low, high = dl.split_frequency(x, ratio)
        assert torch.allclose(low + high, x, atol=1e-5)
    low, high = dl.split_frequency(x, 1.0)
    assert torch.allclose(high, torch.zeros_like(high), atol=1e-5)


def test_low_band_of_a_constant_is_the_constant_and_checkerboard_is_high():
    constant = torch.full((1, 1, 8, 8), 3.0)
    low, high = dl.split_frequency(constant, 0.25)
    assert torch.allclose(low, constant, atol=1e-5) and torch.allclose(high, torch.zeros_like(high), atol=1e-5)
    checker = (torch.arange(8).view(-1, 1) + torch.arange(8).view(1, -1)) % 2 * 2.0 - 1.0
    low, high = dl.split_frequency(checker[None, None], 0.25)
    assert torch.allclose(high[0, 0], checker, atol=1e-5)


def test_low_frequency_mask_is_centred_square():
    mask = dl.low_frequency_mask(8, 8, 0.5)
    assert mask.sum().item() == 16 and mask[4, 4] == 1 and mask[0, 0] == 0
    rows, cols = mask.nonzero().T
    assert rows.min().item() == 2 and rows.max().item() == 5 and cols.min().item() == 2 and cols.max().item() == 5
    with pytest.raises(ValueError, match="ratio"):
        dl.low_frequency_mask(8, 8, 0.0)


def test_complex_filter_starts_as_identity_and_learns():
    filt = dl.ComplexFrequencyFilter(3, size=4)
    x = torch.randn(2, 3, 6, 6)
    assert torch.allclose(filt(x), x, atol=1e-5)
    t = torch.randn(2, 3, 6, 6)
    low, high = dl.fdr_loss(t, x, torch.ones(2, 1, 6, 6), filt, ratio=0.5)
    high.backward()
    assert filt.real.grad is not None and filt.real.grad.abs().sum() > 0
    assert low.item() == pytest.approx(torch.nn.functional.mse_loss(*[dl.split_frequency(a, 0.5)[0] for a in (x, t)]).item(),
                                       rel=1e-4)


# ------------------------------------------------------------------------------------------------ HSM


def test_mobius_addition_identity_inverse_and_known_value():
    x = torch.tensor([[0.3, -0.2], [0.1, 0.5]])
    zero = torch.zeros_like(x)
    assert torch.allclose(dl.mobius_add(zero, x), x, atol=1e-6)
    assert torch.allclose(dl.mobius_add(x, zero), x, atol=1e-6)
    assert torch.allclose(dl.mobius_add(-x, x), zero, atol=1e-6)
    # 1-D, c = 1: x ⊕ y = (x + y)/(1 + xy) (relativistic velocity addition).
    a, b = torch.tensor([[0.5]]), torch.tensor([[0.25]])
    assert dl.mobius_add(a, b).item() == pytest.approx(0.75 / 1.125)


def test_poincare_distance_symmetric_zero_and_known_value():
    gen = torch.Generator().manual_seed(1)
    x = dl.expmap0(torch.randn(6, 4, generator=gen), c=0.7)
    y = dl.expmap0(torch.randn(6, 4, generator=gen), c=0.7)
    assert torch.allclose(dl.poincare_distance(x, y, c=0.7), dl.poincare_distance(y, x, c=0.7), atol=1e-5)
    assert torch.allclose(dl.poincare_distance(x, x, c=0.7), torch.zeros(6), atol=1e-3)
    # From the origin, d(0, y) = 2·artanh(‖y‖) for c = 1.
    y1 = torch.tensor([[0.6, 0.0]])
    assert dl.poincare_distance(torch.zeros_like(y1), y1).item() == pytest.approx(2 * math.atanh(0.6), rel=1e-5)
    assert (dl.expmap0(torch.randn(100, 8) * 50, c=2.0).norm(dim=-1) < 1 / math.sqrt(2.0) + 1e-6).all()


def test_hyperbolic_mask_normalised_and_zero_where_equal():
    t = torch.randn(2, 16, 4, 4)
    s = t.clone()
    s[:, :, 0, 0] += 5.0
    mask = dl.hyperbolic_mask(t, s)
    assert mask.shape == (2, 1, 4, 4)
    assert mask.max().item() == pytest.approx(1.0) and mask[:, 0, 0, 0].eq(1.0).all()
    assert mask[:, :, 1:, 1:].abs().max().item() < 1e-2
    assert dl.hsm_loss(t, t.clone()).item() == pytest.approx(0.0, abs=1e-6)


# ------------------------------------------------------------------------------------------------ EDE / masks


def test_embed_foreground_and_box_masks():
    image = torch.zeros(3, 20, 30)
    target = {"boxes": torch.tensor([[5.0, 2.0, 15.0, 10.0]])}
    mask = BoxMaskSource()(image, target)
    assert mask.shape == (20, 30) and mask.sum().item() == 10 * 8
    assert mask[5, 10] == 1 and mask[15, 25] == 0
    soft = BoxMaskSource(soft=True)(image, target)
    assert soft.max() <= 1 and soft[6, 10] > soft[2, 5] and soft[15, 25] == 0
    assert BoxMaskSource()(image, {"boxes": torch.zeros(0, 4)}).sum() == 0

    t = torch.ones(1, 2, 4, 4)
    fg = torch.zeros(1, 1, 4, 4)
    fg[0, 0, :2, :2] = 1.0
    out = dl.embed_foreground(t, fg, strength=0.5)
    assert torch.allclose(out[0, :, :2, :2], torch.full((2, 2, 2), 1.5)) and torch.allclose(out[0, :, 2:, 2:], t[0, :, 2:, 2:])
    assert torch.equal(dl.embed_foreground(t, fg, strength=0.0), t)


def test_mobilesam_source_fails_clearly(tmp_path):
    with pytest.raises((ImportError, FileNotFoundError), match="(?i)mobile_?sam"):
        MobileSAMMaskSource(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="unknown mask source"):
        build_mask_source("sam2")


# ------------------------------------------------------------------------------------------------ distillation runs


def _tiny_coco(root, n_train=4, n_test=2, size=64):
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        (root / "images" / split).mkdir(parents=True)
        images, annotations = [], []
        for i in range(n):
            pixels = (rng.gamma(1.0, 20.0, (size, size))).clip(0, 255).astype(np.uint8)
            x, y = int(rng.integers(10, size - 40)), int(rng.integers(10, size - 30))
            pixels[y : y + 16, x : x + 28] = 250
            name = f"{split}_{i}.png"
            Image.fromarray(pixels).save(root / "images" / split / name)
            images.append({"id": i + 1, "file_name": name, "width": size, "height": size, "sample_id": f"s{split}{i}"})
            annotations.append({"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [x, y, 28, 16],
                                "area": 28 * 16, "iscrowd": 0})
        (root / "annotations").mkdir(exist_ok=True)
        (root / "annotations" / f"{split}.json").write_text(json.dumps(
            {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "ship"}]}))
    return root


def _teacher_checkpoint(path, arch, backbone="resnet18", size=64):
    from sardata.train import common
    from sardata.train.detector import build_detector

    torch.manual_seed(0)
    kwargs = dict(arch=arch, backbone=backbone, num_classes=2, image_size=size)
    model = build_detector(**kwargs)
    common.save_checkpoint(path, 0, model, args={"model_kwargs": kwargs}, keep_every_epoch=False)
    return path / "checkpoint.pth", model


def _batch(size=64):
    images = [torch.rand(3, size, size) for _ in range(2)]
    targets = [{"boxes": torch.tensor([[20.0, 30.0, 60.0, 50.0]]), "labels": torch.tensor([1])} for _ in range(2)]
    return images, targets


@pytest.mark.parametrize("arch,student_backbone", [("retinanet", "mobilenet_v2"), ("faster_rcnn", "resnet18")])
def test_distillation_steps_train_only_the_student(arch, student_backbone):
    from sardata.train.detector import build_detector

    torch.manual_seed(0)
    teacher = build_detector(arch, "resnet18", 2, image_size=64)
    student = build_detector(arch, student_backbone, 2, image_size=64)
    teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    cfg = DistillConfig(data=".", teacher=".", frs=True, ede=True, fdr=True, hsm=True, head=True)
    distiller = Distiller(student, teacher, cfg)
    assert distiller.level_map  # levels matched by size
    params = distiller.trainable_parameters()
    optimizer = torch.optim.SGD(params, lr=1e-3)
    student_before = [p.detach().clone() for p in student.parameters()]
    images, targets = _batch()
    distiller.train()
    terms = distiller(images, targets)
    for name in ("loss_gt", "loss_frs", "loss_fdr_low", "loss_fdr_high", "loss_hsm", "loss_head"):
        assert torch.isfinite(terms[name]) and terms[name].item() > 0, name
    feature = terms["loss_frs"] + terms["loss_fdr_low"] + terms["loss_fdr_high"] + terms["loss_hsm"]
    expected = terms["loss_gt"] + cfg.alpha * feature + cfg.beta * terms["loss_head"]
    assert terms["loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    optimizer.zero_grad()
    terms["loss"].backward()
    optimizer.step()
    assert not teacher.training
    assert all(p.grad is None for p in teacher.parameters())
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in teacher_before.items())
    assert any(not torch.equal(a, b) for a, b in zip(student_before, student.parameters()))
    assert any(p.grad is not None for p in distiller.adapters.parameters())


def test_match_levels_by_spatial_size():
    s = {"0": torch.zeros(1, 1, 4, 4), "1": torch.zeros(1, 1, 4, 4), "pool": torch.zeros(1, 1, 2, 2),
         "x": torch.zeros(1, 1, 3, 3)}
    t = {"0": torch.zeros(1, 1, 16, 16), "3": torch.zeros(1, 1, 4, 4), "pool": torch.zeros(1, 1, 2, 2)}
    assert match_levels(s, t) == {"0": "3", "1": "3", "pool": "pool"}


def test_distill_run_and_ablation_table(tmp_path):
    data = _tiny_coco(tmp_path / "coco", n_train=2, n_test=1)
    teacher_path, _ = _teacher_checkpoint(tmp_path / "teacher", "retinanet")
    cfg = DistillConfig(data=str(data), teacher=str(teacher_path), student="mobilenet_v2", arch="retinanet",
                        out_dir=str(tmp_path / "out"), epochs=1, batch_size=2, max_steps=1, lr=1e-3, device="cpu",
                        max_eval_images=1)
    result = run_ablation(cfg)
    assert [v["variant"] for v in result["variants"]] == list(ABLATION_VARIANTS)
    rows = json.loads((tmp_path / "out" / "ablation.json").read_text())
    assert [r["variant"] for r in rows] == list(ABLATION_VARIANTS)
    assert all(0.0 <= r["AP50"] <= 1.0 for r in rows)
    table = (tmp_path / "out" / "ablation.md").read_text()
    assert "| full |" in table and "AP50" in table
    import csv

    with open(tmp_path / "out" / "full" / "losses.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1 and float(rows[0]["loss_hsm"]) > 0 and float(rows[0]["loss_fdr_high"]) > 0
    with open(tmp_path / "out" / "baseline" / "losses.csv") as fh:
        base = list(csv.DictReader(fh))
    assert float(base[0]["loss_frs"]) == 0 and float(base[0]["loss"]) == pytest.approx(float(base[0]["loss_gt"]))
    from sardata.train.detector import load_detector

    student, args = load_detector(tmp_path / "out" / "full" / "checkpoint.pth")
    assert args["model_kwargs"]["backbone"] == "mobilenet_v2"


def test_distill_rejects_arch_mismatch(tmp_path):
    data = _tiny_coco(tmp_path / "coco", n_train=1, n_test=1)
    teacher_path, _ = _teacher_checkpoint(tmp_path / "teacher", "retinanet")
    cfg = DistillConfig(data=str(data), teacher=str(teacher_path), arch="faster_rcnn", out_dir=str(tmp_path / "o"))
    with pytest.raises(ValueError, match="teacher"):
        distill(cfg)


def test_distill_resumes_from_the_latest_checkpoint_at_the_next_epoch(tmp_path):
    import csv

    from sardata import checkpoints

    data = _tiny_coco(tmp_path / "coco", n_train=2, n_test=1)
    teacher_path, _ = _teacher_checkpoint(tmp_path / "teacher", "retinanet")
    common = dict(data=data, teacher=teacher_path, student="mobilenet_v2", out_dir=tmp_path / "out", batch_size=1,
                  lr=1e-3, device="cpu", max_eval_images=1)
    first = distill(DistillConfig(epochs=1, **common))
    assert first["steps"] == 2 and checkpoints.load_checkpoint(tmp_path / "out")["epoch"] == 0
    losses = tmp_path / "out" / "losses.csv"
    lines = losses.read_text().splitlines()
    losses.write_text("\n".join(lines[:1] + ["marker-row"] + lines[2:]) + "\n")  # a fresh run would rewrite it

    second = distill(DistillConfig(epochs=2, resume="latest", **common))
    state = checkpoints.load_checkpoint(tmp_path / "out" / "checkpoint.pth")
    assert second["steps"] == 4 and state["epoch"] == 1 and state["step"] == 4
    assert state["lr_scheduler"]["last_epoch"] == 4  # the schedule continued, not restarted
    with open(losses) as fh:
        rows = list(csv.reader(fh))
    assert rows[1] == ["marker-row"] and [r[1] for r in rows[3:]] == ["1", "1"]

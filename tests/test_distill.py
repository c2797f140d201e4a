"""IFKD distillation: each loss against the paper's equation on hand-made tensors, the teacher gate and cache, hooks
that do not outlive a training step, and a student that learns easy data with IFKD on."""

import json
import math
import time

import numpy as np
import pytest
import torch
from PIL import Image

from sardata.train import distill_losses as dl
from sardata.train.distill import (
    TeacherConfig,
    VARIANTS,
    DistillConfig,
    Distiller,
    ablation_markdown,
    ablation_rows,
    check_teacher,
    distill,
    ensure_teacher,
    evaluate_detector,
    match_levels,
)
from sardata.train.masks import BoxMaskSource, MobileSAMMaskSource, build_mask_source

torch.set_num_threads(2)
SMALL_RCNN = dict(rpn_pre_nms_top_n_train=200, rpn_post_nms_top_n_train=100, rpn_pre_nms_top_n_test=100,
                  rpn_post_nms_top_n_test=50, box_batch_size_per_image=16)


# ------------------------------------------------------------------------------------------------ weighted losses


def test_feature_loss_is_the_mask_weighted_channel_sum_over_mask_sum():
    # one image, 2 channels, 1×2 locations; teacher 0, student (1, 2) at location 0 and (3, 0) at location 1
    teacher = torch.zeros(1, 2, 1, 2)
    student = torch.tensor([[[[1.0, 3.0]], [[2.0, 0.0]]]])
    mask = torch.tensor([[[[0.5, 1.5]]]])
    # Σ_c: 1 + 4 = 5 and 9 + 0 = 9 → (0.5·5 + 1.5·9) / (0.5 + 1.5) = 8 (no division by C)
    assert dl.feature_loss(teacher, student, mask).item() == pytest.approx(8.0)
    with pytest.raises(ValueError, match="differ"):
        dl.feature_loss(teacher, student[:, :1], mask)


def test_head_loss_eq13_on_hand_made_logits():
    # location 0: p_s = p_t = 0.5 on both channels → BCE = log 2 each; location 1: p_s = 0.75, p_t = 0.5 →
    # −(0.5 log 0.75 + 0.5 log 0.25) each, summed over the two channels = log(16/3)
    student = torch.tensor([[[[0.0, math.log(3.0)]], [[0.0, math.log(3.0)]]]])
    teacher = torch.zeros(1, 2, 1, 2)
    mask = torch.tensor([[[[1.0, 3.0]]]])
    expected = (1 * 2 * math.log(2) + 3 * math.log(16 / 3)) / 4
    assert dl.head_loss(student, teacher, mask).item() == pytest.approx(expected, rel=1e-6)


def test_frs_mask_is_max_sigmoid_over_channels():
    logits = torch.full((1, 6, 2, 2), -10.0)
    logits[0, 4, 1, 0] = 0.0
    logits[0, 1, 0, 1] = math.log(3.0)
    mask = dl.frs_mask(logits)
    assert mask.shape == (1, 1, 2, 2)
    assert mask[0, 0, 1, 0].item() == pytest.approx(0.5) and mask[0, 0, 0, 1].item() == pytest.approx(0.75)
    assert mask[0, 0, 0, 0].item() == pytest.approx(1 / (1 + math.exp(10)))


# ------------------------------------------------------------------------------------------------ EDE


def test_ede_adds_resized_sigmoid_of_the_mask_to_every_channel():
    teacher = torch.arange(8.0).view(1, 2, 2, 2)
    logits = torch.zeros(1, 1, 4, 4)
    logits[..., :2, :2] = math.log(3.0)  # σ = 0.75 in the top-left quarter, 0.5 elsewhere
    out = dl.ede(teacher, logits)
    expected = teacher + torch.tensor([[0.75, 0.5], [0.5, 0.5]])
    assert torch.allclose(out, expected, atol=1e-6)


def test_box_mask_source_gives_logits_of_filled_boxes():
    image = torch.zeros(3, 20, 30)
    target = {"boxes": torch.tensor([[5.0, 2.0, 15.0, 10.0]])}
    logits = BoxMaskSource()(image, target)
    prob = torch.sigmoid(logits)
    assert logits.shape == (20, 30) and (prob > 0.99).sum().item() == 10 * 8
    assert prob[5, 10] > 0.99 and prob[15, 25] < 0.01
    assert (torch.sigmoid(BoxMaskSource()(image, {"boxes": torch.zeros(0, 4)})) < 0.01).all()


def test_mobilesam_source_fails_clearly(tmp_path):
    with pytest.raises((ImportError, FileNotFoundError), match="(?i)mobile_?sam"):
        MobileSAMMaskSource(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="unknown mask source"):
        build_mask_source("sam2")


# ------------------------------------------------------------------------------------------------ FDR


def test_binary_window_is_centred_on_the_zero_frequency():
    window = dl.binary_window(8, 8, 0.5)
    rows, cols = window.nonzero().T
    assert window.sum().item() == 16 and window[4, 4] == 1  # fftshift puts frequency 0 at index 4
    assert (rows.min().item(), rows.max().item(), cols.min().item(), cols.max().item()) == (2, 5, 2, 5)
    assert dl.binary_window(5, 5, 0.2).nonzero().tolist() == [[2, 2]]
    with pytest.raises(ValueError, match="ratio"):
        dl.binary_window(8, 8, 0.0)


@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.8, 1.0])
def test_fdr_returns_the_teacher_when_frs_and_filter_are_one(ratio):
    teacher = torch.randn(2, 3, 9, 12)
    ones = torch.ones(2, 1, 9, 12)
    assert torch.allclose(dl.fdr_rebuild(teacher, ones, ratio), teacher, atol=1e-5)
    assert torch.allclose(dl.fdr_rebuild(teacher, ones, ratio, dl.SpectralFilter(3, size=4)), teacher, atol=1e-5)


def test_fdr_with_zero_frs_keeps_only_the_high_band():
    """Alg. 1 with M_FRS ≡ 0: the output is the teacher minus its centred low-pass (computed here with numpy)."""
    teacher = torch.randn(1, 2, 8, 8, dtype=torch.float64)
    spectrum = np.fft.fftshift(np.fft.fft2(teacher.numpy()), axes=(-2, -1))
    window = np.zeros((8, 8))
    window[2:6, 2:6] = 1
    low = np.fft.ifft2(np.fft.ifftshift(spectrum * window, axes=(-2, -1))).real
    out = dl.fdr_rebuild(teacher.float(), torch.zeros(1, 1, 8, 8), 0.5).double()
    assert np.allclose(out.numpy(), teacher.numpy() - low, atol=1e-5)
    # a constant map lives in the zero frequency only: with M_FRS ≡ 0.5 it is halved
    constant = torch.full((1, 1, 6, 6), 2.0)
    assert torch.allclose(dl.fdr_rebuild(constant, torch.full((1, 1, 6, 6), 0.5), 0.5), constant / 2, atol=1e-5)


def test_spectral_filter_learns_from_the_feature_loss():
    filt = dl.SpectralFilter(3, size=4)
    teacher, student = torch.randn(2, 3, 6, 6), torch.randn(2, 3, 6, 6)
    loss = dl.feature_loss(dl.fdr_rebuild(teacher, torch.ones(2, 1, 6, 6), 0.5, filt), student, torch.ones(2, 1, 6, 6))
    loss.backward()
    assert filt.real.grad.abs().sum() > 0 and filt.imag.grad.abs().sum() > 0


# ------------------------------------------------------------------------------------------------ HSM


def test_mobius_addition_matches_its_closed_form():
    x, y = torch.tensor([[0.3, 0.0]]), torch.tensor([[0.0, 0.4]])
    # ⟨x,y⟩ = 0, ‖x‖² = 0.09, ‖y‖² = 0.16 (c = 1): ((1 + 0.16)·x + (1 − 0.09)·y) / (1 + 0.09·0.16)
    expected = torch.tensor([[0.3 * 1.16, 0.4 * 0.91]]) / (1 + 0.09 * 0.16)
    assert torch.allclose(dl.mobius_add(x, y), expected, atol=1e-7)
    # 1-D, c = 1: (a + b) / (1 + ab), the relativistic velocity addition
    assert dl.mobius_add(torch.tensor([[0.5]]), torch.tensor([[0.25]])).item() == pytest.approx(0.75 / 1.125)
    # c = 2 changes the result as the formula says: ((1 + 2c·ab + c b²) a + (1 − c a²) b) / (1 + 2c·ab + c² a² b²)
    a, b, c = 0.2, 0.3, 2.0
    closed = ((1 + 2 * c * a * b + c * b * b) * a + (1 - c * a * a) * b) / (1 + 2 * c * a * b + c * c * a * a * b * b)
    assert dl.mobius_add(torch.tensor([[a]]), torch.tensor([[b]]), c=c).item() == pytest.approx(closed)
    z = torch.tensor([[0.1, -0.5]])
    assert torch.allclose(dl.mobius_add(-z, z), torch.zeros_like(z), atol=1e-7)


def test_poincare_distance_from_the_origin():
    y = torch.tensor([[0.6, 0.0]])
    assert dl.poincare_distance(torch.zeros_like(y), y).item() == pytest.approx(2 * math.atanh(0.6), rel=1e-5)


def test_hsm_mask_is_zero_where_teacher_equals_student():
    teacher = torch.randn(2, 16, 4, 4, generator=torch.Generator().manual_seed(0))
    student = teacher.clone()
    student[:, :, 0, 0] += 3.0
    student[1, :, 2, 3] -= 1.0
    mask = dl.hsm_mask(teacher, student)
    assert mask.shape == (2, 1, 4, 4)
    changed = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
    changed[:, 0, 0, 0] = True
    changed[1, 0, 2, 3] = True
    assert torch.all(mask[~changed].abs() < 1e-3) and torch.all(mask[changed] > 0.1)
    # the distance between the ball points of the two vectors at one location, by the formula
    t, s = dl.to_ball(teacher)[:, :, 0, 0], dl.to_ball(student)[:, :, 0, 0]
    norm = dl.mobius_add(-t, s).norm(dim=-1)
    # near the ball's boundary artanh amplifies float32 rounding (d artanh/dx = 1/(1 − x²)): a relative tolerance
    assert torch.allclose(mask[:, 0, 0, 0], 2 * torch.atanh(norm), rtol=1e-3, atol=1e-4)


# ------------------------------------------------------------------------------------------------ the distiller


def _detectors(arch, student_backbone, size=64):
    from sardata.train.detector import build_detector

    torch.manual_seed(0)
    options = SMALL_RCNN if arch == "faster_rcnn" else {}
    teacher = build_detector(arch, "resnet18", 3, image_size=size, **options)
    student = build_detector(arch, student_backbone, 3, image_size=size, **options)
    return teacher, student


def _batch(size=64):
    images = [torch.rand(3, size, size) for _ in range(2)]
    targets = [{"boxes": torch.tensor([[20.0, 30.0, 60.0, 50.0]]), "labels": torch.tensor([1])} for _ in range(2)]
    return images, targets


@pytest.mark.parametrize("arch,student_backbone", [("retinanet", "mobilenet_v2"), ("faster_rcnn", "resnet18")])
def test_gradients_reach_only_student_adapter_and_filter(arch, student_backbone):
    teacher, student = _detectors(arch, student_backbone)
    distiller = Distiller(student, teacher, DistillConfig(data=".", teacher="."))
    distiller.train()
    losses = distiller(*_batch())
    assert {"loss_kd_feat", "loss_kd_head"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert not teacher.training and all(p.grad is None for p in teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.backbone.parameters())
    assert all(p.grad is not None for p in distiller.adapters.parameters())
    assert all(p.grad is not None for p in distiller.filters.parameters())
    assert all(not m._forward_hooks for m in student.modules())  # the capture hooks are gone after the step
    assert set(distiller.step_log[-1]) == {"loss", "loss_gt", "loss_feat", "loss_head"}


def test_distillation_terms_are_fp32_under_bf16_autocast():
    """amp trains the detectors in bf16; the KD terms must not be (torch.fft has no bf16, and HSM's atanh clamp at
    1 − 1e-6 rounds to 1 in bf16): under autocast they equal the fp32 terms of the same tensors."""
    teacher, student = _detectors("faster_rcnn", "resnet18")
    distiller = Distiller(student, teacher, DistillConfig(data=".", teacher="."))  # all of FRS, EDE, FDR, HSM
    gen = torch.Generator().manual_seed(5)
    level = next(iter(distiller.level_map))
    distiller.level_map = {level: level}
    s_feat, t_feat = ({level: torch.randn(2, 256, 8, 8, generator=gen)} for _ in range(2))
    s_log, t_log = ({level: torch.randn(2, 3, 8, 8, generator=gen)} for _ in range(2))
    foreground = torch.rand(2, 1, 32, 32, generator=gen)
    expected = distiller.kd_terms(s_feat, s_log, t_feat, t_log, foreground, ratio=0.5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = distiller.kd_terms(s_feat, s_log, t_feat, t_log, foreground, ratio=0.5)
    for value, reference in zip(got, expected):  # the same fp32 operations: the same bits (one bf16 op: not)
        assert value.dtype == torch.float32 and torch.equal(value, reference), (value, reference)
    distiller = Distiller(student, teacher, DistillConfig(data=".", teacher=".")).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):  # a whole bf16 training step stays finite
        losses = distiller(*_batch())
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in distiller.filters.parameters())


def test_losses_are_the_weighted_sum_of_the_equations():
    """kd_terms against the equations evaluated by hand from the same captured tensors (FRS only, one level)."""
    teacher, student = _detectors("retinanet", "mobilenet_v2")
    cfg = DistillConfig(data=".", teacher=".", ede=False, fdr=False, hsm=False)
    distiller = Distiller(student, teacher, cfg)
    gen = torch.Generator().manual_seed(3)
    level = next(iter(distiller.level_map))
    t_feat = {level: torch.randn(2, 256, 8, 8, generator=gen)}
    s_feat = {level: torch.randn(2, 256, 8, 8, generator=gen)}
    t_log, s_log = torch.randn(2, 27, 8, 8, generator=gen), torch.randn(2, 27, 8, 8, generator=gen)
    distiller.level_map = {level: level}
    feat, head = distiller.kd_terms(s_feat, {level: s_log}, t_feat, {level: t_log})
    mask = torch.sigmoid(t_log).amax(dim=1, keepdim=True)
    adapted = distiller.adapters(level, s_feat[level])
    expected_feat = (mask * (t_feat[level] - adapted).pow(2).sum(1, keepdim=True)).sum() / mask.sum()
    p_t, p_s = torch.sigmoid(t_log), torch.sigmoid(s_log)
    bce = -(p_t * torch.log(p_s) + (1 - p_t) * torch.log(1 - p_s))
    expected_head = (mask * bce.sum(1, keepdim=True)).sum() / mask.sum()
    assert feat.item() == pytest.approx(expected_feat.item(), rel=1e-5)
    assert head.item() == pytest.approx(expected_head.item(), rel=1e-5)


def test_match_levels_by_spatial_size():
    s = {"0": torch.zeros(1, 1, 4, 4), "pool": torch.zeros(1, 1, 2, 2), "x": torch.zeros(1, 1, 3, 3)}
    t = {"0": torch.zeros(1, 1, 16, 16), "3": torch.zeros(1, 1, 4, 4), "pool": torch.zeros(1, 1, 2, 2)}
    assert match_levels(s, t) == {"0": "3", "pool": "pool"}


# ------------------------------------------------------------------------------------------------ runs


def _easy_coco(root, counts=(("train", 24), ("val", 8), ("test", 8)), size=64, seed=0):
    """One class: a bright 24×16 rectangle on gamma speckle in each image."""
    rng = np.random.default_rng(seed)
    for split, n in counts:
        (root / "images" / split).mkdir(parents=True)
        images, annotations = [], []
        for i in range(n):
            pixels = rng.gamma(1.0, 20.0, (size, size)).clip(0, 255).astype(np.uint8)
            x, y = int(rng.integers(4, size - 28)), int(rng.integers(4, size - 20))
            pixels[y : y + 16, x : x + 24] = 230
            name = f"{split}_{i}.png"
            Image.fromarray(pixels).save(root / "images" / split / name)
            images.append({"id": i + 1, "file_name": name, "width": size, "height": size, "sample_id": f"{split}{i}"})
            annotations.append({"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [x, y, 24, 16],
                                "area": 24 * 16, "iscrowd": 0})
        (root / "annotations").mkdir(exist_ok=True)
        (root / "annotations" / f"{split}.json").write_text(json.dumps(
            {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "aircraft"}]}))
    return root


def _teacher_cfg(data, **kw):
    options = dict(data=str(data), arch="faster_rcnn", backbone="resnet18", image_size=64, epochs=6, batch_size=4,
                   lr=0.02, warmup_iters=10, device="cpu", model_options=SMALL_RCNN, progress=False)
    options.update(kw)
    return TeacherConfig(**options)


def test_teacher_gate_refuses_or_warns():
    report = {"checkpoint": "t.pth", "split": "val", "AP50": 0.12}
    with pytest.raises(ValueError, match="AP50 0.120 < 0.5"):
        check_teacher(report, 0.5)
    with pytest.warns(UserWarning, match="WEAK TEACHER"):
        check_teacher(report, 0.5, allow_weak=True)
    check_teacher({**report, "AP50": 0.7}, 0.5)


def test_untrained_teacher_is_refused(tmp_path):
    data = _easy_coco(tmp_path / "coco", counts=(("train", 4), ("val", 2), ("test", 2)))
    teacher = ensure_teacher(_teacher_cfg(data, epochs=1, max_images=2), tmp_path / "teachers")
    assert teacher["val"]["AP50"] < 0.5
    cfg = DistillConfig(data=str(data), teacher=teacher["checkpoint"], out_dir=str(tmp_path / "out"), epochs=1,
                        device="cpu", progress=False, max_images=2)
    with pytest.raises(ValueError, match="not learned"):
        distill(cfg)


def test_distilled_student_learns_easy_data_and_the_teacher_is_cached(tmp_path):
    started = time.perf_counter()
    data = _easy_coco(tmp_path / "coco")
    teacher = ensure_teacher(_teacher_cfg(data), tmp_path / "teachers")
    assert not teacher["cached"] and teacher["val"]["AP50"] > 0.5, teacher["val"]
    again = ensure_teacher(_teacher_cfg(data), tmp_path / "teachers")
    assert again["cached"] and again["checkpoint"] == teacher["checkpoint"]
    # ResNet-18 student: a from-scratch MobileNetV2 Faster R-CNN needs more than these 36 steps even undistilled
    cfg = DistillConfig(data=str(data), teacher=teacher["checkpoint"], student="resnet18",
                        out_dir=str(tmp_path / "out"), epochs=6, batch_size=4, warmup_iters=10,
                        device="cpu", progress=False)
    summary = distill(cfg, variant="ifkd")
    assert summary["AP50"] > 0.5, summary["AP50"]  # chance is ~0 for a box detector
    rows = (tmp_path / "out" / "ifkd" / "losses.csv").read_text().splitlines()
    assert rows[0] == "step,epoch,loss,loss_gt,loss_feat,loss_head" and len(rows) == 1 + 6 * 6
    assert [int(r.split(",")[0]) for r in rows[1:]] == list(range(len(rows) - 1))  # one row per step, in order
    assert all(float(r.split(",")[4]) > 0 for r in rows[1:])  # the feature term is on every step
    assert (tmp_path / "out" / "ifkd" / "loss_terms.png").stat().st_size > 0
    assert sorted(p.name for p in (tmp_path / "out" / "ifkd").glob("model_*.pth")) == ["model_5.pth"]  # last only
    assert summary["AP50_agnostic"] >= summary["AP50"] - 1e-9  # one class: the same detections, the same AP
    from sardata.train.detector import load_detector

    _, args = load_detector(tmp_path / "out" / "ifkd" / "checkpoint.pth")
    assert args["model_kwargs"]["backbone"] == "resnet18"
    print(f"teacher + IFKD student: {time.perf_counter() - started:.1f}s")


def test_evaluation_does_not_accumulate_per_batch(tmp_path):
    """After a training step, evaluating over N or 3N batches leaves no hook and adds nothing to the distiller."""
    data = _easy_coco(tmp_path / "coco", counts=(("train", 2), ("test", 12)), size=48)
    teacher, student = _detectors("retinanet", "mobilenet_v2", size=48)
    distiller = Distiller(student, teacher, DistillConfig(data=".", teacher="."))
    distiller.train()
    sum(distiller(*_batch(48)).values()).backward()
    before = len(distiller.step_log)
    sizes = []
    for n in (4, 12):
        import tracemalloc

        tracemalloc.start()
        evaluate_detector(student, data, "test", torch.device("cpu"), batch_size=1, max_images=n)
        sizes.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert all(not m._forward_hooks for m in student.modules())
        assert len(distiller.step_log) == before
    assert sizes[1] < 3 * sizes[0]  # predictions grow with the images, but nothing per batch on top of that


# ------------------------------------------------------------------------------------------------ the table


def test_ablation_rows_mean_and_sample_std_over_seeds():
    runs = [{"variant": v, "seed": s, "AP50": ap, "teacher": {"val_AP50": 0.8}}
            for v, s, ap in (("baseline", 0, 0.5), ("baseline", 1, 0.7), ("ifkd", 0, 0.6), ("ifkd", 1, 0.6))]
    rows = ablation_rows(runs)
    assert [r["variant"] for r in rows] == ["baseline", "ifkd"]
    assert rows[0]["ap50_mean"] == pytest.approx(0.6) and rows[0]["ap50_std"] == pytest.approx(math.sqrt(0.02))
    assert rows[1]["ap50_std"] == pytest.approx(0.0) and rows[1]["seeds"] == [0, 1] and rows[1]["teacher_val_ap50"] == 0.8
    assert rows[1]["ede"] and not rows[0]["frs"]
    table = ablation_markdown(rows)
    assert "| baseline |  |  |  |  | 60.00 ± 14.14 | [0, 1] |" in table
    assert list(VARIANTS) == ["baseline", "frs", "ede", "fdr", "hsm", "ifkd"]


def test_run_ablation_reuses_finished_runs_only_when_identical(tmp_path):
    from dataclasses import replace

    from sardata import checkpoints
    from sardata.train.distill import run_ablation

    cfg = DistillConfig(data=str(tmp_path), teacher=str(tmp_path / "missing.pth"), out_dir=str(tmp_path / "out"))
    run_cfg = replace(cfg, out_dir=str(tmp_path / "out" / "seed0"), seed=0, **VARIANTS["baseline"])
    run_dir = tmp_path / "out" / "seed0" / "baseline"
    run_dir.mkdir(parents=True)
    (run_dir / "summary.json").write_text(json.dumps({"variant": "baseline", "AP50": 0.4,
                                                      "teacher": {"val_AP50": 0.7}}))
    with pytest.raises(FileNotFoundError, match="teacher checkpoint"):  # a summary alone is not a finished run
        run_ablation(cfg, ["baseline"], [0])
    checkpoints.mark_finished(run_dir, checkpoints.run_fingerprint(run_cfg))
    result = run_ablation(cfg, ["baseline"], [0])
    assert result["rows"][0]["ap50_mean"] == 0.4 and (tmp_path / "out" / "ablation.md").is_file()
    with pytest.raises(FileNotFoundError, match="teacher checkpoint"):  # other options: trained again
        run_ablation(replace(cfg, alpha=0.1), ["baseline"], [0])


def test_config_rejects_modules_without_distillation(tmp_path):
    with pytest.raises(ValueError, match="kd=True"):
        DistillConfig(data=str(tmp_path), teacher=str(tmp_path), kd=False).validate()

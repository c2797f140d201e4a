"""IFKD knowledge distillation of FPN detectors (seed 004): a trained, frozen teacher guides a small student.

``L = L_GT + α·L_feat + β·L_head`` with α = 0.06, β = 0.5 (the paper's values), on every FPN level ``l`` the two
networks share (:func:`match_levels`):

* ``L_GT``: the student's own torchvision detection loss.
* ``L_feat = Σ_l 1/N_l Σ_ij M_l,ij Σ_c (φ_FDR(φ_EDE(F_t)) − φ_adapt(F_s))²`` — **one** feature loss.
* ``L_head = Σ_l 1/N_l Σ_ij M_l,ij Σ_c φ_Binary(y_s, y_t)`` (Eq. 13).
* ``M = M_HSM`` (hyperbolic teacher–student distance) when HSM is on, else ``M_FRS`` (Du et al.'s feature-richness
  score, the max over classes of the teacher's sigmoid scores). The modules are switches: with all three off this
  is exactly the FRS distillation of Du et al. (the comparison baseline and the base of the ablation rows).

The loss formulas live in :mod:`sardata.train.distill_losses`; the mask sources of EDE in :mod:`sardata.train.masks`.

Readings of what the paper leaves open (each one a choice made here):

1. **The missing L_feat display equation, and the reduction behind α.** Written as above from the text ("the
   squared difference between the transformed teacher and the adapted student, weighted by M_HSM, summed over
   levels and channels"), with Eq. 13's ``1/N_l``. The paper does not define ``N_l``; here ``N_l = Σ_{n,i,j} M``,
   exactly the reduction of Du et al.'s public FRS code, which IFKD extends and compares against
   (``distill_frs_single.py``: ``(feat_loss * mask[:, None]).sum() / mask.sum()`` per level, summed over levels;
   the head term the same with the element-wise BCE). So the loss is summed over channels, averaged over
   locations (and images) with the mask as weights; it is not divided by ``C`` nor by the batch size a second
   time. With this reduction FRS's own weights (its R101 → R50 configs) are 0.005 (feature) / 0.02 (head) for
   RetinaNet and 0.002 / 0.1 for Faster R-CNN, so the paper's α = 0.06, β = 0.5 weigh the terms 12–30× and 5–25×
   more than FRS does; with an extra ``1/C`` α would weigh the feature term 20–40× *less* than FRS, which the paper
   does not suggest. One more
   detail of the FRS code is not in the IFKD paper and is not used here: the distillation terms ramp up linearly
   over the first 500 iterations (``distill_warm_step``). How big α·L_feat is then depends on the size of the
   features: ``Σ_c (F_t − φ(F_s))²`` over 256 FPN channels of from-scratch detectors is 10³–10⁴ on the synthetic
   data (per-step curves in ``loss_terms.png``); the paper's students start from ImageNet weights, whose
   teacher–student gap is not known here.
2. **Ablation rows.** "EDE", "FDR", "HSM" are FRS + that one module; "IFKD" is FRS + all three; "baseline" is the
   student trained on L_GT alone. Without HSM the weight is M_FRS (FRS's own mask), with HSM it is M_HSM (it
   replaces, not multiplies, M_FRS in both L_feat and L_head); M_FRS still enters FDR's low band.
3. **EDE (Eq. 1–2)** ``F_t + Resize(σ(mask(x)))``: mask sources return logits at image resolution; the sigmoid is
   taken there, mapped into the detector's resized and padded batch (padding = 0), then bilinearly resized to each
   level and added to every channel. The default box source gives ±8 logits (σ ≈ 1 inside boxes, ≈ 0 outside).
4. **FDR (Alg. 1)**, ratio ``r`` random in the paper: ``r ~ U(0.25, 0.75)`` (``fdr_ratio``), drawn once per step
   from the run's seed and shared by all levels; ``M_Binary`` is the centred ``round(rH) × round(rW)`` window of the
   ``fftshift``-ed spectrum. ``W_filter`` is complex, per channel, an 8×8 grid resized to each spectrum,
   initialised to 1 + 0i, trained with the student by the same loss. Note: nothing in the paper's loss stops
   ``W_filter`` (and the adapter) from shrinking towards 0; the run records the filter's mean magnitude.
5. **HSM.** Channel vectors of the FDR/EDE-transformed teacher and of the adapted student are mapped onto the
   Poincaré ball (c = 1) by ``expmap0(f / √C)``; ``M_HSM`` is their distance ``(2/√c) artanh(√c‖(−t) ⊕ s‖)`` per
   location, used as a constant weight (no gradient through the mask), unnormalised (``1/N_l`` normalises it).
6. **Heads.** RetinaNet: the classification logits (A·K channels, Σ_c over all of them). Faster R-CNN: Eq. 13 is a
   dense per-location sum, so it is applied to the RPN objectness (A channels), and M_FRS is the max sigmoid of the
   teacher's objectness; the ROI classifier is not distilled (as in FRS's two-stage code, ``distill_frs_two.py``).
   A MobileNetV2 Faster R-CNN student has no stride-4 level and so its anchor sizes per level differ from the R50
   teacher's; objectness is then compared anchor slot by anchor slot anyway (a known mismatch of this architecture pairing, not of RetinaNet's).
7. **φ_adapt**: a 3×3 convolution per student level (Du et al.), without activation (FPN features are signed).
8. **Optimisation** (not in the paper, which fine-tunes ImageNet-initialised students with SGD for 100 epochs):
   students train from scratch here, with AdamW (lr 2e-3, weight decay 0.05), linear warm-up, ×0.1 at 8/12 and
   11/12 of the iterations, and a global gradient-norm clip of 10 (``grad_clip``). Measured on easy one-class data
   (ResNet-18 Faster R-CNN student, 30 steps): with SGD + the clip, the undistilled student reaches AP50 1.00 and the
   IFKD student 0.00 — α·L_feat (≈ 65: a 256-channel squared distance of ~10³ between from-scratch FPN features)
   dwarfs L_GT (≈ 1), and the global clip then shrinks the L_GT gradient ~30×; without the clip SGD diverges. AdamW
   normalises each parameter's step, so the parameters only L_GT reaches (box regressor, classifier) learn at their
   own pace whatever the size of the distillation terms. The same optimiser serves every ablation row; the per-term
   curves (``loss_terms.png``) show the balance of the terms.

The teacher must have learned before it teaches: :func:`teacher_report` scores it on the validation split (score
threshold 0.001) and :func:`distill` refuses one below ``min_teacher_ap50`` (``allow_weak_teacher`` turns the
refusal into a loud warning). :func:`ensure_teacher` trains a teacher once and reuses it by a hash of its config
and the data. Hooks on the student are registered for one training forward and removed right after it, so
evaluation (and anything else) runs on an unhooked model.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from sardata import checkpoints
from sardata._io import save_figure, write_json, write_text
from sardata.config import TrainConfig
from sardata.train import distill_losses as dl
from sardata.train.distill_teacher import (  # noqa: F401  (re-exported: the distillation API in one place)
    EVAL_SCORE_THRESHOLD,
    Schedule,
    TeacherConfig,
    check_teacher,
    data_fingerprint,
    ensure_teacher,
    evaluate_detector,
    fit,
    set_score_threshold,
    teacher_report,
)
from sardata.train.engine import write_history
from sardata.train.masks import MaskSource, build_mask_source

log = logging.getLogger(__name__)

ARCHS = ("faster_rcnn", "retinanet")
STUDENT_BACKBONES = ("resnet18", "mobilenet_v2")
#: Table rows (the paper's Table 4 order) → switches. ``kd=False``: no teacher at all.
VARIANTS: dict[str, dict[str, bool]] = {
    "baseline": dict(kd=False, ede=False, fdr=False, hsm=False),
    "frs": dict(kd=True, ede=False, fdr=False, hsm=False),
    "ede": dict(kd=True, ede=True, fdr=False, hsm=False),
    "fdr": dict(kd=True, ede=False, fdr=True, hsm=False),
    "hsm": dict(kd=True, ede=False, fdr=False, hsm=True),
    "ifkd": dict(kd=True, ede=True, fdr=True, hsm=True),
}
#: Per-step loss terms written to ``losses.csv`` (unweighted, plus the total actually back-propagated).
LOSS_TERMS = ("loss", "loss_gt", "loss_feat", "loss_head")


@dataclass(kw_only=True)
class DistillConfig(TrainConfig):
    """Options of one distillation run (``sardata train distill``); the shared fields are :class:`TrainConfig`'s
    (``resume`` is refused: a distillation run does not resume yet).

    Attributes:
        data: COCO export directory (``annotations/<split>.json`` + ``images/<split>/``).
        teacher: teacher detector checkpoint (``sardata train detector``); unused when ``kd`` is False.
        student ("mobilenet_v2"): ``resnet18`` or ``mobilenet_v2``.
        out_dir (None): output directory; default ``work_dir(<data dir name>, "distill")``.
        kd (True): distil at all (False: the undistilled student, trained on L_GT only).
        ede (True), fdr (True), hsm (True): the three IFKD modules; all off = FRS (Du et al.).
        head (True): the head term β·L_head.
        alpha (0.06), beta (0.5): loss weights (the paper's).
        fdr_ratio ((0.25, 0.75)): range of FDR's random window ratio r (a fixed r: equal ends).
        hsm_curvature (1.0): Poincaré ball curvature c.
        mask_source ("box"): EDE mask source (``box``, ``soft_box``, ``mobilesam``).
        mask_checkpoint (None): MobileSAM weights when ``mask_source="mobilesam"``.
        student_weights (None): ImageNet backbone weights for the student (file or torchvision name).
        epochs (12), batch_size (4): schedule.
        optimizer ("adamw"): ``adamw`` or ``sgd`` (reading 8 of the module docstring).
        lr (None): default 2e-3 for AdamW, 0.02 × batch/16 for SGD.
        warmup_iters (100): linear warm-up iterations, capped at ¼ of the run and ended before the first ×0.1 step
            (:func:`sardata.train.engine.warmup_length`): a 120-step ``--quick`` student warms up over 30 steps,
            is at full lr for steps 30–79, ×0.1 at 80 and ×0.01 at 110. (Before the cap it warmed up over 100
            steps, still warming when the decay came at step 80, peaking at 0.8 × lr.) The teacher's 1200-step
            run keeps its 100.
        grad_clip (10.0): gradient-norm clip of every step (None: off), for from-scratch students.
        amp (True): the detectors' forward and backward in bf16 on CPUs with native bf16 (fp16 on CUDA;
            :func:`sardata.train.common.autocast`); the distillation terms are always computed in fp32.
        train_split ("train"), eval_split ("test"), val_split ("val"): training, reported and teacher-check splits.
        max_images (None): read at most N images per split (smoke runs).
        min_teacher_ap50 (0.5): refuse a teacher whose validation AP50 is lower.
        allow_weak_teacher (False): warn loudly instead of refusing.
        seed (0): random seed (students of one seed start from one initialisation).
        device (None): torch device; default CUDA when available.
        workers (0): data-loader workers.
        progress (True): progress bars.
    """

    #: Code revision (:func:`sardata.checkpoints.run_fingerprint`). 1: warm-up capped by
    #: :func:`sardata.train.engine.warmup_length` (2026-12-01): a 120-step student had warmed up over 100 steps.
    #: 2: ``amp`` (2026-12-02).
    REVISION: ClassVar[int] = 2

    data: str
    teacher: Path | None = None
    student: str = "mobilenet_v2"
    kd: bool = True
    ede: bool = True
    fdr: bool = True
    hsm: bool = True
    head: bool = True
    alpha: float = 0.06
    beta: float = 0.5
    fdr_ratio: tuple[float, float] = (0.25, 0.75)
    hsm_curvature: float = 1.0
    mask_source: str = "box"
    mask_checkpoint: Path | None = None
    student_weights: str | None = None
    epochs: int = 12
    batch_size: int = 4
    optimizer: str = "adamw"
    lr: float | None = None
    warmup_iters: int = 100
    grad_clip: float | None = 10.0
    amp: bool = True
    train_split: str = "train"
    eval_split: str = "test"
    val_split: str = "val"
    max_images: int | None = None
    min_teacher_ap50: float = 0.5
    allow_weak_teacher: bool = False

    def validate(self) -> "DistillConfig":
        if self.student not in STUDENT_BACKBONES:
            raise ValueError(f"student must be one of {STUDENT_BACKBONES}, got {self.student!r}")
        lo, hi = self.fdr_ratio
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"fdr_ratio must satisfy 0 < low ≤ high ≤ 1, got {self.fdr_ratio}")
        if not self.kd and (self.ede or self.fdr or self.hsm):
            raise ValueError("ede/fdr/hsm need kd=True (they transform the distillation loss)")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be ≥ 1, got {self.epochs}, {self.batch_size}")
        if not Path(self.data).is_dir():
            raise FileNotFoundError(f"COCO export directory not found: {self.data}")
        if self.teacher is None or not Path(self.teacher).is_file():
            raise checkpoints.CheckpointNotFoundError(self.teacher, "the teacher checkpoint, from `sardata train "
                                                      "detector`")
        for name in ("alpha", "beta", "hsm_curvature"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)!r}: must be ≥ 0")
        if self.resume is not None:
            raise ValueError(f"resume={self.resume!r}: distillation runs do not resume; start the run again")
        return super().validate()


# ---------------------------------------------------------------------------------------------------------------
# What the detectors compute
# ---------------------------------------------------------------------------------------------------------------


def detector_arch(model: nn.Module) -> str:
    """``"retinanet"`` or ``"faster_rcnn"`` from a torchvision detector's structure."""
    if hasattr(model, "head") and hasattr(model.head, "classification_head"):
        return "retinanet"
    if hasattr(model, "rpn") and hasattr(model, "roi_heads"):
        return "faster_rcnn"
    raise ValueError(f"unsupported detector {type(model).__name__}: expected torchvision RetinaNet or Faster R-CNN")


def _dense_logits_module(model: nn.Module) -> nn.Module:
    """The conv producing the per-level dense class logits: RetinaNet's ``cls_logits`` or the RPN objectness."""
    return model.head.classification_head.cls_logits if detector_arch(model) == "retinanet" else model.rpn.head.cls_logits


@contextlib.contextmanager
def capture(model: nn.Module):
    """Hooks for ONE forward: yields ``{"images", "features", "logits"}`` filled by the student's forward, and
    removes the hooks on exit (so an evaluation never accumulates anything)."""
    store: dict = {"images": None, "features": None, "logits": []}

    def on_backbone(module, inputs, output):
        store["images"], store["features"] = inputs[0], dict(output)

    def on_logits(module, inputs, output):
        store["logits"].append(output)

    handles = [model.backbone.register_forward_hook(on_backbone),
               _dense_logits_module(model).register_forward_hook(on_logits)]
    try:
        yield store
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def teacher_outputs(teacher: nn.Module, images: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Teacher FPN features and per-level dense logits (RetinaNet classes / RPN objectness) on a transformed batch."""
    features = teacher.backbone(images)
    if detector_arch(teacher) == "retinanet":
        head = teacher.head.classification_head
    else:
        head = teacher.rpn.head
    return dict(features), {name: head.cls_logits(head.conv(f)) for name, f in features.items()}


def match_levels(student_features: dict, teacher_features: dict) -> dict[str, str]:
    """Student level → teacher level with the same spatial size (levels without a partner are skipped)."""
    by_size: dict = {}
    for name, feat in teacher_features.items():
        by_size.setdefault(tuple(feat.shape[-2:]), name)
    return {name: by_size[tuple(f.shape[-2:])] for name, f in student_features.items() if tuple(f.shape[-2:]) in by_size}


# ---------------------------------------------------------------------------------------------------------------
# The distiller
# ---------------------------------------------------------------------------------------------------------------


class Distiller(nn.Module):
    """Student + frozen teacher + the trainable distillation parts (φ_adapt per level, W_filter per level).

    ``forward(images, targets)`` in training mode returns a loss dict whose values sum to
    ``L_GT + α·L_feat + β·L_head`` (the student's own loss keys, ``loss_kd_feat`` = α·L_feat and ``loss_kd_head``
    = β·L_head), so a plain detection ``train_one_epoch`` trains it. The unweighted terms of every step are kept in
    :attr:`step_log`.

    Args:
        student: torchvision detector being trained.
        teacher: torchvision detector of the same architecture and classes; frozen here.
        cfg: the run options (switches and weights).
        mask_source (None): EDE mask source; default from ``cfg.mask_source``.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, cfg: DistillConfig, mask_source: MaskSource | None = None):
        super().__init__()
        if detector_arch(student) != detector_arch(teacher):
            raise ValueError(f"student is {detector_arch(student)} but teacher is {detector_arch(teacher)}")
        self.student = student
        self.teacher = teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.cfg = cfg
        self.mask_source = mask_source or (build_mask_source(cfg.mask_source, cfg.mask_checkpoint) if cfg.ede else None)
        self._ratio_rng = torch.Generator().manual_seed(int(cfg.seed))
        self.step_log: list[dict[str, float]] = []
        self.level_map, s_ch, t_ch = self._probe_levels()
        device = next(student.parameters()).device
        self.adapters = dl.FeatureAdapter(list(self.level_map), s_ch, t_ch).to(device)
        self.filters = nn.ModuleDict({dl._key(k): dl.SpectralFilter(t_ch) for k in self.level_map}).to(device)

    def _probe_levels(self) -> tuple[dict[str, str], int, int]:
        size = int(self.student.transform.min_size[0])
        device = next(self.student.parameters()).device
        blank = torch.zeros(1, 3, size, size, device=device)
        was_training = self.student.training
        self.student.eval()
        with torch.no_grad():
            s_feat, t_feat = self.student.backbone(blank), self.teacher.backbone(blank)
        self.student.train(was_training)
        level_map = match_levels(s_feat, t_feat)
        if not level_map:
            raise ValueError("student and teacher FPN levels share no spatial size; check image sizes and backbones")
        return level_map, next(iter(s_feat.values())).shape[1], next(iter(t_feat.values())).shape[1]

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Student + adapters (+ W_filter when FDR is on); never the teacher's."""
        params = [p for p in self.student.parameters() if p.requires_grad] + list(self.adapters.parameters())
        if self.cfg.fdr:
            params += list(self.filters.parameters())
        return params

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # the teacher always stays in eval mode (frozen BN statistics)
        return self

    def filter_magnitude(self) -> float:
        """Mean |W_filter| over levels (1.0 at initialisation)."""
        with torch.no_grad():
            values = [f.weights(f.real.shape[-2], f.real.shape[-1]).abs().mean() for f in self.filters.values()]
            return float(torch.stack(values).mean())

    def forward(self, images: list[torch.Tensor], targets: list[dict]) -> dict[str, torch.Tensor]:
        with capture(self.student) as store:
            gt_losses = self.student(images, targets)
        loss_gt = sum(gt_losses.values())
        t_features, t_logits = teacher_outputs(self.teacher, store["images"])
        s_logits = dict(zip(store["features"], store["logits"][-len(store["features"]):]))
        foreground = self._foreground(images, targets, store["images"]) if self.cfg.ede else None
        loss_feat, loss_head = self.kd_terms(store["features"], s_logits, t_features, t_logits, foreground)
        total = (loss_gt + self.cfg.alpha * loss_feat + self.cfg.beta * loss_head).detach()
        self.step_log.append({"loss": float(total),
                              "loss_gt": float(loss_gt.detach()), "loss_feat": float(loss_feat.detach()),
                              "loss_head": float(loss_head.detach())})
        return {**gt_losses, "loss_kd_feat": self.cfg.alpha * loss_feat, "loss_kd_head": self.cfg.beta * loss_head}

    def kd_terms(self, s_features: dict, s_logits: dict, t_features: dict, t_logits: dict,
                 foreground: torch.Tensor | None = None, ratio: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(L_feat, L_head)`` summed over the matched levels (unweighted), in fp32 whatever the autocast around
        the forward (``amp``): torch.fft has no bf16, and HSM's atanh clamp at 1 − 1e-6 rounds to 1 in bf16."""
        device_type = next(iter(s_features.values())).device.type
        with torch.autocast(device_type, enabled=False):
            fp32 = lambda maps: {k: v.float() for k, v in maps.items()}  # noqa: E731
            return self._kd_terms_fp32(fp32(s_features), fp32(s_logits), fp32(t_features), fp32(t_logits),
                                       None if foreground is None else foreground.float(), ratio)

    def _kd_terms_fp32(self, s_features, s_logits, t_features, t_logits, foreground, ratio):
        cfg = self.cfg
        if ratio is None:
            lo, hi = cfg.fdr_ratio
            ratio = lo + (hi - lo) * float(torch.rand((), generator=self._ratio_rng))
        loss_feat = loss_head = next(iter(s_features.values())).new_zeros(())
        for s_level, t_level in self.level_map.items():
            teacher = t_features[t_level].detach()
            frs = dl.frs_mask(t_logits[t_level]).detach()
            if foreground is not None:
                teacher = dl.embed_foreground(teacher, foreground)
            if cfg.fdr:
                teacher = dl.fdr_rebuild(teacher, frs, ratio, self.filters[dl._key(s_level)])
            student = self.adapters(s_level, s_features[s_level])
            weight = dl.hsm_mask(teacher, student, cfg.hsm_curvature) if cfg.hsm else frs
            loss_feat = loss_feat + dl.feature_loss(teacher, student, weight)
            if cfg.head:
                loss_head = loss_head + dl.head_loss(s_logits[s_level], t_logits[t_level], weight)
        return loss_feat, loss_head

    def _foreground(self, images, targets, batch: torch.Tensor) -> torch.Tensor:
        """σ(mask logits) laid out like the transformed, padded batch ``(N, 1, H_pad, W_pad)`` (padding 0)."""
        transform = self.student.transform
        out = batch.new_zeros(batch.shape[0], 1, *batch.shape[-2:])
        for i, (image, target) in enumerate(zip(images, targets)):
            prob = torch.sigmoid(self.mask_source(image, target).float())[None, None]
            h, w = image.shape[-2:]
            # GeneralizedRCNNTransform's rule: short side to min_size unless the long side would pass max_size.
            scale = min(float(transform.min_size[-1]) / min(h, w), float(transform.max_size) / max(h, w))
            size = (min(batch.shape[-2], int(h * scale)), min(batch.shape[-1], int(w * scale)))
            out[i, :, : size[0], : size[1]] = F.interpolate(prob, size=size, mode="bilinear", align_corners=False)[0]
        return out


# ---------------------------------------------------------------------------------------------------------------
# Training one student
# ---------------------------------------------------------------------------------------------------------------


def build_student(teacher_kwargs: dict, backbone: str, weights: str | None = None) -> tuple[nn.Module, dict]:
    """Student detector with the teacher's architecture, classes, input size and normalisation (the teacher reads
    the student's transformed batch, so they must match). Returns ``(model, model_kwargs)``."""
    from sardata.train.detector import build_detector

    kwargs = {k: v for k, v in teacher_kwargs.items() if k not in ("backbone", "frozen_bn", "backbone_weights")}
    kwargs.update(backbone=backbone, frozen_bn=weights is not None)
    return build_detector(backbone_weights=weights, **kwargs), kwargs


def distill(cfg: DistillConfig, variant: str | None = None) -> dict:
    """Trains one student (with or without distillation), evaluates it, writes its outputs; returns the summary.

    Writes into ``out_dir`` (``<out_dir>/<variant>`` when given): ``checkpoint.pth`` / ``model_<epoch>.pth``
    (student only, loadable with :func:`sardata.train.detector.load_detector`), ``losses.csv`` (every step's
    unweighted L_GT, L_feat, L_head and the total), ``loss_terms.png``, ``metrics.{json,csv,png}`` and
    ``summary.json``.

    Returns:
        dict with ``variant``, ``AP50``, ``mAP``, ``AP50_agnostic`` (on ``eval_split``), ``teacher``, ``steps``,
        ``final_losses``, ``filter_magnitude``, ``checkpoint``, ``losses_csv``, ``out_dir``.
    """
    from sardata.runtime import resolve_device, seed_everything
    from sardata.train import common
    from sardata.train.coco_data import CocoDetection
    from sardata.train.detector import load_detector

    cfg.validate()
    device = resolve_device(cfg.device)
    out_dir = Path(cfg.out_dir) if cfg.out_dir else _default_out_dir(cfg)
    if variant:
        out_dir = out_dir / variant
    out_dir.mkdir(parents=True, exist_ok=True)

    teacher, teacher_args = load_detector(cfg.teacher, device=device)
    teacher_kwargs = dict(teacher_args["model_kwargs"])
    if teacher_kwargs["arch"] not in ARCHS:
        raise ValueError(f"{cfg.teacher}: teacher is {teacher_kwargs['arch']}; distillation supports {ARCHS}")
    report = teacher_report(cfg.teacher, cfg.data, cfg.val_split, device, cfg.max_images)
    if cfg.kd:
        check_teacher(report, cfg.min_teacher_ap50, cfg.allow_weak_teacher)

    train_set = CocoDetection(cfg.data, cfg.train_split, train=True, max_images=cfg.max_images)
    if len(train_set) == 0:
        raise ValueError(f"{cfg.data}: split {cfg.train_split!r} has no readable images")
    seed_everything(cfg.seed)
    student, student_kwargs = build_student(teacher_kwargs, cfg.student, cfg.student_weights)
    student.to(device)
    model = Distiller(student, teacher, cfg).to(device) if cfg.kd else student
    args = {**common.plain(asdict(cfg)), "variant": variant, "model_kwargs": common.plain(student_kwargs)}
    step_rows: list[dict] = []

    def on_epoch(epoch: int, record: dict) -> None:
        if cfg.kd:
            first = len(step_rows)
            step_rows.extend([{"step": first + i, "epoch": epoch, **row} for i, row in enumerate(model.step_log)])
            model.step_log.clear()
            record["filter_magnitude"] = model.filter_magnitude()
        else:
            step_rows.append({"step": len(step_rows), "epoch": epoch, "loss": record["loss"],
                              "loss_gt": record["loss"], "loss_feat": 0.0, "loss_head": 0.0})

    history = fit(model, train_set, Schedule.of(cfg), device, out_dir, student, args, on_epoch, progress=cfg.progress)
    metrics = evaluate_detector(student, cfg.data, cfg.eval_split, device, cfg.batch_size, cfg.max_images,
                                cfg.progress)
    history[-1].update({k: metrics[k] for k in ("AP50", "mAP")})
    write_history(history, out_dir)
    csv_path = _write_rows(out_dir / "losses.csv", step_rows)
    plot_path = plot_loss_terms(step_rows, out_dir / "loss_terms.png", title=variant or "distill", alpha=cfg.alpha,
                                beta=cfg.beta)
    summary = {"variant": variant or "custom", "AP50": metrics["AP50"], "mAP": metrics["mAP"],
               "AP50_agnostic": metrics["AP50_agnostic"],
               "per_class_AP50": {k: v.get("AP50") for k, v in metrics.get("per_class", {}).items()},
               "teacher": {"checkpoint": str(cfg.teacher), "val_AP50": report["AP50"]}, "steps": len(step_rows),
               "final_losses": step_rows[-1] if step_rows else {},
               "filter_magnitude": history[-1].get("filter_magnitude"),
               "checkpoint": str(out_dir / checkpoints.CHECKPOINT_NAME),
               "losses_csv": str(csv_path), "loss_plot": str(plot_path), "out_dir": str(out_dir), "config": args}
    _write_json(out_dir / "summary.json", summary)
    return summary


# ---------------------------------------------------------------------------------------------------------------
# The ablation table (Table 4 layout)
# ---------------------------------------------------------------------------------------------------------------


def run_ablation(cfg: DistillConfig, variants: list[str] | None = None, seeds: list[int] | None = None,
                 processes: int | None = None) -> dict:
    """Trains every variant (default all :data:`VARIANTS`) for every seed; writes ``ablation.{json,md}``.

    A run that finished with the same options on the same data (``<out_dir>/seed<k>/<variant>/``,
    :func:`sardata.checkpoints.finished_run`) is reused, not retrained: an interrupted grid resumes, and a table
    over fewer seeds is rebuilt from the finished runs. The others train ``processes`` at a time on a CPU, one
    thread each (:func:`sardata.runtime.run_concurrently`; default one per core; each run is seeded by its own
    config, so a result does not depend on what trains beside it).

    Returns:
        ``{"rows": [...], "runs": [summary, ...], "json": path, "markdown": path}``; one row per variant with
        ``ap50_mean``, ``ap50_std`` (sample std over seeds), ``seeds``, ``ap50_per_seed``,
        ``teacher_val_ap50`` (the teacher's AP50 on the validation split).
    """
    from sardata.runtime import resolve_device, run_concurrently

    variants = variants or list(VARIANTS)
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    seeds = seeds or [cfg.seed]
    out_dir = Path(cfg.out_dir) if cfg.out_dir else _default_out_dir(cfg)
    grid = [(seed, name, replace(cfg, out_dir=str(out_dir / f"seed{seed}"), seed=seed, **VARIANTS[name]))
            for seed in seeds for name in variants]
    finished = {(seed, name): _finished_run(run_cfg, name) for seed, name, run_cfg in grid}
    pending = [(run_cfg, name) for seed, name, run_cfg in grid if finished[seed, name] is None]
    if pending:
        pending[0][0].validate()
        # scored (and cached beside the checkpoint) once here, not by every process at once; a weak teacher
        # is refused before anything trains
        report = teacher_report(cfg.teacher, cfg.data, cfg.val_split, resolve_device(cfg.device), cfg.max_images)
        if any(run_cfg.kd for run_cfg, _ in pending):
            check_teacher(report, cfg.min_teacher_ap50, cfg.allow_weak_teacher)
    trained = iter(run_concurrently(_distill_and_mark, pending, processes,
                                    devices=[run_cfg.device for run_cfg, _ in pending]))
    runs = [{**(finished[seed, name] or next(trained)), "seed": seed} for seed, name, _ in grid]
    rows = ablation_rows(runs)
    json_path = _write_json(out_dir / "ablation.json", rows)
    md_path = write_text(out_dir / "ablation.md", ablation_markdown(rows) + "\n")
    return {"rows": rows, "runs": runs, "json": str(json_path), "markdown": str(md_path)}


def _distill_and_mark(job: tuple[DistillConfig, str]) -> dict:
    """One ablation run (:func:`distill`), recorded as finished for :func:`_finished_run`."""
    run_cfg, name = job
    summary = distill(run_cfg, variant=name)
    checkpoints.mark_finished(Path(run_cfg.out_dir) / name, checkpoints.run_fingerprint(run_cfg))
    return summary


def _finished_run(cfg: DistillConfig, variant: str) -> dict | None:
    """The summary of a run of the same options on the same data that finished (:mod:`sardata.checkpoints`'s
    record), or None."""
    run_dir = Path(cfg.out_dir) / variant
    if checkpoints.finished_run(run_dir, checkpoints.run_fingerprint(cfg)) is None:
        return None
    return json.loads((run_dir / "summary.json").read_text())


def ablation_rows(runs: list[dict]) -> list[dict]:
    """Per-variant mean ± sample std of AP50 over seeds, in :data:`VARIANTS` order."""
    rows = []
    for name, switches in VARIANTS.items():
        mine = [r for r in runs if r["variant"] == name]
        if not mine:
            continue
        values = [float(r["AP50"]) for r in mine]
        mean, std = _mean_std(values)
        agnostic = [r.get("AP50_agnostic") for r in mine]
        agnostic_mean = _mean_std([float(v) for v in agnostic])[0] if None not in agnostic else None
        rows.append({"variant": name, "frs": switches["kd"], "ede": switches["ede"], "fdr": switches["fdr"],
                     "hsm": switches["hsm"], "ap50_mean": mean, "ap50_std": std, "seeds": [r["seed"] for r in mine],
                     "ap50_per_seed": values, "ap50_agnostic_mean": agnostic_mean,
                     "teacher_val_ap50": mine[0]["teacher"]["val_AP50"]})
    return rows


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (NaN for one value)."""
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else float("nan")
    return mean, std


def ablation_markdown(rows: list[dict]) -> str:
    """Table 4 layout: one ✓ column per module, AP50 mean ± std (%) over seeds."""
    lines = ["| variant | FRS | EDE | FDR | HSM | AP50 (%) mean ± std | seeds |", "|---|:-:|:-:|:-:|:-:|---:|---|"]
    for row in rows:
        marks = ["✓" if row[k] else "" for k in ("frs", "ede", "fdr", "hsm")]
        lines.append(f"| {row['variant']} | " + " | ".join(marks) +
                     f" | {100 * row['ap50_mean']:.2f} ± {100 * row['ap50_std']:.2f} | {row['seeds']} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------------------------


def plot_loss_terms(rows: list[dict], path: str | Path, title: str = "", alpha: float = 0.06,
                    beta: float = 0.5) -> Path:
    """Per-step curves of L_GT, α·L_feat, β·L_head and the total (what each term contributes), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, scale, label in (("loss", 1.0, "total"), ("loss_gt", 1.0, "L_GT"), ("loss_feat", alpha, "α·L_feat"),
                              ("loss_head", beta, "β·L_head")):
        ax.plot(steps, [scale * r[key] for r in rows], label=label, lw=1.2)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("symlog", linthresh=1e-2)
    ax.set_title(f"loss terms — {title}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = save_figure(path, fig, dpi=100)
    plt.close(fig)
    return path


def _default_out_dir(cfg: DistillConfig) -> Path:
    from sardata.paths import work_dir

    return work_dir(Path(cfg.data).resolve().name, "distill")


def _write_json(path: Path, payload) -> Path:
    return write_json(path, json.loads(json.dumps(payload, default=str)), indent=2)


def _write_rows(path: Path, rows: list[dict]) -> Path:
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["step", "epoch", *LOSS_TERMS], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return write_text(path, buffer.getvalue())

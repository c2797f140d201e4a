"""IFKD knowledge distillation of FPN detectors (seed 004): a frozen teacher trains a small student.

``L = L_GT + α·L_feat + β·L_head`` with α = 0.06, β = 0.5 (the paper's values).

* ``L_GT`` is the student's own torchvision detection loss.
* ``L_feat`` is summed over the FPN levels the two networks share (matched by spatial size, so a MobileNetV2-FPN
  student with two stride-32 maps distils from the teacher's stride-32 map): FRS (on by default), FDR low + high
  band, HSM, each switchable; EDE (foreground masks from a pluggable :mod:`sardata.train.masks` source) enhances
  the teacher maps first. Student maps pass a per-level 1×1 adapter conv.
* ``L_head`` distils the classification head: for RetinaNet the classification logits (BCE to teacher sigmoid
  probabilities, weighted by the FRS mask); for Faster R-CNN the RPN objectness the same way plus a temperature
  KL on the ROI class logits of the student's sampled proposals, re-pooled from the teacher's features. When
  anchor counts differ, both sides are first reduced to the per-class maximum over anchors.
* The FRS mask is the max over classes (and anchors) of the teacher's sigmoid classification score: RetinaNet
  classification logits; for Faster R-CNN the RPN objectness.

The teacher runs in eval mode under ``no_grad`` on the student's own transformed batch (so both see identical
pixels), and its parameters never receive gradients. Captures use forward hooks, so the unmodified torchvision
``model(images, targets)`` computes ``L_GT``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from sardata import checkpoints
from sardata.config import LATEST, TrainConfig
from sardata._io import write_json, write_text
from sardata.runtime import seed_everything
from sardata.train import distill_losses as dl
from sardata.train.masks import MaskSource, build_mask_source

log = logging.getLogger(__name__)

ARCHS = ("faster_rcnn", "retinanet")
STUDENT_BACKBONES = ("resnet18", "mobilenet_v2")
LOSS_COLUMNS = ("loss", "loss_gt", "loss_frs", "loss_fdr_low", "loss_fdr_high", "loss_hsm", "loss_head")

#: Ablation variants, in table order: name → which feature losses are on.
ABLATION_VARIANTS: dict[str, dict[str, bool]] = {
    "baseline": dict(frs=False, ede=False, fdr=False, hsm=False, head=False),
    "frs": dict(frs=True, ede=False, fdr=False, hsm=False, head=True),
    "frs+ede": dict(frs=True, ede=True, fdr=False, hsm=False, head=True),
    "frs+fdr": dict(frs=True, ede=False, fdr=True, hsm=False, head=True),
    "frs+hsm": dict(frs=True, ede=False, fdr=False, hsm=True, head=True),
    "full": dict(frs=True, ede=True, fdr=True, hsm=True, head=True),
}


@dataclass(kw_only=True)
class DistillConfig(TrainConfig):
    """Options of one distillation run (``sardata train distill``); the shared fields are :class:`TrainConfig`'s.

    Attributes:
        data: COCO export directory (``annotations/<split>.json`` + ``images/<split>/``).
        teacher: teacher detector checkpoint.
        student ("resnet18"): student backbone, ``resnet18`` or ``mobilenet_v2``.
        arch (None): ``faster_rcnn`` or ``retinanet``; default the teacher's.
        out_dir (None): output directory; default ``work_dir(<data dir name>, "distill")``.
        frs (True): FRS feature loss.
        ede (False): foreground embedding into teacher features.
        fdr (False): frequency-decoupled loss.
        hsm (False): hyperbolic similarity mask loss.
        head (True): head (classification) distillation.
        alpha (0.06): weight of the feature loss.
        beta (0.5): weight of the head loss.
        ede_strength (1.0): λ in ``T' = T + λ·m·T``.
        fdr_ratio (0.5): side of the low-frequency square as a fraction of the map.
        hsm_curvature (1.0): Poincaré ball curvature c.
        kd_temperature (2.0): temperature of the ROI-logit KL (Faster R-CNN).
        mask_source ("box"): EDE mask source (``box``, ``soft_box``, ``mobilesam``).
        mask_checkpoint (None): MobileSAM weights when ``mask_source="mobilesam"``.
        student_weights (None): ImageNet backbone weights for the student (file path or torchvision enum name).
        epochs (12): training epochs.
        batch_size (4): images per step.
        lr (0.01): SGD learning rate (momentum 0.9, weight decay 1e-4).
        image_size (None): detector input size; default the teacher's (the teacher is resized to match).
        train_split ("train"): split trained on.
        val_split ("test"): split evaluated on (falls back to ``val``).
        max_steps (None): stop after this many steps (smoke runs).
        max_eval_images (None): evaluate on at most this many images.
        seed (0): random seed (also makes ablation variants start from one initialisation).
        device (None): torch device; default CUDA when available.
        workers (0): data-loader workers.
        resume (None): a student checkpoint (file or run directory) to continue from at the next epoch, or
            ``"latest"`` (the newest in the run's directory if any). The student, its adapters/FDR filters, the
            optimizer and the schedule are restored; the shuffling order after a resume differs from an
            uninterrupted run's (the loader is reseeded from ``seed`` at start).
    """

    PATH_FIELDS = ("out_dir", "data", "teacher", "mask_checkpoint")

    data: Path
    teacher: Path
    student: str = "resnet18"
    arch: str | None = None
    frs: bool = True
    ede: bool = False
    fdr: bool = False
    hsm: bool = False
    head: bool = True
    alpha: float = 0.06
    beta: float = 0.5
    ede_strength: float = 1.0
    fdr_ratio: float = 0.5
    hsm_curvature: float = 1.0
    kd_temperature: float = 2.0
    mask_source: str = "box"
    mask_checkpoint: Path | None = None
    student_weights: str | None = None
    epochs: int = 12
    batch_size: int = 4
    lr: float = 0.01
    image_size: int | None = None
    train_split: str = "train"
    val_split: str = "test"
    max_steps: int | None = None
    max_eval_images: int | None = None

    def validate(self) -> "DistillConfig":
        if self.student not in STUDENT_BACKBONES:
            raise ValueError(f"student must be one of {STUDENT_BACKBONES}, got {self.student!r}")
        if self.arch is not None and self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        if (self.fdr or self.hsm or self.ede) and not self.frs:
            log.info("FDR/HSM/EDE requested without FRS: the teacher mask is still computed for them")
        if not Path(self.data).is_dir():
            raise FileNotFoundError(f"COCO export directory not found: {self.data}")
        if not Path(self.teacher).is_file():
            raise checkpoints.CheckpointNotFoundError(self.teacher, "the teacher: a `sardata train detector` checkpoint")
        for name in ("alpha", "beta", "ede_strength", "hsm_curvature", "kd_temperature"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)!r}: must be ≥ 0")
        if not 0.0 < self.fdr_ratio <= 1.0:
            raise ValueError(f"fdr_ratio={self.fdr_ratio!r}: must be in (0, 1]")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps={self.max_steps!r}: must be ≥ 1 (or None)")
        return super().validate()


# ---------------------------------------------------------------------------------------------------------------
# Capturing what the detectors compute
# ---------------------------------------------------------------------------------------------------------------


class _Capture:
    """Forward hooks that record FPN features, the transformed batch and head logits of a torchvision detector."""

    def __init__(self, model: nn.Module):
        self.arch = detector_arch(model)
        self.features: dict[str, torch.Tensor] = {}
        self.images: torch.Tensor | None = None
        self.cls_maps: list[torch.Tensor] = []
        self.roi_inputs: tuple | None = None
        self.roi_logits: torch.Tensor | None = None
        self._handles = [model.backbone.register_forward_hook(self._on_backbone)]
        cls_conv = model.head.classification_head.cls_logits if self.arch == "retinanet" else model.rpn.head.cls_logits
        self._handles.append(cls_conv.register_forward_hook(self._on_cls))
        if self.arch == "faster_rcnn":
            self._handles.append(model.roi_heads.box_roi_pool.register_forward_hook(self._on_roi_pool))
            self._handles.append(model.roi_heads.box_predictor.register_forward_hook(self._on_box_predictor))

    def reset(self) -> None:
        self.features, self.images, self.cls_maps, self.roi_inputs, self.roi_logits = {}, None, [], None, None

    def _on_backbone(self, module, inputs, output):
        self.images = inputs[0]
        self.features = dict(output)

    def _on_cls(self, module, inputs, output):
        self.cls_maps.append(output)

    def _on_roi_pool(self, module, inputs, output):
        self.roi_inputs = inputs  # (features, proposals, image_shapes)

    def _on_box_predictor(self, module, inputs, output):
        self.roi_logits = output[0]

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def detector_arch(model: nn.Module) -> str:
    """``"retinanet"`` or ``"faster_rcnn"`` from a torchvision detector's structure."""
    if hasattr(model, "head") and hasattr(model.head, "classification_head"):
        return "retinanet"
    if hasattr(model, "rpn") and hasattr(model, "roi_heads"):
        return "faster_rcnn"
    raise ValueError(f"unsupported detector {type(model).__name__}: expected torchvision RetinaNet or Faster R-CNN")


def _num_head_classes(model: nn.Module) -> int:
    return model.head.classification_head.num_classes if detector_arch(model) == "retinanet" else 1


@torch.no_grad()
def teacher_outputs(teacher: nn.Module, images: torch.Tensor) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
    """Teacher FPN features and per-level classification maps ``(N, A·K, H, W)`` on a transformed batch."""
    features = teacher.backbone(images)
    if detector_arch(teacher) == "retinanet":
        cls_head = teacher.head.classification_head
        maps = [cls_head.cls_logits(cls_head.conv(f)) for f in features.values()]
    else:
        rpn_head = teacher.rpn.head
        maps = [rpn_head.cls_logits(rpn_head.conv(f)) for f in features.values()]
    return dict(features), maps


def match_levels(student_features: dict, teacher_features: dict) -> dict[str, str]:
    """Student level → teacher level with the same spatial size (levels without a partner are skipped)."""
    by_size = {}
    for name, feat in teacher_features.items():
        by_size.setdefault(tuple(feat.shape[-2:]), name)
    return {name: by_size[tuple(f.shape[-2:])] for name, f in student_features.items() if tuple(f.shape[-2:]) in by_size}


def _per_class_max(maps: torch.Tensor, num_classes: int) -> torch.Tensor:
    n, ak, h, w = maps.shape
    return maps.view(n, ak // num_classes, num_classes, h, w).amax(dim=1)


# ---------------------------------------------------------------------------------------------------------------
# The distiller
# ---------------------------------------------------------------------------------------------------------------


class Distiller(nn.Module):
    """Student + frozen teacher + the trainable distillation parts (adapters, FDR filters).

    Args:
        student: torchvision detector being trained.
        teacher: torchvision detector (same architecture family and classes), frozen here.
        cfg: the run options (loss switches and weights).
        mask_source (None): EDE foreground mask source; default :class:`~sardata.train.masks.BoxMaskSource`.
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
        self.arch = detector_arch(student)
        self.mask_source = mask_source or (build_mask_source(cfg.mask_source, cfg.mask_checkpoint) if cfg.ede else None)
        self._capture = _Capture(student)
        self.adapters: dl.FeatureAdapter | None = None
        self.fdr_filters: nn.ModuleDict | None = None
        self._build_trainable_parts()

    def _build_trainable_parts(self) -> None:
        # Level names and widths come from one dry run of both backbones on a blank image.
        size = int(getattr(self.student.transform, "min_size", (128,))[0])
        device = next(self.student.parameters()).device
        blank = torch.zeros(1, 3, size, size, device=device)
        was_training = self.student.training
        self.student.eval()
        with torch.no_grad():
            student_features = self.student.backbone(blank)
            teacher_features = self.teacher.backbone(blank)
        self.student.train(was_training)
        self.level_map = match_levels(student_features, teacher_features)
        if not self.level_map:
            raise ValueError("student and teacher FPN levels share no spatial size; check image sizes and backbones")
        s_ch = next(iter(student_features.values())).shape[1]
        t_ch = next(iter(teacher_features.values())).shape[1]
        self.adapters = dl.FeatureAdapter(list(self.level_map), s_ch, t_ch).to(device)
        self.fdr_filters = nn.ModuleDict(
            {f"level_{k}": dl.ComplexFrequencyFilter(t_ch) for k in self.level_map}
        ).to(device)

    def trainable_parameters(self) -> list[nn.Parameter]:
        params = [p for p in self.student.parameters() if p.requires_grad]
        params += list(self.adapters.parameters())
        if self.cfg.fdr:
            params += list(self.fdr_filters.parameters())
        return params

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # the teacher always stays in eval mode (frozen BN statistics)
        return self

    def forward(self, images: list[torch.Tensor], targets: list[dict]) -> dict[str, torch.Tensor]:
        """One training forward: returns every loss term (``loss`` is the weighted total to back-propagate)."""
        cfg = self.cfg
        self._capture.reset()
        gt_losses = self.student(images, targets)
        loss_gt = sum(gt_losses.values())
        zero = loss_gt.new_zeros(())
        terms = {"loss_gt": loss_gt, "loss_frs": zero, "loss_fdr_low": zero, "loss_fdr_high": zero,
                 "loss_hsm": zero, "loss_head": zero}
        distilling = cfg.frs or cfg.fdr or cfg.hsm or cfg.head
        if distilling:
            cap = self._capture
            t_features, t_maps = teacher_outputs(self.teacher, cap.images)
            t_maps = dict(zip(t_features.keys(), t_maps))
            s_maps = dict(zip(cap.features.keys(), cap.cls_maps[-len(cap.features):]))
            foreground = self._foreground(images, targets, cap.images) if cfg.ede else None
            terms.update(self._feature_terms(cap.features, t_features, t_maps, foreground))
            if cfg.head:
                terms["loss_head"] = self._head_term(s_maps, t_maps, t_features)
        loss_feat = terms["loss_frs"] + terms["loss_fdr_low"] + terms["loss_fdr_high"] + terms["loss_hsm"]
        terms["loss"] = loss_gt + cfg.alpha * loss_feat + cfg.beta * terms["loss_head"]
        return terms

    def _feature_terms(self, s_features, t_features, t_maps, foreground) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        sums = {k: 0.0 for k in ("loss_frs", "loss_fdr_low", "loss_fdr_high", "loss_hsm")}
        for s_level, t_level in self.level_map.items():
            teacher = t_features[t_level].detach()
            if foreground is not None:
                teacher = dl.embed_foreground(teacher, foreground, cfg.ede_strength)
            student = self.adapters(s_level, s_features[s_level])
            mask = dl.frs_mask(t_maps[t_level]).detach()
            if cfg.frs:
                sums["loss_frs"] = sums["loss_frs"] + dl.masked_feature_loss(teacher, student, mask)
            if cfg.fdr:
                low, high = dl.fdr_loss(teacher, student, mask, self.fdr_filters[f"level_{s_level}"], cfg.fdr_ratio)
                sums["loss_fdr_low"] = sums["loss_fdr_low"] + low
                sums["loss_fdr_high"] = sums["loss_fdr_high"] + high
            if cfg.hsm:
                sums["loss_hsm"] = sums["loss_hsm"] + dl.hsm_loss(teacher, student, cfg.hsm_curvature)
        zero = next(iter(s_features.values())).new_zeros(())
        return {k: (v if torch.is_tensor(v) else zero) for k, v in sums.items()}

    def _head_term(self, s_maps, t_maps, t_features) -> torch.Tensor:
        num_classes = _num_head_classes(self.student)
        total = next(iter(s_maps.values())).new_zeros(())
        for s_level, t_level in self.level_map.items():
            s, t = s_maps[s_level], t_maps[t_level].detach()
            mask = dl.frs_mask(t)
            if s.shape != t.shape:  # different anchor counts: compare per-class maxima over anchors
                s, t = _per_class_max(s, num_classes), _per_class_max(t, _num_head_classes(self.teacher))
            total = total + dl.masked_bce_head_loss(s, t, mask)
        if self.arch == "faster_rcnn" and self._capture.roi_inputs is not None:
            _, proposals, image_shapes = self._capture.roi_inputs
            with torch.no_grad():
                roi = self.teacher.roi_heads
                pooled = roi.box_roi_pool(t_features, proposals, image_shapes)
                t_logits, _ = roi.box_predictor(roi.box_head(pooled))
            total = total + dl.kl_logits_loss(self._capture.roi_logits, t_logits, self.cfg.kd_temperature)
        return total

    def _foreground(self, images, targets, batch: torch.Tensor) -> torch.Tensor:
        """Foreground masks laid out like the transformed, padded batch ``(N, 1, H_pad, W_pad)``."""
        transform = self.student.transform
        out = batch.new_zeros(batch.shape[0], 1, *batch.shape[-2:])
        for i, (image, target) in enumerate(zip(images, targets)):
            mask = self.mask_source(image, target).float()[None, None]
            h, w = image.shape[-2:]
            # GeneralizedRCNNTransform's rule: short side to min_size unless the long side would pass max_size.
            scale = min(float(transform.min_size[-1]) / min(h, w), float(transform.max_size) / max(h, w))
            size = (min(batch.shape[-2], int(h * scale)), min(batch.shape[-1], int(w * scale)))
            out[i, :, : size[0], : size[1]] = F.interpolate(mask, size=size, mode="bilinear", align_corners=False)[0]
        return out


# ---------------------------------------------------------------------------------------------------------------
# Models and evaluation (thin adapters over sardata.train.detector / coco_data)
# ---------------------------------------------------------------------------------------------------------------


def load_teacher(path: str | Path, device: torch.device | None = None) -> tuple[nn.Module, dict]:
    """Teacher detector (eval mode) and its ``build_detector`` kwargs, from a ``sardata train detector`` checkpoint."""
    from sardata.train.detector import load_detector

    model, args = load_detector(path, device=device)
    return model, dict(args["model_kwargs"])


def build_student(teacher_kwargs: dict, backbone: str, weights: str | None = None) -> tuple[nn.Module, dict]:
    """Student detector with the teacher's architecture, classes, input size and normalisation.

    The normalisation must match because the teacher is fed the student's transformed batch.

    Returns:
        ``(model, model_kwargs)``; the kwargs go into the student checkpoint so ``load_detector`` rebuilds it.
    """
    from sardata.train.detector import build_detector

    # Everything but the backbone is shared (classes, size, normalisation, torchvision model options).
    kwargs = {k: v for k, v in teacher_kwargs.items() if k not in ("backbone", "frozen_bn", "backbone_weights")}
    kwargs.update(backbone=backbone, frozen_bn=weights is not None)
    return build_detector(backbone_weights=weights, **kwargs), kwargs


@torch.no_grad()
def evaluate_ap50(model: nn.Module, dataset, device: torch.device, batch_size: int = 4) -> dict[str, float]:
    """COCO ``AP50`` and ``mAP`` (:func:`sardata.metrics.coco_detection_metrics`) on a
    :class:`~sardata.train.coco_data.CocoDetection`, plus the number of ``detections``."""
    from sardata.metrics import coco_detection_metrics
    from sardata.train.coco_data import collate
    from sardata.train.detector import gt_of, predict_loader

    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate)
    results = predict_loader(model, loader, device, progress=True)
    metrics = coco_detection_metrics(gt_of(dataset), results)
    return {"AP50": metrics["AP50"], "mAP": metrics["mAP"], "detections": metrics["n_pred"]}


# ---------------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------------


def _default_out_dir(cfg: DistillConfig) -> Path:
    from sardata.paths import work_dir

    return work_dir(Path(cfg.data).resolve().name, "distill")


def distill(cfg: DistillConfig, variant: str | None = None) -> dict:
    """Trains one student by distillation and evaluates it; returns the run summary.

    Writes into ``out_dir`` (``<out_dir>/<variant>`` when a variant name is given): ``losses.csv`` (every loss term
    per step), ``checkpoint.pth`` / ``model_<epoch>.pth`` (student only, loadable with
    :func:`sardata.train.detector.load_detector`), ``summary.json``.

    Args:
        cfg: run options.
        variant (None): name of the ablation variant, used for the output sub-directory.

    Returns:
        dict with ``variant``, ``AP50``, ``mAP``, ``steps``, ``final_losses``, ``checkpoint``, ``losses_csv``.
    """
    from sardata.train import common
    from sardata.train.coco_data import CocoDetection, collate, has_split, targets_to

    cfg.validate()
    device = common.train_device(cfg.device, {"distributed": False})
    out_dir = Path(cfg.out_dir) if cfg.out_dir else _default_out_dir(cfg)
    if variant:
        out_dir = out_dir / variant.replace("+", "_")
    out_dir.mkdir(parents=True, exist_ok=True)
    resume_path = (checkpoints.find_checkpoint(out_dir, required=False) if cfg.resume == LATEST
                   else cfg.resume_checkpoint())

    teacher, teacher_kwargs = load_teacher(cfg.teacher, device=device)
    if cfg.arch and cfg.arch != teacher_kwargs["arch"]:
        raise ValueError(f"--arch {cfg.arch} but the teacher checkpoint {cfg.teacher} is {teacher_kwargs['arch']}")
    if teacher_kwargs["arch"] not in ARCHS:
        raise ValueError(f"{cfg.teacher}: teacher is {teacher_kwargs['arch']}; distillation supports {ARCHS}")
    if cfg.image_size:
        teacher_kwargs["image_size"] = cfg.image_size
        teacher.transform.min_size, teacher.transform.max_size = (cfg.image_size,), cfg.image_size
    train_set = CocoDetection(cfg.data, cfg.train_split, train=True)
    if len(train_set) == 0:
        raise ValueError(f"{cfg.data}: split {cfg.train_split!r} has no readable images")

    seed_everything(cfg.seed)
    student, student_kwargs = build_student(teacher_kwargs, cfg.student, cfg.student_weights)
    student.to(device)
    distiller = Distiller(student, teacher, cfg).to(device)
    optimizer = torch.optim.SGD(distiller.trainable_parameters(), lr=cfg.lr, momentum=0.9, weight_decay=1e-4)
    loader = torch.utils.data.DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True, collate_fn=collate,
                                         num_workers=cfg.workers, generator=torch.Generator().manual_seed(cfg.seed))
    total_steps = cfg.epochs * len(loader)
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [int(total_steps * 8 / 12), int(total_steps * 11 / 12)])
    args = {**common.plain(asdict(cfg)), "variant": variant, "model_kwargs": common.plain(student_kwargs)}

    csv_path = out_dir / "losses.csv"
    step, epoch, last = 0, 0, {}
    if resume_path is not None:
        step, epoch = _resume(checkpoints.load_checkpoint(resume_path), distiller, optimizer, scheduler, resume_path)
    progress = tqdm(total=total_steps, initial=min(step, total_steps), desc=f"distill {variant or ''}".strip())
    with open(csv_path, "a" if resume_path is not None and csv_path.is_file() else "w", newline="") as fh:
        writer = csv.writer(fh)
        if fh.tell() == 0:
            writer.writerow(["step", "epoch", *LOSS_COLUMNS])
        distiller.train()
        while step < total_steps:
            for images, targets in loader:
                if step >= total_steps:
                    break
                terms = distiller([im.to(device) for im in images], targets_to(targets, device))
                if not torch.isfinite(terms["loss"]):
                    raise FloatingPointError(f"non-finite loss at step {step}: {_floats(terms)}")
                optimizer.zero_grad(set_to_none=True)
                terms["loss"].backward()
                torch.nn.utils.clip_grad_norm_(distiller.trainable_parameters(), max_norm=10.0)
                optimizer.step()
                scheduler.step()
                last = _floats(terms)
                writer.writerow([step, epoch, *(f"{last[c]:.6g}" for c in LOSS_COLUMNS)])
                fh.flush()
                step += 1
                progress.update(1)
                progress.set_postfix(loss=f"{last['loss']:.3f}")
            extra = {"step": step, "adapters": distiller.adapters.state_dict()}
            if cfg.fdr:
                extra["fdr_filters"] = distiller.fdr_filters.state_dict()
            common.save_checkpoint(out_dir, epoch, student, optimizer, scheduler, args, extra=extra,
                                   keep_every_epoch=False)
            epoch += 1
    progress.close()

    metrics = {"AP50": float("nan"), "mAP": float("nan")}
    val_split = next((s for s in (cfg.val_split, "val") if has_split(cfg.data, s)), None)
    if val_split is not None:
        val_set = CocoDetection(cfg.data, val_split, dedup=True, max_images=cfg.max_eval_images)
        metrics = evaluate_ap50(student, val_set, device, cfg.batch_size)
    else:
        log.warning("%s: no '%s' or 'val' split; AP50 not computed", cfg.data, cfg.val_split)
    summary = {"variant": variant or "custom", "AP50": metrics["AP50"], "mAP": metrics["mAP"], "steps": step,
               "eval_split": val_split, "final_losses": last, "checkpoint": str(out_dir / checkpoints.CHECKPOINT_NAME),
               "losses_csv": str(csv_path), "config": args}
    write_json(out_dir / "summary.json", summary, default=str)
    return summary


def _resume(state: dict, distiller: "Distiller", optimizer, scheduler, path: Path) -> tuple[int, int]:
    """Loads a :func:`distill` checkpoint into the run; returns ``(step, next epoch)``."""
    if "step" not in state or "adapters" not in state:
        raise ValueError(f"{path}: not a distillation checkpoint (no step/adapters); resume needs one of "
                         "`sardata train distill`")
    distiller.student.load_state_dict(state["model"])
    distiller.adapters.load_state_dict(state["adapters"])
    if "fdr_filters" in state:
        distiller.fdr_filters.load_state_dict(state["fdr_filters"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["lr_scheduler"])
    return int(state["step"]), int(state["epoch"]) + 1


def _floats(terms: dict[str, torch.Tensor]) -> dict[str, float]:
    return {k: float(v.detach()) for k, v in terms.items()}


def run_ablation(cfg: DistillConfig) -> dict:
    """Trains every :data:`ABLATION_VARIANTS` student from the same seed; writes ``ablation.md`` and ``ablation.json``.

    Returns:
        ``{"variants": [summary, ...], "table_md": path, "table_json": path}``.
    """
    out_dir = Path(cfg.out_dir) if cfg.out_dir else _default_out_dir(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries = []
    for name, switches in ABLATION_VARIANTS.items():
        run_cfg = replace(cfg, out_dir=str(out_dir), **switches)
        summaries.append(distill(run_cfg, variant=name))
    rows = [{"variant": s["variant"], "AP50": s["AP50"], "mAP": s["mAP"], "steps": s["steps"],
             **{c: s["final_losses"].get(c, float("nan")) for c in LOSS_COLUMNS}} for s in summaries]
    baseline = rows[0]["AP50"]
    lines = ["| variant | AP50 | ΔAP50 vs baseline | mAP | final loss_gt |", "|---|---|---|---|---|"]
    for row in rows:
        delta = row["AP50"] - baseline if not (math.isnan(row["AP50"]) or math.isnan(baseline)) else float("nan")
        lines.append(f"| {row['variant']} | {row['AP50'] * 100:.2f} | {delta * 100:+.2f} | {row['mAP'] * 100:.2f} | "
                     f"{row['loss_gt']:.4f} |")
    header = (f"# IFKD ablation\n\nteacher `{cfg.teacher}`, student {cfg.student}, arch {cfg.arch or 'teacher'}, "
              f"α={cfg.alpha}, β={cfg.beta}, {cfg.epochs} epochs, seed {cfg.seed}\n\n")
    md_path = write_text(out_dir / "ablation.md", header + "\n".join(lines) + "\n")
    json_path = write_json(out_dir / "ablation.json", rows, default=str)
    return {"variants": summaries, "table_md": str(md_path), "table_json": str(json_path)}

"""The teacher of a distillation run: trained once and cached by hash, scored, and refused when it has not learned.

One training loop (:func:`fit`, on the shared engine :mod:`sardata.train.engine`) serves the teacher and every
student, so a teacher and a student trained for the same budget differ only in the model and, for a student, the
distillation terms. Evaluation scores detections down to :data:`EVAL_SCORE_THRESHOLD` = 0.001 (the model's own
output threshold is lowered to it as well, or a 0.05 cut inside torchvision would hide every box of a detector that
is still near its 0.01 prior).

Cache: :func:`ensure_teacher` keys a teacher by the SHA-256 of its :class:`TeacherConfig` (without output, device
and progress options) and of its data's content (:func:`sardata.checkpoints.run_fingerprint`); a second call with
the same config and data loads the cached checkpoint and scores. :func:`check_teacher` refuses a teacher whose
validation AP50 is below a threshold (or, asked to, warns loudly).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from sardata._io import write_json
from sardata.checkpoints import data_fingerprint, run_fingerprint
from sardata.metrics import SCORE_THRESHOLD as EVAL_SCORE_THRESHOLD  # the one evaluation threshold
from sardata.metrics import class_agnostic_ap50
from sardata.train.detection_models import set_score_threshold

log = logging.getLogger(__name__)


@dataclass
class Schedule:
    """Optimisation of :func:`fit`: ``sgd`` (momentum 0.9, weight decay 1e-4, lr 0.02 × batch/16) or ``adamw``
    (weight decay 0.05, lr 2e-3; :func:`sardata.train.engine.build_optimizer`), linear warm-up, ×0.1 at 8/12 and
    11/12 of the iterations (the 1x schedule's decays, in iterations), a global gradient-norm clip, and mixed
    precision where the device has a fast path (``amp``: :func:`sardata.train.common.autocast`)."""

    epochs: int = 12
    batch_size: int = 4
    optimizer: str = "sgd"
    lr: float | None = None
    warmup_iters: int = 100
    grad_clip: float | None = 10.0
    seed: int = 0
    workers: int = 0
    amp: bool = True

    @classmethod
    def of(cls, cfg) -> "Schedule":
        return cls(**{k: getattr(cfg, k) for k in cls.__dataclass_fields__})

    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        return 2e-3 if self.optimizer == "adamw" else 0.02 * self.batch_size / 16


@dataclass
class TeacherConfig:
    """A teacher detector to train on a COCO export (see :func:`ensure_teacher`).

    Attributes:
        data: COCO export directory.
        arch ("retinanet"): ``retinanet`` or ``faster_rcnn``.
        backbone ("resnet50"): the teacher's backbone (the paper's R50).
        image_size (512): detector input size (students inherit it).
        epochs (12), batch_size (4), optimizer ("sgd"), lr (None), warmup_iters (100), grad_clip (10.0),
            amp (True): :class:`Schedule`.
        model_options (None): extra torchvision model options (stored in the checkpoint; students inherit them).
        train_split ("train"), val_split ("val"), test_split ("test"): splits.
        max_images (None): at most N images per split (smoke runs).
        seed (0), workers (0), device (None), progress (True).
    """

    data: str
    arch: str = "retinanet"
    backbone: str = "resnet50"
    image_size: int = 512
    epochs: int = 12
    batch_size: int = 4
    optimizer: str = "sgd"
    lr: float | None = None
    warmup_iters: int = 100
    grad_clip: float | None = 10.0
    amp: bool = True  # bf16 on CPUs with native bf16 (fp16 on CUDA); a new field, so new cache keys
    model_options: dict | None = None
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    max_images: int | None = None
    seed: int = 0
    workers: int = 0
    device: str | None = None
    progress: bool = True


# ---------------------------------------------------------------------------------------------------------------
# Training and evaluation
# ---------------------------------------------------------------------------------------------------------------


def fit(model: nn.Module, train_set, schedule: Schedule, device, out_dir: Path, save_model: nn.Module, args: dict,
        on_epoch: Callable[[int, dict], None] | None = None, progress: bool = True) -> list[dict]:
    """Trains ``model`` (a detector or a :class:`~sardata.train.distill.Distiller`: every parameter that requires a
    gradient, never a frozen teacher's) with the engine; saves ``save_model`` after every epoch (``checkpoint.pth``
    + history; of the ``model_<epoch>.pth`` files only the last one is kept). Returns the per-epoch history."""
    from sardata.train import common, engine
    from sardata.train.coco_data import collate

    decay = 0.05 if schedule.optimizer == "adamw" else 1e-4
    optimizer = engine.build_optimizer(model, schedule.optimizer, schedule.learning_rate(), weight_decay=decay)
    loader = torch.utils.data.DataLoader(train_set, batch_size=schedule.batch_size, shuffle=True, collate_fn=collate,
                                         num_workers=schedule.workers,
                                         generator=torch.Generator().manual_seed(schedule.seed))
    total = schedule.epochs * len(loader)
    steps = (int(total * 8 / 12), int(total * 11 / 12))  # the 1x schedule's epochs 8 and 11 of 12, in iterations
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, engine.warmup_step_lambda(
        1, engine.warmup_length(schedule.warmup_iters, total, steps[0]), 0.001, steps, 0.1))
    scaler = common.grad_scaler(device, schedule.amp)
    history: list[dict] = []
    for epoch in range(schedule.epochs):
        record = {"epoch": epoch, **engine.train_one_epoch(model, optimizer, loader, device, epoch, scheduler,
                                                           scaler=scaler, amp=schedule.amp, progress=progress,
                                                           grad_clip=schedule.grad_clip)}
        if on_epoch is not None:
            on_epoch(epoch, record)
        history.append(record)
        # model_<k>.pth of the last epoch only: a grid of runs would write (and hold) GBs of them
        engine.save(out_dir, epoch, save_model, optimizer, scheduler, args, history=history,
                    keep_every_epoch=epoch == schedule.epochs - 1)
    return history



def evaluate_detector(model: nn.Module, data_dir: str | Path, split: str, device, batch_size: int = 4,
                      max_images: int | None = None, progress: bool = False) -> dict:
    """COCO metrics (``AP50``, ``mAP``, per class) of ``model`` on one split, scored down to 0.001, plus
    ``AP50_agnostic``: the same detections with every class merged into one (:func:`class_agnostic_ap50`)."""
    from sardata.train.coco_data import CocoDetection, collate
    from sardata.train.engine import evaluate, gt_of

    dataset = CocoDetection(data_dir, split, dedup=True, max_images=max_images)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate)
    metrics, results = evaluate(set_score_threshold(model), loader, device, progress,
                                score_threshold=EVAL_SCORE_THRESHOLD)
    return {**metrics, "AP50_agnostic": class_agnostic_ap50(gt_of(dataset), results)}


# ---------------------------------------------------------------------------------------------------------------
# The teacher
# ---------------------------------------------------------------------------------------------------------------


def teacher_hash(cfg: TeacherConfig) -> str:
    """The cache key of a teacher: its training options and its data."""
    return run_fingerprint(cfg)[:16]  # the data's content, not its path


def ensure_teacher(cfg: TeacherConfig, cache_dir: str | Path) -> dict:
    """Trains the teacher of ``cfg`` once (under ``cache_dir/<hash>``), then reuses it.

    Returns:
        ``{"checkpoint", "hash", "cached", "val": {"AP50", "mAP", ...}, "test": {...}, "config"}`` (scores at
        threshold 0.001).
    """
    out_dir = Path(cache_dir) / teacher_hash(cfg)
    meta_path = out_dir / "teacher.json"
    if meta_path.is_file() and (out_dir / "checkpoint.pth").is_file():
        return {**json.loads(meta_path.read_text()), "cached": True}
    model = train_teacher(cfg, out_dir)
    device = next(model.parameters()).device
    meta = {"checkpoint": str(out_dir / "checkpoint.pth"), "hash": out_dir.name,
            "config": json.loads(json.dumps(asdict(cfg), default=str))}
    for name, split in (("val", cfg.val_split), ("test", cfg.test_split)):
        metrics = evaluate_detector(model, cfg.data, split, device, cfg.batch_size, cfg.max_images)
        meta[name] = {"split": split, "AP50": metrics["AP50"], "mAP": metrics["mAP"],
                      "AP50_agnostic": metrics["AP50_agnostic"],
                      "per_class_AP50": {k: v.get("AP50") for k, v in metrics.get("per_class", {}).items()}}
    write_json(meta_path, meta)
    return {**meta, "cached": False}


def train_teacher(cfg: TeacherConfig, out_dir: Path) -> nn.Module:
    """Builds and trains the teacher detector into ``out_dir`` (normalised with the training images' statistics);
    returns it in eval mode."""
    from sardata.runtime import resolve_device, seed_everything
    from sardata.train import common
    from sardata.train.coco_data import CocoDetection, categories_of
    from sardata.train.detector import build_detector

    device = resolve_device(cfg.device)
    train_set = CocoDetection(cfg.data, cfg.train_split, train=True, max_images=cfg.max_images)
    if len(train_set) == 0:
        raise ValueError(f"{cfg.data}: split {cfg.train_split!r} has no readable images")
    step = max(1, len(train_set) // 64)
    mean, std = common.mean_std_of(train_set.load_image(i) for i in range(0, len(train_set), step))
    categories = categories_of(cfg.data, cfg.train_split)
    kwargs = dict(arch=cfg.arch, backbone=cfg.backbone, num_classes=max(c["id"] for c in categories) + 1,
                  image_size=cfg.image_size, image_mean=list(mean), image_std=list(std), frozen_bn=False,
                  **(cfg.model_options or {}))
    seed_everything(cfg.seed)
    model = build_detector(**kwargs).to(device)
    out_dir.mkdir(parents=True, exist_ok=True)
    args = {**common.plain(asdict(cfg)), "model_kwargs": common.plain(kwargs)}
    fit(model, train_set, Schedule.of(cfg), device, out_dir, model, args, progress=cfg.progress)
    return model.eval()


def teacher_report(checkpoint: str | Path, data_dir: str | Path, split: str = "val", device=None,
                   max_images: int | None = None) -> dict:
    """Validation AP50 of a teacher checkpoint, cached beside it per (checkpoint, data) hash."""
    from sardata.train.detector import load_detector

    checkpoint = Path(checkpoint)
    key = hashlib.sha256(f"{_file_sha(checkpoint)}:{data_fingerprint(data_dir)}:{split}:{max_images}".encode())
    cache = checkpoint.with_name(f"{checkpoint.stem}.teacher-{key.hexdigest()[:16]}.json")
    if cache.is_file():
        return json.loads(cache.read_text())
    model, _ = load_detector(checkpoint, device=device)
    metrics = evaluate_detector(model, data_dir, split, next(model.parameters()).device, max_images=max_images)
    report = {"checkpoint": str(checkpoint), "split": split, "AP50": metrics["AP50"], "mAP": metrics["mAP"]}
    write_json(cache, report)
    return report


def check_teacher(report: dict, min_ap50: float, allow_weak: bool = False) -> None:
    """Refuses (ValueError) a teacher whose validation AP50 is below ``min_ap50``; with ``allow_weak`` warns."""
    ap50 = report.get("AP50")
    ap50 = float("nan") if ap50 is None else float(ap50)
    if not math.isnan(ap50) and ap50 >= min_ap50:
        return
    message = (f"teacher {report.get('checkpoint')} has validation AP50 {ap50:.3f} < {min_ap50} on split "
               f"{report.get('split')!r}: a teacher that has not learned cannot teach")
    if not allow_weak:
        raise ValueError(message + " (train it longer, or pass allow_weak_teacher to distil anyway)")
    warnings.warn("DISTILLING FROM A WEAK TEACHER: " + message, stacklevel=2)
    log.warning("DISTILLING FROM A WEAK TEACHER: %s", message)


def _file_sha(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


__all__ = ["EVAL_SCORE_THRESHOLD", "Schedule", "TeacherConfig", "check_teacher", "class_agnostic_ap50",
           "data_fingerprint",
           "ensure_teacher", "evaluate_detector", "fit", "set_score_threshold", "teacher_hash",
           "teacher_report", "train_teacher"]

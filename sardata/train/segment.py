"""Land-cover segmentation with LANet and auxiliary contrastive clustering (seed 003, WHU-OPT-SAR).

``L = L_seg + w · (L_ins + L_clu)`` with ``w = 1`` by default, as the paper sums them (``cc_weight`` keeps the
option). ``L_seg`` is the pixel cross-entropy; ``L_ins`` / ``L_clu`` are the contrastive-clustering losses of
:mod:`sardata.train.seg_cc` on the pooled encoder output of each tile and of one augmented view of it, with positives
from the augmentation and from the ``K = 3`` nearest neighbours (never also negatives). ``--no-cc`` trains LANet
alone (heads unused), so "LANet vs LANet + CC" is one flag.

Metrics follow the paper: pixel accuracy and the average over the classes of precision, recall and F1 (and IoU),
on the six WHU-OPT-SAR classes farmland, city, village, water, forest, road. Label 0 (no data) is not a class: its
pixels are ignored by the loss and by every metric (see :mod:`sardata.train.seg_data`). "others" is trained on but
left out of the scores: its ground-truth pixels are removed from the confusion matrix (they count neither in pixel
accuracy nor as false positives of a class), while a scored pixel predicted as "others" is an error (a false
negative of its class). A class with neither ground truth nor predictions in the evaluated set has no F1 and is
left out of the averages.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from sardata import checkpoints
from sardata._io import atomic_path, write_json
from sardata.config import TrainConfig
from sardata.metrics import plot_confusion_matrix
from sardata.runtime import seed_everything
from sardata.train.lanet import LANet
from sardata.train.seg_cc import augment_view, contrastive_clustering_loss
from sardata.train.seg_data import IGNORE_INDEX, INPUTS, MasksExportDataset

log = logging.getLogger(__name__)

#: Class names trained on but left out of the scores, as in the seed paper.
EXCLUDED_CLASSES = ("others",)
#: The six classes the paper scores (for reference; the scores use every class that is not excluded).
WHU_SCORED_CLASSES = ("farmland", "city", "village", "water", "forest", "road")


@dataclass(kw_only=True)
class SegmentConfig(TrainConfig):
    """Options of ``sardata train segment``; the shared fields are :class:`TrainConfig`'s.

    Attributes:
        data: masks export directory.
        input ("sar"): ``sar``, ``optical`` or ``both``.
        cc (True): auxiliary contrastive clustering.
        cc_weight (1.0): weight ``w`` of the contrastive-clustering losses (the paper: 1).
        knn (3): nearest neighbours used as positives (besides the augmented view).
        instance_tau (0.5): NT-Xent temperature of the instance head.
        cluster_tau (1.0): NT-Xent temperature of the cluster head.
        num_clusters (10): cluster-head size ``M``.
        instance_dim (128): instance-projection size.
        epochs (30): training epochs.
        batch_size (32): tiles per step (the paper's).
        lr (1e-3): Adam learning rate.
        weight_decay (1e-4): Adam weight decay.
        train_split ("train"), val_split ("val"): split folders (``val`` falls back to ``test``).
        out_dir (None): outputs; default ``work_dir(<export name>, "segment")``.
        resume (None): checkpoint (file or run directory) to continue from, or ``"latest"`` (the newest in
            ``out_dir`` if any).
        encoder_weights (None): ResNet-18 ``state_dict`` file for the encoder.
        augment (True): random flips / 90° rotations in training.
        max_samples (None): read at most N tiles per split (quick runs).
        keep_every_epoch (False): also keep ``model_<epoch>.pth`` (≈150 MB each with the Adam state).
        predict (True): write the predicted masks of the validation split.
        seed (0), device (None), workers (0), progress (True).
    """

    PATH_FIELDS = ("out_dir", "data", "encoder_weights")

    data: Path
    input: str = "sar"
    cc: bool = True
    cc_weight: float = 1.0
    knn: int = 3
    instance_tau: float = 0.5
    cluster_tau: float = 1.0
    num_clusters: int = 10
    instance_dim: int = 128
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    train_split: str = "train"
    val_split: str = "val"
    encoder_weights: Path | None = None
    augment: bool = True
    max_samples: int | None = None
    keep_every_epoch: bool = False
    predict: bool = True

    def validate(self) -> "SegmentConfig":
        """Fills ``out_dir`` (``work_dir(<export name>, "segment")``) and rejects bad values, naming the field."""
        if self.input not in INPUTS:
            raise ValueError(f"input={self.input!r}: expected one of {INPUTS}")
        for name, minimum in (("knn", 1), ("num_clusters", 2), ("instance_dim", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name}={value!r}: must be an integer ≥ {minimum}")
        if self.cc_weight < 0 or self.weight_decay < 0:
            raise ValueError(f"cc_weight={self.cc_weight!r}, weight_decay={self.weight_decay!r}: must be ≥ 0")
        if self.instance_tau <= 0 or self.cluster_tau <= 0:
            raise ValueError(f"instance_tau={self.instance_tau!r}, cluster_tau={self.cluster_tau!r}: must be > 0")
        if self.encoder_weights is not None and not self.encoder_weights.is_file():
            raise FileNotFoundError(f"encoder_weights {self.encoder_weights}: no such file")
        if self.out_dir is None:
            from sardata.paths import work_dir

            self.out_dir = work_dir(Path(self.data).resolve().name, "segment")
        return super().validate()


@contextlib.contextmanager
def frozen_bn_statistics(model: torch.nn.Module):
    """Batch norm keeps normalising by batch statistics but does not update its running statistics (momentum 0).

    The extra augmented view of the contrastive loss (crops, gain/offset, noise) is not the distribution the
    segmenter is evaluated on; letting it into the running statistics made evaluation unstable (measured: pixel
    accuracy swinging by ±0.1 between epochs at the same training loss).
    """
    layers = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None)
             for m in layers]
    for m in layers:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, tracked) in zip(layers, saved):
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)


def segmentation_loss(model: LANet, images: torch.Tensor, labels: torch.Tensor, cfg: SegmentConfig,
                      generator: torch.Generator | None = None) -> dict:
    """Loss terms of one batch: ``loss`` (total), ``loss_ce``, ``loss_instance``, ``loss_cluster``, ``logits``."""
    if cfg.cc:
        logits, view_a = model(images, with_embeddings=True)
        with frozen_bn_statistics(model):  # the augmented view must not shift the statistics used at evaluation
            view_b = model.embed(augment_view(images, generator))
        instance, cluster = contrastive_clustering_loss(view_a, view_b, cfg.knn, cfg.instance_tau, cfg.cluster_tau)
    else:
        logits = model(images)
        instance = cluster = logits.new_zeros(())
    ce = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX)
    return {"loss": ce + cfg.cc_weight * (instance + cluster), "loss_ce": ce, "loss_instance": instance,
            "loss_cluster": cluster, "logits": logits}


# ---------------------------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------------------------


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(num_classes, num_classes)`` counts, rows = ground truth, columns = prediction; ignored pixels skipped."""
    valid = (target != IGNORE_INDEX) & (target >= 0) & (target < num_classes)
    index = target[valid].long() * num_classes + pred[valid].long()
    return torch.bincount(index, minlength=num_classes**2).view(num_classes, num_classes).cpu()


def segmentation_metrics(confusion: np.ndarray | torch.Tensor, class_names: list[str],
                         exclude: tuple[str, ...] = EXCLUDED_CLASSES) -> dict:
    """Pixel accuracy and the class-averaged precision / recall / F1 / IoU without the ``exclude`` classes.

    ``confusion`` holds no no-data pixels (they never enter it). Rows of excluded classes (their ground-truth pixels)
    are removed before scoring; an excluded class predicted on a scored pixel is an error of that pixel's class.

    Returns:
        ``pixel_accuracy``, ``mean_precision``, ``mean_recall``, ``mean_f1``, ``mean_iou`` (over the scored classes
        with ground truth or predictions), ``per_class`` {name: {precision, recall, f1, iou, support}} of the scored
        classes, ``scored`` and ``excluded`` (class names).
    """
    conf = np.asarray(confusion, dtype=np.float64).copy()
    keep = np.array([name not in exclude for name in class_names])
    conf[~keep, :] = 0.0
    tp = np.diag(conf)
    fp = conf.sum(axis=0) - tp
    fn = conf.sum(axis=1) - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = tp / (tp + fp)
        recall = tp / (tp + fn)
        f1 = 2 * tp / (2 * tp + fp + fn)
        iou = tp / (tp + fp + fn)
    present = keep & ((tp + fp + fn) > 0)
    per_class = {
        name: {"precision": _finite(precision[i]), "recall": _finite(recall[i]), "f1": _finite(f1[i]),
               "iou": _finite(iou[i]), "support": int(conf[i].sum())}
        for i, name in enumerate(class_names) if keep[i]
    }

    def mean(values: np.ndarray) -> float:
        values = np.where(np.isfinite(values), values, 0.0)  # a class never predicted has precision 0
        return float(np.mean(values[present])) if present.any() else float("nan")

    total = conf.sum()
    return {
        "pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
        "mean_precision": mean(precision),
        "mean_recall": mean(recall),
        "mean_f1": mean(f1),
        "mean_iou": mean(iou),
        "per_class": per_class,
        "scored": [name for name in class_names if name not in exclude],
        "excluded": [name for name in class_names if name in exclude],
    }


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


# ---------------------------------------------------------------------------------------------------------------
# Training, evaluation, prediction
# ---------------------------------------------------------------------------------------------------------------


def _collate(batch: list[dict]) -> dict:
    return {"image": torch.stack([b["image"] for b in batch]), "mask": torch.stack([b["mask"] for b in batch]),
            "stem": [b["stem"] for b in batch]}


def build_model(cfg: SegmentConfig, num_classes: int, in_channels: int) -> LANet:
    return LANet(num_classes, in_channels=in_channels, num_clusters=cfg.num_clusters, instance_dim=cfg.instance_dim,
                 encoder_weights=cfg.encoder_weights)


@torch.no_grad()
def evaluate(model: LANet, dataset: MasksExportDataset, device: torch.device, batch_size: int = 8,
             progress: bool = True, groups: dict[str, str] | None = None) -> tuple[dict, np.ndarray]:
    """``(metrics, confusion)`` of ``model`` on ``dataset``.

    With ``groups`` (``{tile stem: group name}``, e.g. the scene of each tile), ``metrics["by_group"]`` also holds
    ``{group: {"metrics", "confusion", "tiles"}}``; tiles without a group go to ``"?"``.
    """
    model.eval()
    num_classes = len(dataset.class_names)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    by_group: dict[str, torch.Tensor] = {}
    tiles: dict[str, int] = {}
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=_collate)
    for batch in tqdm(loader, desc="evaluate", disable=not progress, leave=False):
        pred = model(batch["image"].to(device)).argmax(dim=1)
        target = batch["mask"].to(device)
        if groups is None:
            confusion += confusion_matrix(pred, target, num_classes)
            continue
        for i, stem in enumerate(batch["stem"]):
            tile = confusion_matrix(pred[i], target[i], num_classes)
            confusion += tile
            group = groups.get(stem, "?")
            by_group[group] = by_group.get(group, torch.zeros_like(confusion)) + tile
            tiles[group] = tiles.get(group, 0) + 1
    metrics = segmentation_metrics(confusion, dataset.class_names)
    if groups is not None:
        metrics["by_group"] = {g: {"metrics": segmentation_metrics(c, dataset.class_names),
                                   "confusion": c.tolist(), "tiles": tiles[g]} for g, c in sorted(by_group.items())}
    return metrics, confusion.numpy()


@torch.no_grad()
def predict_masks(model: LANet, dataset: MasksExportDataset, out_dir: str | os.PathLike, device: torch.device,
                  batch_size: int = 8, progress: bool = True) -> Path:
    """Writes ``<out_dir>/<stem>.png`` with *raw* label values (0, 10, ...) and a copy of ``class_map.json``."""
    from PIL import Image

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    raw_values = np.array(list(dataset.class_map), dtype=np.int64)
    dtype = np.uint8 if raw_values.max() < 256 else np.uint16
    model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=_collate)
    for batch in tqdm(loader, desc="predict", disable=not progress, leave=False):
        pred = model(batch["image"].to(device)).argmax(dim=1).cpu().numpy()
        for stem, labels in zip(batch["stem"], pred):
            with atomic_path(out_dir / f"{stem}.png") as tmp:
                Image.fromarray(raw_values[labels].astype(dtype)).save(tmp, format="PNG")
    write_json(out_dir / "class_map.json", {str(k): v for k, v in dataset.class_map.items()})
    return out_dir


def train(cfg: SegmentConfig) -> dict:
    """Trains LANet (± contrastive clustering) on a masks export, evaluates each epoch, predicts the val split.

    Writes to ``out_dir``: ``checkpoint.pth`` (resumable; ``model_<epoch>.pth`` too with ``keep_every_epoch``), ``history.{json,csv,png}``,
    ``loss_curve.png``, ``metrics.json`` (last evaluation, per class), ``confusion.png``, ``predictions/<stem>.png``.

    Returns:
        ``{"out_dir", "history", "metrics", "checkpoint", "predictions", "split"}`` (``split``: the export split
        evaluated and predicted; :func:`sardata.predictions.add_segmentations` puts the predictions on its samples).
    """
    from sardata.train import common

    cfg.validate()
    device = common.train_device(cfg.device, {"distributed": False})
    seed_everything(cfg.seed)
    out_dir = cfg.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    resume_path = cfg.resume_checkpoint()
    train_set = MasksExportDataset(cfg.data, cfg.train_split, cfg.input, augment=cfg.augment,
                                   max_samples=cfg.max_samples)
    if len(train_set) == 0:
        raise ValueError(f"{cfg.data}: split {cfg.train_split!r} has no readable tiles")
    val_split = next((s for s in (cfg.val_split, "test") if (Path(cfg.data) / s / "masks").is_dir()), None)
    val_set = (MasksExportDataset(cfg.data, val_split, cfg.input, max_samples=cfg.max_samples)
               if val_split else None)
    class_names = train_set.class_names
    model = build_model(cfg, len(class_names), train_set.in_channels).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    args = {**common.plain(asdict(cfg)), "num_classes": len(class_names), "in_channels": train_set.in_channels,
            "class_map": {str(k): v for k, v in train_set.class_map.items()}}

    start_epoch, history = 0, []
    if resume_path is not None:
        checkpoint = checkpoints.load_checkpoint(resume_path)
        saved = checkpoint.get("args", {})
        if (saved.get("num_classes"), saved.get("in_channels")) != (len(class_names), train_set.in_channels):
            raise ValueError(f"{resume_path}: checkpoint is for {saved.get('num_classes')} classes / "
                             f"{saved.get('in_channels')} channels, data has {len(class_names)} / "
                             f"{train_set.in_channels}")
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        start_epoch = int(checkpoint["epoch"]) + 1
        history = list(checkpoint.get("history", []))

    loader = torch.utils.data.DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True, drop_last=False,
                                         collate_fn=_collate, num_workers=cfg.workers)
    views = torch.Generator().manual_seed(cfg.seed + 1 + start_epoch)  # the augmented views of the CC loss
    metrics, confusion = {}, None
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        sums = {"loss": 0.0, "loss_ce": 0.0, "loss_instance": 0.0, "loss_cluster": 0.0}
        for batch in tqdm(loader, desc=f"segment epoch {epoch}", disable=not cfg.progress, leave=False):
            terms = segmentation_loss(model, batch["image"].to(device), batch["mask"].to(device), cfg, views)
            if not torch.isfinite(terms["loss"]):
                raise FloatingPointError(f"non-finite loss at epoch {epoch}: ce={float(terms['loss_ce'])}")
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            optimizer.step()
            for key in sums:
                sums[key] += float(terms[key].detach()) / len(loader)
        record = {"epoch": epoch, **sums}
        if val_set is not None and len(val_set):
            metrics, confusion = evaluate(model, val_set, device, cfg.batch_size, cfg.progress)
            record.update({k: metrics[k] for k in ("pixel_accuracy", "mean_f1", "mean_iou")})
        history.append(record)
        common.save_checkpoint(out_dir, epoch, model, optimizer, args=args, extra={"history": common.plain(history)},
                               keep_every_epoch=cfg.keep_every_epoch)
        write_json(out_dir / "history.json", common.plain(history))
        log.info("epoch %d: %s", epoch, {k: round(v, 4) for k, v in record.items() if k != "epoch"})

    if history:  # curves once at the end: matplotlib costs seconds per figure
        common.write_history(history, out_dir, name="history")
        losses = set(common.history_panels(history)[0])
        common.plot_history([{k: v for k, v in r.items() if k == "epoch" or k in losses} for r in history],
                            out_dir / "loss_curve.png")
    predictions = None
    if val_set is not None and len(val_set):
        if confusion is None:  # resumed past the last epoch
            metrics, confusion = evaluate(model, val_set, device, cfg.batch_size, cfg.progress)
        write_json(out_dir / "metrics.json",
                   {**metrics, "split": val_split, "confusion": confusion.tolist(), "class_names": class_names})
        plot_confusion_matrix(confusion, class_names, out_dir / "confusion.png")
        if cfg.predict:
            predictions = predict_masks(model, val_set, out_dir / "predictions", device, cfg.batch_size,
                                        cfg.progress)
    return {"out_dir": out_dir, "history": history, "metrics": metrics, "checkpoint": out_dir / checkpoints.CHECKPOINT_NAME,
            "predictions": predictions, "split": val_split}


def load_segmenter(checkpoint_path: str | os.PathLike, device=None) -> tuple[LANet, dict]:
    """LANet (eval mode) and its training args from a :func:`train` checkpoint."""
    from sardata.runtime import resolve_device
    from sardata.train import common

    checkpoint = checkpoints.load_checkpoint(checkpoint_path)
    args = checkpoint.get("args", {})
    if "num_classes" not in args or "in_channels" not in args:
        raise ValueError(f"{checkpoint_path}: not a sardata segmentation checkpoint (no args.num_classes)")
    model = LANet(args["num_classes"], in_channels=args["in_channels"], num_clusters=args.get("num_clusters", 10),
                  instance_dim=args.get("instance_dim", 128))
    model.load_state_dict(checkpoint["model"])
    return model.to(resolve_device(device)).eval(), args

"""Land-cover segmentation with LANet and auxiliary contrastive clustering (seed 003, WHU-OPT-SAR).

``L = CE(logits, labels) + w · (L_instance + L_cluster)`` where, on the pooled encoder features of the batch,

* positives are each image's ``K = 3`` nearest neighbours in (detached, cosine) feature space;
* ``L_instance = mean_k NT-Xent(z, z[nn_k], τ=0.5)`` on the 128-d instance projections;
* ``L_cluster = mean_k [NT-Xent over cluster columns(p, p[nn_k], τ=1.0) − H(p) − H(p[nn_k])]`` on the ``M = 10``
  softmax cluster assignments (the entropy term keeps every cluster in use).

Both use :func:`sardata.embed.contrastive.nt_xent` / :func:`~sardata.embed.contrastive.cluster_loss`. ``--no-cc``
trains LANet alone (``w = 0``, heads unused), so "LANet vs LANet + CC" is one flag.

Metrics follow the paper: pixel accuracy, per-class F1 and IoU, and mean F1 / mean IoU over the classes other than
"others"; pixels whose *ground truth* is "others" are left out of every score (row removed from the confusion
matrix), predictions of "others" on other pixels still count as errors.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from sardata import checkpoints
from sardata.config import TrainConfig
from sardata._io import atomic_path, write_json
from sardata.embed.contrastive import cluster_loss, nt_xent
from sardata.metrics import plot_confusion_matrix
from sardata.runtime import seed_everything
from sardata.train.lanet import LANet
from sardata.train.seg_data import IGNORE_INDEX, INPUTS, MasksExportDataset

log = logging.getLogger(__name__)

_REPLICA = re.compile(r"__rep\d+$")
#: Class names left out of the mean scores, as in the seed paper.
EXCLUDED_CLASSES = ("others",)


@dataclass(kw_only=True)
class SegmentConfig(TrainConfig):
    """Options of ``sardata train segment``; the shared fields are :class:`TrainConfig`'s.

    Attributes:
        data: masks export directory.
        input ("sar"): ``sar``, ``optical`` or ``both``.
        cc (True): auxiliary contrastive clustering.
        cc_weight (0.1): weight ``w`` of the contrastive-clustering losses.
        knn (3): nearest neighbours used as positives.
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
        seed (0), device (None), workers (0), progress (True).
    """

    PATH_FIELDS = ("out_dir", "data", "encoder_weights")

    data: Path
    input: str = "sar"
    cc: bool = True
    cc_weight: float = 0.1
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


# ---------------------------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------------------------


def knn_indices(features: torch.Tensor, k: int) -> torch.Tensor:
    """``(N, k')`` indices of each row's nearest other rows by cosine similarity (``k' = min(k, N − 1)``)."""
    z = F.normalize(features.detach(), dim=1)
    sim = z @ z.T
    sim.fill_diagonal_(float("-inf"))
    return sim.topk(min(k, features.shape[0] - 1), dim=1).indices


def contrastive_clustering_loss(embeddings: dict[str, torch.Tensor], knn: int = 3, instance_tau: float = 0.5,
                                cluster_tau: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(L_instance, L_cluster)`` with kNN positives (see the module docstring); zeros for a batch of one."""
    features, z, p = embeddings["features"], embeddings["instance"], embeddings["cluster"]
    if features.shape[0] < 2:
        zero = z.sum() * 0.0
        return zero, zero
    neighbours = knn_indices(features, knn)
    instance = torch.stack([nt_xent(z, z[neighbours[:, j]], instance_tau) for j in range(neighbours.shape[1])])
    cluster = torch.stack([cluster_loss(p, p[neighbours[:, j]], cluster_tau) for j in range(neighbours.shape[1])])
    return instance.mean(), cluster.mean()


def segmentation_loss(model: LANet, images: torch.Tensor, labels: torch.Tensor, cfg: SegmentConfig) -> dict:
    """Loss terms of one batch: ``loss`` (total), ``loss_ce``, ``loss_instance``, ``loss_cluster``."""
    if cfg.cc:
        logits, embeddings = model(images, with_embeddings=True)
        instance, cluster = contrastive_clustering_loss(embeddings, cfg.knn, cfg.instance_tau, cfg.cluster_tau)
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
    """Pixel accuracy, per-class precision/recall/F1/IoU and their means without the ``exclude`` classes.

    Rows of excluded classes (their ground-truth pixels) are removed before scoring; an excluded class predicted
    on another class's pixel still counts as a false negative of that class.

    Returns:
        ``pixel_accuracy``, ``mean_f1``, ``mean_iou`` (over kept classes with ground truth or predictions),
        ``pixel_accuracy_all`` (no exclusion), ``per_class`` {name: {precision, recall, f1, iou, support}},
        ``excluded``.
    """
    conf = np.asarray(confusion, dtype=np.float64).copy()
    total_all = conf.sum()
    pixel_accuracy_all = float(np.trace(conf) / total_all) if total_all else float("nan")
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
    per_class = {
        name: {"precision": _finite(precision[i]), "recall": _finite(recall[i]), "f1": _finite(f1[i]),
               "iou": _finite(iou[i]), "support": int(conf[i].sum())}
        for i, name in enumerate(class_names) if keep[i]
    }
    scored = keep & ((tp + fp + fn) > 0)
    total = conf.sum()
    return {
        "pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
        "mean_f1": float(np.mean(f1[scored])) if scored.any() else float("nan"),
        "mean_iou": float(np.mean(iou[scored])) if scored.any() else float("nan"),
        "pixel_accuracy_all": pixel_accuracy_all,
        "per_class": per_class,
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
             progress: bool = True) -> tuple[dict, np.ndarray]:
    """``(metrics, confusion)`` of ``model`` on ``dataset``."""
    model.eval()
    num_classes = len(dataset.class_names)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=_collate)
    for batch in tqdm(loader, desc="evaluate", disable=not progress, leave=False):
        pred = model(batch["image"].to(device)).argmax(dim=1)
        confusion += confusion_matrix(pred, batch["mask"].to(device), num_classes)
    return segmentation_metrics(confusion, dataset.class_names), confusion.numpy()


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
        ``{"out_dir", "history", "metrics", "checkpoint", "predictions"}``.
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
    metrics, confusion = {}, None
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        sums = {"loss": 0.0, "loss_ce": 0.0, "loss_instance": 0.0, "loss_cluster": 0.0}
        for batch in tqdm(loader, desc=f"segment epoch {epoch}", disable=not cfg.progress, leave=False):
            terms = segmentation_loss(model, batch["image"].to(device), batch["mask"].to(device), cfg)
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
        common.write_history(history, out_dir, name="history")
        common.plot_history([{k: v for k, v in r.items() if k == "epoch" or "loss" in k} for r in history],
                            out_dir / "loss_curve.png")
        log.info("epoch %d: %s", epoch, {k: round(v, 4) for k, v in record.items() if k != "epoch"})

    predictions = None
    if val_set is not None and len(val_set):
        if confusion is None:  # resumed past the last epoch
            metrics, confusion = evaluate(model, val_set, device, cfg.batch_size, cfg.progress)
        write_json(out_dir / "metrics.json",
                   {**metrics, "split": val_split, "confusion": confusion.tolist(), "class_names": class_names})
        plot_confusion_matrix(confusion, class_names, out_dir / "confusion.png")
        predictions = predict_masks(model, val_set, out_dir / "predictions", device, cfg.batch_size, cfg.progress)
    return {"out_dir": out_dir, "history": history, "metrics": metrics,
            "checkpoint": out_dir / checkpoints.CHECKPOINT_NAME,
            "predictions": predictions}


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


# ---------------------------------------------------------------------------------------------------------------
# Back into FiftyOne
# ---------------------------------------------------------------------------------------------------------------


def load_segmentation_predictions(dataset, pred_dir: str | os.PathLike, field: str = "predictions",
                                  sample_ids=None, stem_field: str = "filepath") -> int:
    """Attaches ``<pred_dir>/<stem>.png`` masks to FiftyOne samples as ``fo.Segmentation(mask_path=...)``.

    Samples are matched by the stem of ``sample[stem_field]`` (default their ``filepath``), or explicitly by
    ``sample_ids``: a ``{stem: sample_id}`` dict, or a list of sample ids aligned with the sorted prediction stems.
    ``dataset.mask_targets[field]`` is set from ``<pred_dir>/class_map.json`` when present. Replica files of a
    balanced export (``<stem>__rep<k>.png``) are skipped.

    Args:
        dataset: a FiftyOne dataset (or view).
        pred_dir: folder of predicted label PNGs (raw label values).
        field ("predictions"): sample field to write.
        sample_ids (None): explicit mapping, see above.
        stem_field ("filepath"): sample field whose file stem is matched (e.g. ``sar_path``).

    Returns:
        Number of samples that received a prediction. Prediction files without a matching sample are warned about.
    """
    import warnings

    import fiftyone as fo

    pred_dir = Path(pred_dir)
    # Replicas written by a balanced export (``<stem>__rep<k>``) repeat their original: keep one per sample.
    masks = {p.stem: p.resolve() for p in sorted(pred_dir.glob("*.png"))
             if not p.name.startswith(".") and not _REPLICA.search(p.stem)}
    if not masks:
        raise FileNotFoundError(f"{pred_dir}: no predicted mask PNGs")
    if sample_ids is None:
        ids, paths = dataset.values(["id", stem_field])
        by_stem = {Path(p).stem: i for i, p in zip(ids, paths) if p}
    elif isinstance(sample_ids, dict):
        by_stem = dict(sample_ids)
    else:
        sample_ids = list(sample_ids)
        if len(sample_ids) != len(masks):
            raise ValueError(f"{len(sample_ids)} sample ids for {len(masks)} predictions in {pred_dir}")
        by_stem = dict(zip(masks, sample_ids))
    matched = {by_stem[stem]: path for stem, path in masks.items() if stem in by_stem}
    unmatched = sorted(set(masks) - set(by_stem))
    if unmatched:
        warnings.warn(f"{pred_dir}: {len(unmatched)} predictions match no sample (e.g. {unmatched[:3]})")
    if not matched:
        return 0
    root = dataset._root_dataset if hasattr(dataset, "_root_dataset") else dataset
    view = root.select(list(matched), ordered=True)
    view.set_values(field, [fo.Segmentation(mask_path=str(matched[sid])) for sid in view.values("id")])
    class_map_path = pred_dir / "class_map.json"
    if class_map_path.is_file():
        targets = {int(k): v for k, v in json.loads(class_map_path.read_text()).items()}
        root.mask_targets = {**(root.mask_targets or {}), field: targets}
        root.save()
    return len(matched)

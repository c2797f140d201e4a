"""Ship-type classifiers on an ImageFolder export (``<split>/<class>/<file>``): the models of seeds 001/002.

Models: ``cnn`` (a small 4-block CNN), ``vgg16``, ``resnet50`` (all layers trained), and the "fine-tuned" variants
``f-vgg16`` / ``f-resnet50``: the (ImageNet) backbone is frozen — parameters *and* batch-norm statistics — and only a
new head is trained. The seeds' public code got this wrong (its "fine-tuning" never updated anything, its test data
went through train augmentation, its split was 20/80 by mistake); here augmentation is applied to the training split
only, validation and test are separate, and the report puts a majority-class baseline and a collapse flag beside
accuracy, weighted/macro F1 and per-class precision/recall/F1.

Defaults: 224 input, Adam 1e-3, 10 epochs, batch 64; early stopping on validation macro F1 (``monitor``). Images may
be 8-bit files or float ``.tif``/``.npy`` chips (scaled by :func:`sardata.train.common.to_unit_range`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch import nn
from tqdm.auto import tqdm

from sardata import checkpoints
from sardata.config import TrainConfig
from exporters.contract import is_replica, parse_replica
from sardata._io import atomic_path, write_json, write_text
from sardata.metrics import plot_confusion_matrix
from sardata.runtime import seed_everything
from sardata.train import common

MODELS = ("cnn", "vgg16", "resnet50", "f-vgg16", "f-resnet50")
EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy")


# --------------------------------------------------------------------------------------------- models


class SmallCNN(nn.Module):
    """Four conv–BN–ReLU–max-pool blocks (32→256 channels), global average pooling, dropout, linear."""

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 32):
        super().__init__()
        blocks, channels = [], in_channels
        for i in range(4):
            out = width * 2**i
            blocks += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            channels = out
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3),
                                        nn.Linear(channels, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


class FineTuned(nn.Module):
    """A frozen backbone (no gradients, always in eval mode so batch-norm statistics stay put) and a trained head."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.frozen = True
        for parameter in self.backbone.parameters():
            parameter.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen:
            self.backbone.eval()
        return self

    def forward(self, x):
        return self.head(self.backbone(x))


def build_classifier(name: str, num_classes: int, weights=None) -> nn.Module:
    """One of :data:`MODELS` with a ``num_classes`` output.

    Args:
        name: ``cnn``, ``vgg16``, ``resnet50``, ``f-vgg16`` or ``f-resnet50``.
        num_classes: number of classes.
        weights (None): ImageNet weights of the torchvision backbone, a file path or weights enum/name (see
            :func:`sardata.train.common.resolve_weights`). ``f-*`` models without weights freeze a random backbone
            (useful only in tests; a warning says so).
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {MODELS}")
    if num_classes < 2:
        raise ValueError(f"num_classes={num_classes}: a classifier needs at least 2 classes")
    if name == "cnn":
        if weights is not None:
            raise ValueError("the small CNN has no pretrained weights")
        return SmallCNN(num_classes)
    base = name.removeprefix("f-")
    enum, path = common.resolve_weights(weights)
    net = torchvision.models.__dict__[base](weights=enum)
    if path is not None:
        common.load_weights_file(net, path, ignore=("fc.", "classifier.6."))
    if name.startswith("f-") and weights is None:
        warnings.warn(f"{name}: no backbone weights given; the frozen backbone is random")
    if base == "vgg16":
        if name == "vgg16":
            net.classifier[6] = nn.Linear(4096, num_classes)
            return net
        # Frozen: conv layers and fc6/fc7 (eval mode turns their dropout off); trained: a new last layer.
        net.classifier[6] = nn.Identity()
        return FineTuned(net, nn.Linear(4096, num_classes))
    if name == "resnet50":
        net.fc = nn.Linear(net.fc.in_features, num_classes)
        return net
    in_features = net.fc.in_features
    net.fc = nn.Identity()
    return FineTuned(net, nn.Linear(in_features, num_classes))


#: What trains in a run: the model's own rule (``f-*``: head only, others: all), only the head, or every layer.
TRAINABLE = ("default", "head", "all")


def head_of(model: nn.Module) -> nn.Module:
    """The classification head (the part re-initialised for new classes and trained alone when frozen)."""
    if isinstance(model, FineTuned):
        return model.head
    if isinstance(model, SmallCNN):
        return model.classifier
    if isinstance(model, torchvision.models.VGG):
        return model.classifier[6]
    if isinstance(model, torchvision.models.ResNet):
        return model.fc
    raise ValueError(f"no known head for {type(model).__name__}")


def set_trainable(model: nn.Module, trainable: str = "default") -> nn.Module:
    """Freezes or unfreezes the layers outside the head (seed 002's frozen / unfrozen fine-tuning), in place.

    ``head``: only the head has gradients, and the batch-norm and dropout layers outside it stay in eval mode while
    training (see :func:`keep_frozen_in_eval`), so the frozen part computes exactly what it computed before.
    ``all``: every layer trains (an ``f-*`` model's backbone is unfrozen too). ``default``: leave the model as built.
    """
    if trainable not in TRAINABLE:
        raise ValueError(f"trainable must be one of {TRAINABLE}, got {trainable!r}")
    if trainable == "default":
        return model
    head = {id(p) for p in head_of(model).parameters()}
    for parameter in model.parameters():
        parameter.requires_grad_(trainable == "all" or id(parameter) in head)
    if isinstance(model, FineTuned):
        model.frozen = trainable == "head"
    model._sardata_frozen = trainable == "head"
    return model


def keep_frozen_in_eval(model: nn.Module) -> None:
    """After ``model.train()``: batch-norm and dropout layers outside a frozen model's head back to eval mode."""
    if not getattr(model, "_sardata_frozen", False):
        return
    head = {id(m) for m in head_of(model).modules()}
    for module in model.modules():
        if id(module) not in head and isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.Dropout)):
            module.eval()


def load_classifier(checkpoint_path: str | os.PathLike, device=None) -> tuple[nn.Module, dict]:
    """A classifier trained by :func:`train`, in eval mode, and its ``args`` (``args["model_kwargs"]`` holds
    ``name``, ``num_classes``, ``classes``, ``image_size``, ``image_mean``, ``image_std``)."""
    checkpoint = checkpoints.load_checkpoint(checkpoint_path)
    args = checkpoint.get("args", {})
    if "model_kwargs" not in args:
        raise ValueError(f"{checkpoint_path}: not a sardata classifier checkpoint (no args.model_kwargs)")
    kwargs = args["model_kwargs"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the frozen backbone's weights come from the checkpoint
        model = build_classifier(kwargs["name"], kwargs["num_classes"])
    model.load_state_dict(checkpoint["model"])
    from sardata.runtime import resolve_device

    model.to(resolve_device(device)).eval()
    return model, args


# --------------------------------------------------------------------------------------------- data


def _read_pixels(path: str) -> np.ndarray:
    from sardata.train.coco_data import read_pixels

    return read_pixels(path)


class SarImageFolder(torchvision.datasets.DatasetFolder):
    """``<root>/<class>/<file>`` with SAR-aware reading; ``classes`` fixes the class order across splits.

    Items are ``(float tensor (3, H, W) in [0, 1] after ``transform``, class index)``.
    """

    def __init__(self, root, classes: list[str] | None = None, transform=None):
        self._fixed_classes = list(classes) if classes else None
        super().__init__(str(root), loader=_read_pixels, extensions=EXTENSIONS, transform=transform,
                         allow_empty=classes is not None)

    def find_classes(self, directory):
        if self._fixed_classes is None:
            return super().find_classes(directory)
        return self._fixed_classes, {c: i for i, c in enumerate(self._fixed_classes)}


class ChipTransform:
    """Pixels → normalised ``(3, size, size)`` tensor; random flips and a mild random crop when ``train``."""

    def __init__(self, size: int, mean, std, train: bool = False):
        from torchvision.transforms import v2

        steps = [v2.Resize((size, size), antialias=True)]
        if train:  # ships have no preferred heading or look direction
            steps = [v2.RandomResizedCrop((size, size), scale=(0.8, 1.0), ratio=(0.9, 1.1), antialias=True),
                     v2.RandomHorizontalFlip(), v2.RandomVerticalFlip()]
        self.pipeline = v2.Compose(steps + [v2.Normalize(list(mean), list(std))])

    def __call__(self, pixels: np.ndarray) -> torch.Tensor:
        return self.pipeline(common.to_chw_tensor(pixels))


def split_dirs(data_dir: Path) -> dict[str, Path]:
    return {p.name: p for p in Path(data_dir).iterdir() if p.is_dir()} if Path(data_dir).is_dir() else {}


# --------------------------------------------------------------------------------------------- metrics


def classification_metrics(y_true, y_pred, class_names: list[str], train_labels=None) -> dict:
    """Accuracy, weighted/macro F1, per-class precision/recall/F1, confusion matrix and the majority baseline.

    Args:
        y_true, y_pred: class indices.
        class_names: names of the indices.
        train_labels (None): training labels, whose most frequent class is the baseline's constant guess
            (default: the most frequent class of ``y_true``).

    Returns:
        a dict; ``collapsed`` is True when every prediction is the same class (a failure the seeds' models showed).
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    labels = list(range(len(class_names)))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    reference = np.asarray(train_labels if train_labels is not None and len(train_labels) else y_true, dtype=int)
    majority = Counter(reference.tolist()).most_common(1)[0][0] if len(reference) else 0
    baseline = np.full_like(y_true, majority)
    # Averages over the classes present in the truth or the predictions (sklearn's default): a class absent from
    # this split would otherwise add a 0 to the macro mean.
    kw = dict(zero_division=0)
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)) if len(y_true) else float("nan"),
        "f1_weighted": float(f1_score(y_true, y_pred, average="weighted", **kw)),
        "f1_macro": float(f1_score(y_true, y_pred, average="macro", **kw)),
        "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                             "support": int(support[i])} for i, name in enumerate(class_names)},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "majority_class": class_names[majority],
        "majority_accuracy": float(accuracy_score(y_true, baseline)) if len(y_true) else float("nan"),
        "majority_f1_weighted": float(f1_score(y_true, baseline, average="weighted", **kw)),
        "majority_f1_macro": float(f1_score(y_true, baseline, average="macro", **kw)),
        "predicted_classes": sorted({class_names[i] for i in y_pred.tolist()}),
        "collapsed": bool(len(set(y_pred.tolist())) <= 1),
    }


def format_report(metrics: dict, title: str = "test") -> str:
    """A plain-text report: the model's figures beside the majority-class baseline, per-class rows, collapse flag."""
    lines = [f"{title}: n={metrics['n']}",
             f"{'':22}{'model':>10}{'majority':>10}",
             f"{'accuracy':22}{metrics['accuracy']:10.4f}{metrics['majority_accuracy']:10.4f}",
             f"{'weighted F1':22}{metrics['f1_weighted']:10.4f}{metrics['majority_f1_weighted']:10.4f}",
             f"{'macro F1':22}{metrics['f1_macro']:10.4f}{metrics['majority_f1_macro']:10.4f}",
             f"majority class: {metrics['majority_class']}",
             f"{'class':22}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}"]
    for name, row in metrics["per_class"].items():
        lines.append(f"{name[:22]:22}{row['precision']:10.4f}{row['recall']:10.4f}{row['f1']:10.4f}{row['support']:9d}")
    if metrics["collapsed"]:
        lines.append(f"WARNING: the model predicts a single class ({', '.join(metrics['predicted_classes'])}) "
                     "for every image: it has collapsed to a constant guess")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- config + engine


@dataclasses.dataclass(kw_only=True)
class ClassifierConfig(TrainConfig):
    """Options of ``sardata train classifier`` (see :func:`train`); the shared fields are :class:`TrainConfig`'s.

    Args:
        data: ImageFolder export root (``train/``, optional ``val/``, ``test/``).
        model ("cnn"): one of :data:`MODELS`.
        out_dir (None): default ``work_dir(<data dir name>, "classifier_<model>")``.
        weights (None): backbone ImageNet weights (file or torchvision weights name).
        image_size (224), epochs (10), batch_size (64), lr (1e-3): seed settings (Adam).
        weight_decay (0.0): Adam weight decay.
        val_fraction (0.15): share of ``train`` held out (stratified) for validation when there is no ``val/``.
        balance ("none"): ``sampler`` (WeightedRandomSampler, inverse class frequency), ``weights`` (weighted
            cross-entropy) or ``none``.
        monitor ("f1_macro"): validation metric for model selection and early stopping (``f1_macro`` or
            ``f1_weighted``).
        patience (3): epochs without improvement before stopping (0: never stop early).
        normalization ("auto"): ``auto`` (ImageNet stats with weights, else the training images'), ``data``,
            ``sar`` or ``imagenet``.
        workers (2), device (None), amp (True: fp16 on CUDA, bf16 on CPUs with native bf16, as the detector), seed (0),
        progress (True).
        resume (None): checkpoint (file or run directory) to continue from, or ``"latest"`` (the newest in
            ``out_dir`` if any); test_only (False): evaluate ``resume`` only.
        gradcam (8): Grad-CAM overlays written for the first N test images (0: none).
        fiftyone_dataset (None): FiftyOne dataset the export came from; the test predictions are then added to its
            samples as ``fo.Classification`` in the field ``predictions`` and the Grad-CAM maps as ``fo.Heatmap`` in
            the field ``gradcam`` (through the export manifest's sample ids).
        max_images (None): cap per split (smoke runs).
        init_from (None): checkpoint of an earlier stage (seed 002's sequential protocol: train on one dataset, then
            fine-tune on the next). Its weights start this run; its image size and normalisation are kept (the
            network was trained with them); when its classes differ, the head is re-initialised for the new ones.
        trainable ("default"): :data:`TRAINABLE`; ``head`` = frozen fine-tuning, ``all`` = unfrozen.
    """

    PATH_FIELDS = ("out_dir", "data")

    data: Path
    model: str = "cnn"
    weights: str | None = None
    image_size: int = 224
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    val_fraction: float = 0.15
    balance: str = "none"
    monitor: str = "f1_macro"
    patience: int = 3
    normalization: str = "auto"
    workers: int = 2
    amp: bool = True
    test_only: bool = False
    gradcam: int = 8
    fiftyone_dataset: str | None = None
    max_images: int | None = None
    init_from: Path | None = None
    trainable: str = "default"

    def validate(self) -> "ClassifierConfig":
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; expected one of {MODELS}")
        if self.trainable not in TRAINABLE:
            raise ValueError(f"unknown trainable {self.trainable!r}; expected one of {TRAINABLE}")
        if self.init_from and self.resume:
            raise ValueError("--init-from starts a new run from an earlier stage; --resume continues this one: "
                             "give one of them")
        if self.balance not in ("none", "sampler", "weights"):
            raise ValueError(f"unknown balance {self.balance!r}; expected none, sampler or weights")
        if self.monitor not in ("f1_macro", "f1_weighted"):
            raise ValueError(f"unknown monitor {self.monitor!r}; expected f1_macro or f1_weighted")
        if self.normalization not in ("auto", "data", "sar", "imagenet"):
            raise ValueError(f"unknown normalization {self.normalization!r}")
        if self.test_only and not self.resume:
            raise ValueError("--test-only needs --resume CHECKPOINT")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction={self.val_fraction} must be in (0, 1)")
        if not (Path(self.data) / "train").is_dir() and not self.test_only:
            raise FileNotFoundError(f"{self.data}: no train/ directory (expected <split>/<class>/<file>)")
        if self.out_dir is None:
            from sardata.paths import work_dir

            self.out_dir = work_dir(Path(self.data).resolve().name, f"classifier_{self.model}")
        if not isinstance(self.patience, int) or self.patience < 0:
            raise ValueError(f"patience={self.patience!r}: must be an integer ≥ 0")
        return super().validate()


def train_one_epoch(model, optimizer, data_loader, device, epoch: int, criterion, scaler=None, amp: bool = False,
                    progress: bool = True) -> dict[str, float]:
    """One pass; returns mean ``loss`` and ``train_accuracy``. Raises FloatingPointError on a non-finite loss."""
    model.train()
    keep_frozen_in_eval(common.unwrap(model))
    loss_sum, correct, seen = 0.0, 0, 0
    for images, labels in tqdm(data_loader, desc=f"epoch {epoch}", disable=not progress, leave=False):
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        with common.autocast(device, amp):
            logits = model(images)
            loss = criterion(logits, labels)
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"epoch {epoch}: loss is {loss.item()}; stopping training")
        common.optimizer_step(loss, optimizer, scaler)
        loss_sum += loss.item() * len(labels)
        correct += int((logits.argmax(1) == labels).sum())
        seen += len(labels)
    return {"loss": loss_sum / max(seen, 1), "train_accuracy": correct / max(seen, 1)}


@torch.no_grad()
def predict_loader(model, data_loader, device, progress: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(y_true, y_pred, probabilities)`` over a loader, in eval mode (no augmentation: the loader's own
    transform decides, and evaluation loaders have none)."""
    model.eval()
    truths, probs = [], []
    for images, labels in tqdm(data_loader, desc="evaluate", disable=not progress, leave=False):
        probs.append(torch.softmax(model(images.to(device)).float(), dim=1).cpu())
        truths.append(labels)
    if not probs:
        return np.zeros(0, int), np.zeros(0, int), np.zeros((0, 0))
    p = torch.cat(probs).numpy()
    return torch.cat(truths).numpy(), p.argmax(1), p


def evaluate(model, data_loader, device, class_names, train_labels=None) -> dict:
    y_true, y_pred, _ = predict_loader(model, data_loader, device)
    return classification_metrics(y_true, y_pred, class_names, train_labels)


def _stratified_split(paths: list[str], targets: list[int], fraction: float,
                      seed: int) -> tuple[list[int], list[int]]:
    """Stratified train/val indices over *original* images: every replica follows its original into train, and
    validation holds each held-out image once (no copy of a validation image is trained on)."""
    from sklearn.model_selection import train_test_split

    groups: dict[tuple, list[int]] = {}
    for index, (path, target) in enumerate(zip(paths, targets)):
        groups.setdefault((target, str(Path(path).parent), parse_replica(path)[0]), []).append(index)
    keys = list(groups)
    key_targets = [k[0] for k in keys]
    counts = Counter(key_targets)
    stratify = key_targets if min(counts.values()) >= 2 and len(keys) * fraction >= len(counts) else None
    train_keys, val_keys = train_test_split(np.arange(len(keys)), test_size=fraction, random_state=seed,
                                            stratify=stratify)
    train_idx = sorted(i for k in train_keys for i in groups[keys[k]])
    val_idx = sorted(groups[keys[k]][0] for k in val_keys)
    return train_idx, val_idx


def _normalisation(cfg: ClassifierConfig, train_set: SarImageFolder, indices: list[int]):
    mode = cfg.normalization
    if mode == "auto":
        mode = "imagenet" if cfg.weights else "data"
    if mode == "imagenet":
        return list(common.IMAGENET_MEAN), list(common.IMAGENET_STD)
    if mode == "sar" or not indices:
        return list(common.SAR_MEAN), list(common.SAR_STD)
    step = max(1, len(indices) // 256)
    mean, std = common.mean_std_of(common.to_chw_tensor(train_set.loader(train_set.samples[i][0]))
                                   for i in indices[::step])
    return list(mean), list(std)


def train(cfg: ClassifierConfig) -> dict:
    """Trains (or with ``test_only`` evaluates) a classifier; see :class:`ClassifierConfig`.

    Writes to ``cfg.out_dir``: ``model_{epoch}.pth``, ``checkpoint.pth``, ``best.pth`` (best validation
    ``monitor``), ``metrics.{json,csv,png}`` per epoch, ``test_metrics.json``, ``report_test.txt``,
    ``confusion_matrix_test.png``, ``gradcam/`` overlays and ``config.json``.

    Returns:
        ``{"out_dir", "history", "test", "best_epoch", "checkpoint", "best", "report"}``.
    """
    cfg.validate()
    dist_info = common.init_distributed(cfg.device)
    device = common.train_device(cfg.device, dist_info)
    seed_everything(cfg.seed + dist_info["rank"])
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    amp = cfg.amp  # common.autocast picks fp16 / bf16 / nothing for the device
    resume_path = cfg.resume_checkpoint()
    if resume_path is None and cfg.test_only:
        raise checkpoints.CheckpointNotFoundError(cfg.out_dir, "--test-only with --resume latest needs one")
    checkpoint = checkpoints.load_checkpoint(resume_path) if resume_path else None
    data = Path(cfg.data)

    if checkpoint is not None:
        model_kwargs = dict(checkpoint["args"]["model_kwargs"])
        if model_kwargs["name"] != cfg.model:
            raise ValueError(f"{resume_path}: checkpoint is a {model_kwargs['name']}, not {cfg.model}")
        classes = list(model_kwargs["classes"])
    else:
        classes = SarImageFolder(data / "train").classes
        model_kwargs = None
    splits = split_dirs(data)
    plain_train = SarImageFolder(data / "train", classes) if (data / "train").is_dir() else None
    if plain_train is not None and cfg.max_images:
        plain_train.samples = plain_train.samples[: cfg.max_images]
        plain_train.targets = [t for _, t in plain_train.samples]
    if "val" in splits or plain_train is None:
        train_idx = list(range(len(plain_train))) if plain_train is not None else []
        val_idx = None
    else:
        train_idx, val_idx = _stratified_split([p for p, _ in plain_train.samples], plain_train.targets,
                                               cfg.val_fraction, cfg.seed)
    earlier = checkpoints.load_checkpoint(cfg.init_from) if cfg.init_from and checkpoint is None else None
    if earlier is not None:
        previous = earlier.get("args", {}).get("model_kwargs")
        if not previous or previous.get("name") != cfg.model:
            raise ValueError(f"{cfg.init_from}: not a {cfg.model} classifier checkpoint "
                             f"(model {previous.get('name') if previous else None!r})")
        model_kwargs = dict(name=cfg.model, num_classes=len(classes), classes=classes,
                            image_size=previous["image_size"], image_mean=previous["image_mean"],
                            image_std=previous["image_std"])
    if model_kwargs is None:
        mean, std = _normalisation(cfg, plain_train, train_idx)
        model_kwargs = dict(name=cfg.model, num_classes=len(classes), classes=classes, image_size=cfg.image_size,
                            image_mean=mean, image_std=std)
    size, mean, std = model_kwargs["image_size"], model_kwargs["image_mean"], model_kwargs["image_std"]

    def subset(root: Path, train: bool, indices=None):
        dataset = SarImageFolder(root, classes, ChipTransform(size, mean, std, train=train))
        if indices is None and not train:  # evaluation splits count each image once
            dataset.samples = [s for s in dataset.samples if not is_replica(s[0])]
        if cfg.max_images:
            dataset.samples = dataset.samples[: cfg.max_images]
        dataset.targets = [t for _, t in dataset.samples]
        return dataset if indices is None else torch.utils.data.Subset(dataset, indices)

    test_set = subset(splits["test"], False) if "test" in splits else None
    loader_kw = dict(num_workers=cfg.workers, pin_memory=device.type == "cuda", persistent_workers=cfg.workers > 0)
    weights = None if checkpoint is not None or earlier is not None else cfg.weights
    with warnings.catch_warnings():
        if earlier is not None:  # the backbone's weights come from the earlier stage
            warnings.simplefilter("ignore")
        model = build_classifier(cfg.model, len(classes), weights)
    if earlier is not None:
        _load_earlier_stage(model, earlier, classes, cfg.init_from)
    set_trainable(model, cfg.trainable)
    model = model.to(device)
    args = {**common.plain(dataclasses.asdict(cfg)), "model_kwargs": common.plain(model_kwargs)}
    if common.is_main_process():
        write_json(out_dir / "config.json", args)

    history, best_score, best_epoch = [], -1.0, -1
    train_labels = [plain_train.targets[i] for i in train_idx] if plain_train is not None else None
    if not cfg.test_only:
        train_set = subset(data / "train", True, train_idx)
        val_set = subset(splits["val"], False) if val_idx is None else subset(data / "train", False, val_idx)
        counts = Counter(train_labels)
        class_weights = torch.tensor([len(train_labels) / (len(classes) * max(counts.get(i, 0), 1))
                                      for i in range(len(classes))], dtype=torch.float32)
        sampler = None
        if cfg.balance == "sampler":
            if dist_info["distributed"]:
                raise ValueError("--balance sampler cannot be combined with torchrun; use --balance weights")
            sampler = torch.utils.data.WeightedRandomSampler(
                [float(class_weights[t]) for t in train_labels], num_samples=len(train_labels), replacement=True)
        elif dist_info["distributed"]:
            sampler = torch.utils.data.distributed.DistributedSampler(train_set, shuffle=True, seed=cfg.seed)
        train_loader = torch.utils.data.DataLoader(train_set, batch_size=cfg.batch_size, shuffle=sampler is None,
                                                   sampler=sampler, **loader_kw)
        val_loader = torch.utils.data.DataLoader(val_set, batch_size=cfg.batch_size, **loader_kw)
        criterion = nn.CrossEntropyLoss(weight=class_weights.to(device) if cfg.balance == "weights" else None)
        if dist_info["distributed"]:
            model = nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                                     weight_decay=cfg.weight_decay)
        scaler = common.grad_scaler(device, amp)
        start_epoch = 0
        if checkpoint is not None:
            common.unwrap(model).load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
            start_epoch = int(checkpoint["epoch"]) + 1
            history = json.loads(json.dumps(checkpoint.get("history", [])))
            best_score, best_epoch = float(checkpoint.get("best_score", -1.0)), int(checkpoint.get("best_epoch", -1))
        for epoch in range(start_epoch, cfg.epochs):
            if isinstance(sampler, torch.utils.data.distributed.DistributedSampler):
                sampler.set_epoch(epoch)
            started = time.perf_counter()
            record = {"epoch": epoch, **train_one_epoch(model, optimizer, train_loader, device, epoch, criterion,
                                                        scaler, amp, cfg.progress and common.is_main_process())}
            val = evaluate(common.unwrap(model), val_loader, device, classes, train_labels)
            record.update({"val_accuracy": val["accuracy"], "val_f1_weighted": val["f1_weighted"],
                           "val_f1_macro": val["f1_macro"], "time_s": round(time.perf_counter() - started, 2)})
            history.append(record)
            improved = val[cfg.monitor] > best_score
            if improved:
                best_score, best_epoch = val[cfg.monitor], epoch
            extra = {"history": common.plain(history), "best_score": best_score, "best_epoch": best_epoch}
            if common.is_main_process():
                common.save_checkpoint(out_dir, epoch, model, optimizer, None, args, scaler, extra=extra)
                if improved:
                    with atomic_path(out_dir / "best.pth") as tmp:
                        shutil.copyfile(out_dir / checkpoints.CHECKPOINT_NAME, tmp)
                common.write_history(history, out_dir)
            common.barrier()
            if cfg.patience and epoch - best_epoch >= cfg.patience:
                break
        if common.is_main_process() and (out_dir / "best.pth").is_file():
            common.unwrap(model).load_state_dict(checkpoints.load_checkpoint(out_dir / "best.pth")["model"])
    else:
        model.load_state_dict(checkpoint["model"])

    result = {"out_dir": out_dir, "history": history, "best_epoch": best_epoch, "test": None, "report": "",
              "checkpoint": out_dir / checkpoints.CHECKPOINT_NAME, "best": out_dir / "best.pth"}
    if test_set is not None and common.is_main_process():
        test_loader = torch.utils.data.DataLoader(test_set, batch_size=cfg.batch_size, **loader_kw)
        y_true, y_pred, probs = predict_loader(common.unwrap(model), test_loader, device)
        metrics = classification_metrics(y_true, y_pred, classes, train_labels)
        metrics["best_epoch"] = best_epoch
        write_json(out_dir / "test_metrics.json", metrics)
        plot_confusion_matrix(metrics["confusion_matrix"], classes, out_dir / "confusion_matrix_test.png",
                              f"{cfg.model} — test (acc {metrics['accuracy']:.3f}, "
                              f"macro F1 {metrics['f1_macro']:.3f})")
        result["report"] = format_report(metrics, f"{cfg.model} test")
        write_text(out_dir / "report_test.txt", result["report"] + "\n")
        result["test"] = metrics
        if cfg.gradcam:
            result["gradcam"] = write_gradcams(common.unwrap(model), test_set, out_dir / "gradcam", cfg.gradcam,
                                               device)
        if cfg.fiftyone_dataset:
            result["fiftyone_samples"] = predictions_to_fiftyone(cfg.data, test_set, y_pred, probs,
                                                                 result.get("gradcam", []), cfg.fiftyone_dataset)
    if dist_info["owns_group"]:
        common.cleanup_distributed()
    return result


def _load_earlier_stage(model: nn.Module, checkpoint: dict, classes: list[str], path) -> None:
    """Weights of an earlier stage into ``model``: all of them for the same classes, all but the head otherwise."""
    state = checkpoint["model"]
    previous = list(checkpoint["args"]["model_kwargs"]["classes"])
    if previous == list(classes):
        model.load_state_dict(state)
        return
    head = {id(p) for p in head_of(model).parameters()}
    head_keys = {name for name, p in model.named_parameters() if id(p) in head}
    missing, unexpected = model.load_state_dict({k: v for k, v in state.items() if k not in head_keys}, strict=False)
    if set(missing) - head_keys or unexpected:
        raise ValueError(f"{path}: earlier-stage weights do not fit (missing {sorted(missing)[:3]}, "
                         f"unexpected {sorted(unexpected)[:3]})")
    warnings.warn(f"{path}: classes {previous} → {list(classes)}; the head is re-initialised")


def predictions_to_fiftyone(data_dir, dataset: SarImageFolder, y_pred, probs, gradcams: list[tuple[Path, Path]],
                            fiftyone_dataset, field: str = "predictions", heatmap_field: str = "gradcam") -> int:
    """Puts the test predictions (``fo.Classification`` with the softmax confidence, in ``field``) and the Grad-CAM
    maps of the first ``len(gradcams)`` test images (``fo.Heatmap`` in ``heatmap_field``) on their FiftyOne samples,
    through the export manifest's sample ids (:func:`sardata.predictions.add_file_classifications`). Returns the
    number of samples written."""
    from sardata.predictions import add_file_classifications

    files = [path for path, _ in dataset.samples]
    labels = [(dataset.classes[int(k)], float(probs[i, int(k)])) for i, k in enumerate(y_pred)]
    cams = [cam for cam, _ in gradcams] + [None] * (len(files) - len(gradcams))
    return add_file_classifications(fiftyone_dataset, data_dir, files, labels, field, cams, heatmap_field)


def write_gradcams(model, dataset: SarImageFolder, out_dir: Path, n: int, device) -> list[tuple[Path, Path]]:
    """Grad-CAM overlays of the first ``n`` images of ``dataset`` (named ``<index>_<true class>_<file stem>``)."""
    from sardata.train.gradcam import GradCAM, save_overlays

    n = min(n, len(dataset))
    if n == 0:
        return []
    images = torch.stack([dataset[i][0] for i in range(n)])
    # chips differ in size (OpenSARShip): resize each display image to the network input before stacking
    display = torch.cat([
        torch.nn.functional.interpolate(common.to_chw_tensor(dataset.loader(dataset.samples[i][0]))[None],
                                        size=images.shape[-2:], mode="bilinear", align_corners=False)
        for i in range(n)
    ])
    with GradCAM(model) as cam:
        maps = cam(images.to(device))
    names = [f"{i:04d}_{dataset.classes[dataset.samples[i][1]]}_{Path(dataset.samples[i][0]).stem}" for i in range(n)]
    return save_overlays(display, maps, out_dir, names)

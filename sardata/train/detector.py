"""Ship/aircraft detectors on a COCO export: Faster R-CNN, Cascade R-CNN, RetinaNet, FCOS (FPN) and SSD512 (VGG16).

Modelled on torchvision's ``references/detection``: :func:`train_one_epoch` and :func:`evaluate` are pure functions,
training stops on a non-finite loss, checkpoints (``model_{epoch}.pth`` + ``checkpoint.pth``) hold
model/optimizer/lr_scheduler/args/epoch, ``resume`` continues at the next epoch and ``test_only`` only evaluates.
Models are torchvision's (Cascade R-CNN is assembled from torchvision's RoI parts in :mod:`sardata.train.cascade`).

Defaults follow BSLM (seed 000, mmdetection 1x schedule): 512×512 input, SGD lr 0.02 × batch/16, momentum 0.9,
weight decay 1e-3, 12 epochs, linear warm-up over 500 iterations from 0.001×, ×0.1 at epochs 8 and 11.

Normalisation (``normalization="auto"``): ImageNet statistics only when the backbone starts from ImageNet weights
(they expect them); otherwise the per-channel mean/std of the training images, which for gray SAR replicated to three
channels sit far from ImageNet's RGB values. ``"sar"`` uses the fixed :data:`sardata.train.common.SAR_MEAN` /
``SAR_STD``. The statistics are stored in the checkpoint so :func:`load_detector` rebuilds the same model.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from pathlib import Path

import torch
import torchvision
from torch import nn

from sardata import checkpoints
from sardata.config import LATEST, TrainConfig
from sardata._io import write_json
from sardata.runtime import seed_everything
from sardata.train import common, engine
from sardata.train.coco_data import CocoDetection, categories_of, collate, has_split
from sardata.train.engine import evaluate, gt_of, predict, predict_loader, train_one_epoch, warmup_step_lambda  # noqa: F401

ARCHS = ("faster_rcnn", "cascade_rcnn", "retinanet", "fcos", "ssd")
BACKBONES = ("resnet50", "resnet18", "mobilenet_v2", "mobilenet_v3", "vgg16")
_TORCHVISION_BACKBONE = {
    "resnet50": "resnet50",
    "resnet18": "resnet18",
    "mobilenet_v2": "mobilenet_v2",
    "mobilenet_v3": "mobilenet_v3_large",
    "vgg16": "vgg16",
}
#: Mobilenet stages fed to the FPN: outputs at strides 8, 16 and 32 (torchvision's default keeps only the two
#: stride-32 stages, too coarse for SAR ships of 10–30 px).
_MOBILENET_RETURNED_LAYERS = [2, 3, 5]


# --------------------------------------------------------------------------------------------- models


def _classification_net(backbone: str, weights_spec, frozen_bn: bool) -> nn.Module:
    """The torchvision classification network whose features become the detector's backbone."""
    from torchvision.ops import misc as misc_nn_ops

    enum, path = common.resolve_weights(weights_spec)
    builder = torchvision.models.__dict__[_TORCHVISION_BACKBONE[backbone]]
    kwargs = {"weights": enum}
    if backbone != "vgg16":  # VGG16 has no batch norm
        kwargs["norm_layer"] = misc_nn_ops.FrozenBatchNorm2d if frozen_bn else nn.BatchNorm2d
    net = builder(**kwargs)
    if path is not None:
        common.load_weights_file(net, path, ignore=("fc.", "classifier."))
    return net


def build_backbone(backbone: str, arch: str, image_size: int = 512, backbone_weights=None,
                   trainable_layers: int = 3, frozen_bn: bool | None = None) -> nn.Module:
    """The feature extractor of ``arch``: an FPN (``BackboneWithFPN``, output dict of levels) or SSD's VGG16.

    Args:
        backbone: one of :data:`BACKBONES`.
        arch: one of :data:`ARCHS`; decides the FPN's extra levels (P6/P7 for RetinaNet and FCOS, max-pool else).
        image_size (512): SSD uses its SSD512 extractor at ≥ 512, SSD300's below.
        backbone_weights (None): see :func:`sardata.train.common.resolve_weights`.
        trainable_layers (3): backbone stages left trainable when starting from weights (all of them otherwise,
            as torchvision does: freezing random weights makes no sense).
        frozen_bn (None): treat the backbone as pretrained: ``FrozenBatchNorm2d`` (torchvision's choice for
            pretrained backbones) and only ``trainable_layers`` trained. Default: when ``backbone_weights`` is given.
            Stored in checkpoints so a reload builds identical modules without the weights file.
    """
    from torchvision.models.detection.backbone_utils import _mobilenet_extractor, _resnet_fpn_extractor
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7

    pretrained = backbone_weights is not None if frozen_bn is None else frozen_bn
    net = _classification_net(backbone, backbone_weights, pretrained)
    if arch == "ssd":
        from torchvision.models.detection.ssd import _vgg_extractor

        return _vgg_extractor(net, image_size >= 512, min(trainable_layers, 5) if pretrained else 5)
    extra = LastLevelP6P7(256, 256) if arch in ("retinanet", "fcos") else LastLevelMaxPool()
    if backbone.startswith("resnet"):
        returned = [2, 3, 4] if arch in ("retinanet", "fcos") else [1, 2, 3, 4]
        return _resnet_fpn_extractor(net, trainable_layers if pretrained else 5, returned, extra)
    num_stages = 6
    return _mobilenet_extractor(net, True, trainable_layers if pretrained else num_stages,
                                _MOBILENET_RETURNED_LAYERS, extra)


def feature_levels(backbone: nn.Module, probe_size: int = 256) -> tuple[list[str], list[int]]:
    """Names and strides of the backbone's output maps, measured with one small forward pass."""
    was_training = backbone.training
    backbone.eval()
    with torch.no_grad():
        features = backbone(torch.zeros(1, 3, probe_size, probe_size))
    backbone.train(was_training)
    names = list(features)
    return names, [max(1, round(probe_size / f.shape[-1])) for f in features.values()]


def build_detector(arch: str, backbone: str, num_classes: int, image_size: int = 512, backbone_weights=None,
                   trainable_layers: int = 3, image_mean=None, image_std=None, frozen_bn: bool | None = None,
                   **kwargs) -> nn.Module:
    """A torchvision detector for SAR images of ``image_size`` (no resize to torchvision's default 800 px).

    Args:
        arch: ``faster_rcnn``, ``cascade_rcnn``, ``retinanet``, ``fcos`` or ``ssd``.
        backbone: ``resnet50``, ``resnet18``, ``mobilenet_v2``, ``mobilenet_v3`` (FPN), or ``vgg16`` (SSD only).
        num_classes: classes *including background* (index 0), as torchvision counts them: a COCO export with K
            categories (ids 1..K) needs ``K + 1``.
        image_size (512): images are resized so the longer side is ``image_size`` (SSD: exactly square).
        backbone_weights (None): ImageNet weights as a file path or torchvision weights enum/name.
        trainable_layers (3): see :func:`build_backbone`.
        image_mean (None), image_std (None): input normalisation, default :data:`common.SAR_MEAN` / ``SAR_STD``.
        frozen_bn (None): see :func:`build_backbone`.
        **kwargs: passed to the torchvision model (``box_score_thresh``, ``detections_per_img``, ...).

    The model keeps torchvision's structure: ``model.backbone`` returns the FPN's ``OrderedDict`` of levels.
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; expected one of {ARCHS}")
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; expected one of {BACKBONES}")
    if (arch == "ssd") != (backbone == "vgg16"):
        raise ValueError(f"arch {arch!r} with backbone {backbone!r}: SSD uses vgg16, the FPN models use "
                         "resnet50/resnet18/mobilenet_v2/mobilenet_v3")
    if num_classes < 2:
        raise ValueError(f"num_classes={num_classes} must count background too (K categories → K + 1)")
    from torchvision.models.detection import FCOS, FasterRCNN, RetinaNet
    from torchvision.models.detection.ssd import SSD
    from torchvision.models.detection.anchor_utils import AnchorGenerator, DefaultBoxGenerator
    from torchvision.ops import MultiScaleRoIAlign

    image_mean = list(image_mean or common.SAR_MEAN)
    image_std = list(image_std or common.SAR_STD)
    body = build_backbone(backbone, arch, image_size, backbone_weights, trainable_layers, frozen_bn)
    common_kwargs = dict(image_mean=image_mean, image_std=image_std, **kwargs)

    if arch == "ssd":
        if image_size >= 512:
            # SSD512 (Liu et al. 2016): 7 maps. torchvision's highres extractor yields 64/32/16/8/6/4/1 cells at
            # 512 px, so box centres are spread evenly over each map (steps=None) rather than at fixed strides.
            anchors = DefaultBoxGenerator([[2], [2, 3], [2, 3], [2, 3], [2, 3], [2], [2]],
                                          scales=[0.07, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 1.05])
        else:  # SSD300 layout, as torchvision's ssd300_vgg16
            anchors = DefaultBoxGenerator([[2], [2, 3], [2, 3], [2, 3], [2], [2]],
                                          scales=[0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05],
                                          steps=[8, 16, 32, 64, 100, 300])
        return SSD(body, anchors, (image_size, image_size), num_classes, **common_kwargs)

    names, strides = feature_levels(body)
    sized = dict(min_size=image_size, max_size=image_size, **common_kwargs)
    # Anchors from 32 px at the finest level, doubling per level (torchvision/mmdetection defaults for FPN).
    base = [32 * 2**i for i in range(len(names))]
    if arch in ("faster_rcnn", "cascade_rcnn"):
        anchor_generator = AnchorGenerator(tuple((b,) for b in base), ((0.5, 1.0, 2.0),) * len(names))
        pooled = [n for n in names if n != "pool"]
        if arch == "cascade_rcnn":
            from sardata.train.cascade import cascade_rcnn

            return cascade_rcnn(body, num_classes, pooled, rpn_anchor_generator=anchor_generator, **sized)
        roi_pool = MultiScaleRoIAlign(featmap_names=pooled, output_size=7, sampling_ratio=2)
        return FasterRCNN(body, num_classes, rpn_anchor_generator=anchor_generator, box_roi_pool=roi_pool, **sized)
    if arch == "retinanet":
        sizes = tuple((b, int(b * 2 ** (1 / 3)), int(b * 2 ** (2 / 3))) for b in base)
        return RetinaNet(body, num_classes, anchor_generator=AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(names)),
                         **sized)
    # FCOS: one "anchor" per location whose size is the level's stride (torchvision's fcos_resnet50_fpn).
    anchor_generator = AnchorGenerator(tuple((s,) for s in strides), ((1.0,),) * len(names))
    return FCOS(body, num_classes, anchor_generator=anchor_generator, **sized)


def load_detector(checkpoint_path: str | os.PathLike, device=None) -> tuple[nn.Module, dict]:
    """A detector trained by :func:`train`, in eval mode on ``device``, and the ``args`` it was trained with.

    ``args["model_kwargs"]`` holds the :func:`build_detector` arguments (no weights are downloaded: the checkpoint
    holds them all).
    """
    checkpoint = checkpoints.load_checkpoint(checkpoint_path)
    args = checkpoint.get("args", {})
    if "model_kwargs" not in args:
        raise ValueError(f"{checkpoint_path}: not a sardata detector checkpoint (no args.model_kwargs)")
    model = build_detector(**args["model_kwargs"])
    model.load_state_dict(checkpoint["model"])
    from sardata.runtime import resolve_device

    model.to(resolve_device(device)).eval()
    return model, args


# --------------------------------------------------------------------------------------------- config


@dataclasses.dataclass(kw_only=True)
class DetectorConfig(TrainConfig):
    """Options of ``sardata train detector`` (see :func:`train`); the shared fields are :class:`TrainConfig`'s.

    Args:
        data: COCO export root (``annotations/<split>.json``, ``images/<split>/``).
        arch ("faster_rcnn"): see :data:`ARCHS`.
        backbone (None): see :data:`BACKBONES`; default ``vgg16`` for SSD, ``resnet50`` otherwise.
        out_dir (None): default ``work_dir(<data dir name>, "detector_<arch>_<backbone>")``.
        train_split ("train"), test_split ("test"): splits; the test split is evaluated every epoch if present.
        image_size (512), epochs (12), batch_size (4): BSLM settings.
        lr (None): default 0.02 × batch_size × world_size / 16 (linear scaling rule); SSD's base is 0.002, as in
            mmdetection's SSD512 config (VGG16 without batch norm diverges at 0.02).
        momentum (0.9), weight_decay (1e-3): SGD.
        warmup_iters (500), warmup_factor (0.001): linear warm-up (capped at one epoch).
        lr_steps ((8, 11)), lr_gamma (0.1): step decay at those epochs.
        backbone_weights (None): ImageNet weights, file or torchvision weights name.
        trainable_layers (3): backbone stages trained when starting from weights.
        normalization ("auto"): ``auto``, ``data``, ``sar`` or ``imagenet`` (module docstring).
        workers (2): DataLoader workers.
        device (None): default CUDA when available.
        amp (True): mixed precision (CUDA only).
        resume (None): checkpoint (file or run directory) to continue from at the next epoch, or ``"latest"``:
            the newest in ``out_dir`` if any.
        test_only (False): evaluate ``resume`` on the test split and write predictions; no training.
        eval_every (1): evaluate every N epochs (and always after the last).
        max_images (None): read only the first N images per split (smoke runs).
        model_options (None): extra :func:`build_detector` keyword arguments for the torchvision model, e.g.
            ``{"box_batch_size_per_image": 256, "detections_per_img": 300}``; stored in the checkpoint.
        seed (0): random seed.
        progress (True): progress bars.
    """

    PATH_FIELDS = ("out_dir", "data")

    data: Path
    arch: str = "faster_rcnn"
    backbone: str | None = None
    train_split: str = "train"
    test_split: str = "test"
    image_size: int = 512
    epochs: int = 12
    batch_size: int = 4
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 1e-3
    warmup_iters: int = 500
    warmup_factor: float = 0.001
    lr_steps: tuple[int, ...] = (8, 11)
    lr_gamma: float = 0.1
    backbone_weights: str | None = None
    trainable_layers: int = 3
    normalization: str = "auto"
    workers: int = 2
    amp: bool = True
    test_only: bool = False
    eval_every: int = 1
    max_images: int | None = None
    model_options: dict | None = None

    def validate(self) -> "DetectorConfig":
        """Fills defaults and rejects bad combinations up front (as torchvision's ``train.py`` does)."""
        if self.arch not in ARCHS:
            raise ValueError(f"unknown arch {self.arch!r}; expected one of {ARCHS}")
        self.backbone = self.backbone or ("vgg16" if self.arch == "ssd" else "resnet50")
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}; expected one of {BACKBONES}")
        if (self.arch == "ssd") != (self.backbone == "vgg16"):
            raise ValueError(f"--arch {self.arch} cannot use --backbone {self.backbone} (SSD ↔ vgg16)")
        if self.normalization not in ("auto", "data", "sar", "imagenet"):
            raise ValueError(f"unknown normalization {self.normalization!r}; expected auto, data, sar or imagenet")
        if self.test_only and not self.resume:
            raise ValueError("--test-only needs --resume CHECKPOINT")
        if isinstance(self.image_size, bool) or not isinstance(self.image_size, int) or self.image_size < 32:
            raise ValueError(f"image_size={self.image_size!r}: must be an integer ≥ 32")
        if not isinstance(self.eval_every, int) or self.eval_every < 1:
            raise ValueError(f"eval_every={self.eval_every!r}: must be an integer ≥ 1")
        if not Path(self.data).is_dir():
            raise FileNotFoundError(f"{self.data}: data directory not found")
        if self.out_dir is None:
            from sardata.paths import work_dir

            self.out_dir = work_dir(Path(self.data).resolve().name, f"detector_{self.arch}_{self.backbone}")
        return super().validate()


# --------------------------------------------------------------------------------------------- train


def _normalisation(cfg: DetectorConfig, dataset: CocoDetection) -> tuple[list[float], list[float]]:
    mode = cfg.normalization
    if mode == "auto":
        mode = "imagenet" if cfg.backbone_weights else "data"
    if mode == "imagenet":
        return list(common.IMAGENET_MEAN), list(common.IMAGENET_STD)
    if mode == "sar" or len(dataset) == 0:
        return list(common.SAR_MEAN), list(common.SAR_STD)
    step = max(1, len(dataset) // 64)  # ≤ 64 images spread over the split
    mean, std = common.mean_std_of(dataset.load_image(i) for i in range(0, len(dataset), step))
    return list(mean), list(std)


def _loader(dataset, batch_size: int, workers: int, shuffle: bool, distributed: bool, device, seed: int):
    sampler = None
    if distributed:
        sampler = torch.utils.data.distributed.DistributedSampler(dataset, shuffle=shuffle, seed=seed)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler, num_workers=workers,
        collate_fn=collate, pin_memory=device.type == "cuda", persistent_workers=workers > 0,
    )


def train(cfg: DetectorConfig) -> dict:
    """Trains (or with ``test_only`` evaluates) a detector on a COCO export; see :class:`DetectorConfig`.

    Writes to ``cfg.out_dir``: ``model_{epoch}.pth``, ``checkpoint.pth``, ``metrics.{json,csv,png}`` (losses, lr,
    mAP/AP50 per epoch), ``predictions_<test_split>.json`` (COCO results with ``sample_id``), ``config.json``.
    Under ``torchrun`` (``WORLD_SIZE`` set) it trains with DistributedDataParallel and a DistributedSampler; only
    rank 0 evaluates and writes.

    Returns:
        ``{"out_dir", "history", "metrics", "checkpoint", "predictions"}``.
    """
    resume_path = checkpoint = None
    if cfg.resume is not None and cfg.resume != LATEST:  # read first: it may decide the architecture
        resume_path = checkpoints.find_checkpoint(cfg.resume)
        checkpoint = checkpoints.load_checkpoint(resume_path)
    if checkpoint is not None and "model_kwargs" in checkpoint.get("args", {}):
        saved = checkpoint["args"]["model_kwargs"]
        if cfg.test_only:  # evaluating a checkpoint: its own architecture, whatever the defaults say
            cfg.arch, cfg.backbone = saved["arch"], saved["backbone"]
        elif cfg.backbone is None:
            cfg.backbone = saved["backbone"]
    cfg.validate()
    if cfg.resume == LATEST:  # the newest in out_dir, which validate() has settled
        resume_path = cfg.resume_checkpoint()
        if resume_path is None and cfg.test_only:
            raise checkpoints.CheckpointNotFoundError(cfg.out_dir, "--test-only with --resume latest needs one")
        checkpoint = checkpoints.load_checkpoint(resume_path) if resume_path else None
    dist_info = common.init_distributed(cfg.device)
    device = common.train_device(cfg.device, dist_info)
    seed_everything(cfg.seed + dist_info["rank"])
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    amp = cfg.amp and device.type == "cuda"
    workers = cfg.workers

    train_set = None
    if not cfg.test_only:
        train_set = CocoDetection(cfg.data, cfg.train_split, train=True, max_images=cfg.max_images)
        if len(train_set) == 0:
            raise ValueError(f"{cfg.data}: split {cfg.train_split!r} has no readable images")
    test_set = (CocoDetection(cfg.data, cfg.test_split, dedup=True, max_images=cfg.max_images)
                if has_split(cfg.data, cfg.test_split) else None)
    if cfg.test_only and test_set is None:
        raise FileNotFoundError(f"{cfg.data}: no {cfg.test_split!r} split to evaluate")

    if checkpoint is not None:
        model_kwargs = dict(checkpoint["args"]["model_kwargs"])
        if (model_kwargs["arch"], model_kwargs["backbone"]) != (cfg.arch, cfg.backbone):
            raise ValueError(f"{resume_path}: checkpoint is {model_kwargs['arch']}/{model_kwargs['backbone']}, "
                             f"not {cfg.arch}/{cfg.backbone}")
    else:
        categories = categories_of(cfg.data, cfg.train_split)
        mean, std = _normalisation(cfg, train_set)
        model_kwargs = dict(arch=cfg.arch, backbone=cfg.backbone, num_classes=max(c["id"] for c in categories) + 1,
                            image_size=cfg.image_size, trainable_layers=cfg.trainable_layers, image_mean=mean,
                            image_std=std, frozen_bn=cfg.backbone_weights is not None, **(cfg.model_options or {}))
    model = build_detector(backbone_weights=None if checkpoint else cfg.backbone_weights, **model_kwargs)
    model.to(device)
    args = {**common.plain(dataclasses.asdict(cfg)), "model_kwargs": common.plain(model_kwargs),
            "world_size": dist_info["world_size"]}
    if common.is_main_process():
        write_json(out_dir / "config.json", args)

    test_loader = (torch.utils.data.DataLoader(test_set, batch_size=cfg.batch_size, num_workers=0, collate_fn=collate)
                   if test_set is not None else None)
    if cfg.test_only:
        model.load_state_dict(checkpoint["model"])
        metrics, results = evaluate(model, test_loader, device, cfg.progress)
        pred_path = write_json(out_dir / f"predictions_{cfg.test_split}.json", results, indent=None)
        write_json(out_dir / f"metrics_{cfg.test_split}.json", metrics)
        return {"out_dir": out_dir, "history": [], "metrics": metrics, "checkpoint": resume_path,
                "predictions": pred_path}

    if dist_info["distributed"]:
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    train_loader = _loader(train_set, cfg.batch_size, workers, True, dist_info["distributed"], device, cfg.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    base_lr = 0.002 if cfg.arch == "ssd" else 0.02
    lr = cfg.lr if cfg.lr is not None else base_lr * cfg.batch_size * dist_info["world_size"] / 16
    optimizer = torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    iters_per_epoch = len(train_loader)
    lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_step_lambda(
        iters_per_epoch, min(cfg.warmup_iters, iters_per_epoch), cfg.warmup_factor, cfg.lr_steps, cfg.lr_gamma))
    scaler = common.grad_scaler(device, amp)

    start_epoch, history = 0, []
    if checkpoint is not None:
        start_epoch, history = engine.resume(checkpoint, model, optimizer, lr_scheduler, scaler)

    metrics: dict = {}
    results: list = []
    for epoch in range(start_epoch, cfg.epochs):
        if dist_info["distributed"]:
            train_loader.sampler.set_epoch(epoch)
        started = time.perf_counter()
        record = {"epoch": epoch, **train_one_epoch(model, optimizer, train_loader, device, epoch, lr_scheduler,
                                                    scaler, amp, cfg.progress and common.is_main_process())}
        record["time_s"] = round(time.perf_counter() - started, 2)
        last = epoch == cfg.epochs - 1
        if test_loader is not None and common.is_main_process() and (last or (epoch + 1) % cfg.eval_every == 0):
            metrics, results = evaluate(common.unwrap(model), test_loader, device, cfg.progress)
            record.update({k: metrics[k] for k in ("mAP", "AP50", "AP75")})
        history.append(record)
        engine.save(out_dir, epoch, model, optimizer, lr_scheduler, args, scaler, history)
        common.barrier()

    pred_path = None
    if test_loader is not None and common.is_main_process():
        if not results:  # resumed past the last epoch, or evaluation skipped
            metrics, results = evaluate(common.unwrap(model), test_loader, device, cfg.progress)
        pred_path = write_json(out_dir / f"predictions_{cfg.test_split}.json", results, indent=None)
    if dist_info["owns_group"]:
        common.cleanup_distributed()
    if test_set is None:
        warnings.warn(f"{cfg.data}: no {cfg.test_split!r} split; trained without evaluation")
    return {"out_dir": out_dir, "history": history, "metrics": metrics,
            "checkpoint": out_dir / checkpoints.CHECKPOINT_NAME,
            "predictions": pred_path}

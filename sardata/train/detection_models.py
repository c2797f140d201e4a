"""torchvision detectors for SAR: Faster R-CNN, Cascade R-CNN, RetinaNet, FCOS (FPN) and SSD.

The models are torchvision's (Cascade R-CNN is assembled from torchvision's RoI parts in
:mod:`sardata.train.cascade`); what changes for small SAR targets trained from scratch is around them:

- ``native=True``: no resize (:class:`sardata.train.sar_input.SARTransform`): crops and whole images go in at their
  own resolution. ``native=False`` is torchvision's resize to ``image_size`` (the paper's 512²).
- ``db=True``: per-image dB standardisation inside the model (:func:`sardata.train.sar_input.db_standardize`).
- ``anchors``: an anchor plan from the data (:func:`sardata.train.anchors.derive_anchors`) instead of
  torchvision's / mmdetection's COCO defaults (R-CNN: 32 px at stride 4 doubling per level; RetinaNet: 32 px at
  stride 8 with three octaves; SSD512: first scale 0.04 of the image as mmdetection's ``ssd512`` — torchvision's
  0.07 gives 36 px, larger than most SSDD ships).
- detections are kept down to score 0.001 (COCO evaluation practice) unless a ``*score_thresh`` option says
  otherwise.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from sardata import checkpoints
from sardata.metrics import SCORE_THRESHOLD
from sardata.train import common
from sardata.train.backbones import BACKBONES, build_backbone, feature_levels

ARCHS = ("faster_rcnn", "cascade_rcnn", "retinanet", "fcos", "ssd")
SCORE_THRESH = SCORE_THRESHOLD  # the one evaluation threshold (sardata.metrics)
#: SSD512 scales (fractions of the reference size), mmdetection's ``ssd512``: 0.04 then 0.1 → 0.9.
SSD512_SCALES = [0.04, 0.1, 0.26, 0.42, 0.58, 0.74, 0.9, 1.06]
SSD300_SCALES = [0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05]


def build_detector(arch: str, backbone: str, num_classes: int, image_size: int = 512, backbone_weights=None,
                   trainable_layers: int = 3, image_mean=None, image_std=None, frozen_bn: bool | None = None,
                   anchors: dict | None = None, native: bool = False, db: bool = False,
                   representation_size: int | None = None, **kwargs) -> nn.Module:
    """A torchvision detector for SAR images.

    Args:
        arch: one of :data:`ARCHS`.
        backbone: ``resnet50``, ``resnet18``, ``mobilenet_v2``, ``mobilenet_v3``, ``tiny`` (FPN), or ``vgg16``
            (SSD's; SSD also runs on ``tiny``'s pyramid).
        num_classes: classes *including background* (index 0), as torchvision counts them: a COCO export with K
            categories (ids 1..K) needs ``K + 1``.
        image_size (512): with ``native=False`` images are resized so the longer side is ``image_size`` (SSD:
            exactly square); with ``native=True`` it is only SSD's reference size for its box scales.
        backbone_weights (None): ImageNet weights as a file path or torchvision weights enum/name.
        trainable_layers (3), frozen_bn (None): see :func:`sardata.train.backbones.build_backbone`.
        image_mean (None), image_std (None): mean/std normalisation when ``db`` is False (default
            :data:`common.SAR_MEAN` / ``SAR_STD``).
        anchors (None): ``{"sizes": [[...] per level], "aspect_ratios": [[...] per level]}`` (see
            :func:`sardata.train.anchors.derive_anchors`); None: the COCO defaults above.
        native (False), db (False): module docstring.
        representation_size (None): width of the R-CNN box head (torchvision 1024; ``tiny`` 256).
        **kwargs: passed to the torchvision model (``box_score_thresh``, ``detections_per_img``, ...).

    The model keeps torchvision's structure: ``model.backbone`` returns the FPN's ``OrderedDict`` of levels.
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; expected one of {ARCHS}")
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; expected one of {BACKBONES}")
    if (backbone == "vgg16") != (arch == "ssd") and not (arch == "ssd" and backbone == "tiny"):
        raise ValueError(f"arch {arch!r} with backbone {backbone!r}: SSD uses vgg16 (or tiny), the FPN models use "
                         "resnet50/resnet18/mobilenet_v2/mobilenet_v3/tiny")
    if num_classes < 2:
        raise ValueError(f"num_classes={num_classes} must count background too (K categories → K + 1)")
    from torchvision.models.detection import FCOS, FasterRCNN, RetinaNet
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import MultiScaleRoIAlign

    from sardata.train import sar_input

    image_mean = list(image_mean or common.SAR_MEAN)
    image_std = list(image_std or common.SAR_STD)
    body = build_backbone(backbone, arch, image_size, backbone_weights, trainable_layers, frozen_bn)
    common_kwargs = dict(image_mean=image_mean, image_std=image_std, **kwargs)

    if arch == "ssd":
        common_kwargs.setdefault("score_thresh", SCORE_THRESH)
        model = _ssd(body, num_classes, image_size, anchors, native, **common_kwargs)
        return sar_input.install(model, native, db)

    names, strides = feature_levels(body)
    sized = dict(min_size=image_size, max_size=image_size, **common_kwargs)
    if anchors is not None:
        sizes = tuple(tuple(float(s) for s in level) for level in anchors["sizes"])
        ratios = tuple(tuple(float(r) for r in level) for level in anchors["aspect_ratios"])
        if len(sizes) != len(names):
            raise ValueError(f"anchor plan has {len(sizes)} levels, the {backbone} pyramid {len(names)} ({names})")
    if arch in ("faster_rcnn", "cascade_rcnn"):
        if anchors is None:  # 32 px at the finest level, doubling per level (torchvision/mmdetection FPN defaults)
            sizes = tuple((32 * 2**i,) for i in range(len(names)))
            ratios = ((0.5, 1.0, 2.0),) * len(names)
        anchor_generator = AnchorGenerator(sizes, ratios)
        pooled = [n for n in names if n != "pool"]
        rep = representation_size or 1024
        sized.setdefault("box_score_thresh", SCORE_THRESH)
        if arch == "cascade_rcnn":
            from sardata.train.cascade import cascade_rcnn

            model = cascade_rcnn(body, num_classes, pooled, representation_size=rep,
                                 rpn_anchor_generator=anchor_generator, **sized)
        else:
            roi_pool = MultiScaleRoIAlign(featmap_names=pooled, output_size=7, sampling_ratio=2)
            model = FasterRCNN(body, None, rpn_anchor_generator=anchor_generator, box_roi_pool=roi_pool,
                               box_head=TwoMLPHead(body.out_channels * 49, rep),
                               box_predictor=FastRCNNPredictor(rep, num_classes), **sized)
        return sar_input.install(model, native, db)
    sized.setdefault("score_thresh", SCORE_THRESH)
    if arch == "retinanet":
        if anchors is None:
            sizes = tuple((b, int(b * 2 ** (1 / 3)), int(b * 2 ** (2 / 3))) for b in (32 * 2**i for i in range(len(names))))
            ratios = ((0.5, 1.0, 2.0),) * len(names)
        model = RetinaNet(body, num_classes, anchor_generator=AnchorGenerator(sizes, ratios), **sized)
        return sar_input.install(model, native, db)
    # FCOS: one "anchor" per location whose size is the level's stride (torchvision's fcos_resnet50_fpn).
    anchor_generator = AnchorGenerator(tuple((s,) for s in strides), ((1.0,),) * len(names))
    return sar_input.install(FCOS(body, num_classes, anchor_generator=anchor_generator, **sized), native, db)


def load_detector(checkpoint_path: str | os.PathLike, device=None) -> tuple[nn.Module, dict]:
    """A detector trained by :func:`sardata.train.detector.train`, in eval mode on ``device``, and its ``args``.

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


# --------------------------------------------------------------------------------------------- SSD


class PixelDefaultBoxGenerator(nn.Module):
    """SSD default boxes of fixed pixel sizes at each map's stride, for inputs of any size (native resolution).

    torchvision's ``DefaultBoxGenerator`` scales boxes with the input's size, so a 256² training crop and a 500 px
    test image would get different boxes; here box ``k`` is ``scales[k] · reference`` px wherever it is, centred
    at ``(i + 0.5) · stride``. Box shapes per map are SSD's: two squares (``s_k`` and ``sqrt(s_k s_{k+1})``) and
    ``s_k·sqrt(ar) × s_k/sqrt(ar)`` plus its transpose for each ``ar``.
    """

    def __init__(self, aspect_ratios: list[list[float]], scales: list[float], reference: int, strides: list[int]):
        super().__init__()
        if len(scales) != len(aspect_ratios) + 1 or len(strides) != len(aspect_ratios):
            raise ValueError("SSD boxes: need len(scales) == maps + 1 and one stride per map")
        self.aspect_ratios, self.scales, self.reference, self.strides = aspect_ratios, scales, reference, strides
        self._wh = []
        for k, ratios in enumerate(aspect_ratios):
            s, s_next = scales[k] * reference, scales[k + 1] * reference
            pairs = [[s, s], [(s * s_next) ** 0.5] * 2]
            for ar in ratios:
                pairs += [[s * ar**0.5, s / ar**0.5], [s / ar**0.5, s * ar**0.5]]
            self._wh.append(torch.tensor(pairs))

    def num_anchors_per_location(self) -> list[int]:
        return [2 + 2 * len(r) for r in self.aspect_ratios]

    def forward(self, image_list, feature_maps: list[torch.Tensor]) -> list[torch.Tensor]:
        dtype, device = feature_maps[0].dtype, feature_maps[0].device
        boxes = []
        for k, fmap in enumerate(feature_maps):
            height, width = fmap.shape[-2:]
            stride = self.strides[k]
            ys = (torch.arange(height, dtype=dtype, device=device) + 0.5) * stride
            xs = (torch.arange(width, dtype=dtype, device=device) + 0.5) * stride
            cy, cx = torch.meshgrid(ys, xs, indexing="ij")
            centres = torch.stack([cx.reshape(-1), cy.reshape(-1)], dim=1)  # location-major, as SSD's heads
            wh = self._wh[k].to(dtype=dtype, device=device)
            c = centres[:, None, :].expand(-1, len(wh), -1)
            half = wh[None].expand(len(centres), -1, -1) / 2
            boxes.append(torch.cat([c - half, c + half], dim=-1).reshape(-1, 4))
        all_boxes = torch.cat(boxes)
        return [all_boxes for _ in image_list.image_sizes]


def _ssd(body, num_classes: int, image_size: int, anchors, native: bool, **kwargs):
    from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
    from torchvision.models.detection.ssd import SSD

    names, strides = feature_levels(body, probe_size=max(300, image_size))
    n_maps = len(names)
    ratios = [[2]] + [[2, 3]] * max(0, n_maps - 3) + [[2]] * min(2, n_maps - 1)
    ratios = ratios[:n_maps]
    if anchors is not None:  # first scale from the data, then the plan's doubling ladder
        level_sizes = [float(level[0]) for level in anchors["sizes"]][:n_maps]
        level_sizes += [level_sizes[-1] * 2 ** (i + 1) for i in range(n_maps - len(level_sizes))]
        scales = [s / image_size for s in level_sizes] + [2 * level_sizes[-1] / image_size]
    elif image_size >= 512:
        scales = SSD512_SCALES[:n_maps + 1]
    else:
        scales = SSD300_SCALES[:n_maps + 1]
    if native:
        generator = PixelDefaultBoxGenerator(ratios, scales, image_size, strides)
    elif image_size >= 512:
        # SSD512 (Liu et al. 2016): box centres spread evenly over each map (steps=None).
        generator = DefaultBoxGenerator(ratios, scales=scales)
    else:
        generator = DefaultBoxGenerator(ratios, scales=scales, steps=[8, 16, 32, 64, 100, 300][:n_maps])
    head = None
    if isinstance(getattr(body, "out_channels", None), int):  # an FPN: one width for every map
        from torchvision.models.detection.ssd import SSDHead

        head = SSDHead([body.out_channels] * n_maps, generator.num_anchors_per_location(), num_classes)
    return SSD(body, generator, (image_size, image_size), num_classes, head=head, **kwargs)


def set_score_threshold(model: nn.Module, threshold: float = SCORE_THRESH) -> nn.Module:
    """Sets a built detector's output score threshold (RetinaNet/FCOS ``score_thresh``, R-CNN ROI heads), e.g. for a
    checkpoint whose config asked for a display threshold, so that evaluation sees the low-score tail."""
    if hasattr(model, "roi_heads"):
        model.roi_heads.score_thresh = threshold
    if hasattr(model, "score_thresh"):
        model.score_thresh = threshold
    return model

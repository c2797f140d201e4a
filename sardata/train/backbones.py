"""Feature extractors of the detectors: torchvision's ResNet / MobileNet (+ FPN), SSD's VGG16, and ``tiny``.

Norm layers follow the batch size a CPU affords (2–4 images): from scratch every BatchNorm becomes a
:func:`group_norm` (GroupNorm's statistics are per image, so batch 2 trains as well as batch 64; Wu & He 2018);
from ImageNet weights it is torchvision's ``FrozenBatchNorm2d`` (the pretrained statistics, never re-estimated).
VGG16 has no norm layers.

``tiny`` is the from-scratch CPU preset: five 3×3 residual stages with GroupNorm (24→48→96→160→256 channels),
outputs at strides 4, 8, 16 and 32 into a 64-channel FPN. At stride 4 a 8 px ship still covers 2×2 cells, which
the stride-8-and-coarser MobileNet pyramid cannot offer. ~1.3 M parameters; about 0.2 s per 256² image for a
Faster R-CNN training step on one CPU thread.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torchvision
from torch import nn

from sardata.train import common

BACKBONES = ("resnet50", "resnet18", "mobilenet_v2", "mobilenet_v3", "vgg16", "tiny")
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
TINY_CHANNELS = (24, 48, 96, 160, 256)
TINY_FPN_CHANNELS = 64


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with the largest of 32/16/8/4/2 groups that divides ``channels`` (≥ 2 channels a group)."""
    groups = next((g for g in (32, 16, 8, 4, 2) if channels % g == 0 and channels // g >= 2), 1)
    return nn.GroupNorm(groups, channels)


class _Block(nn.Module):
    """3×3 conv–GN–ReLU, 3×3 conv–GN, plus the (projected) input, ReLU."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.norm1 = group_norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.norm2 = group_norm(cout)
        self.skip = (nn.Identity() if stride == 1 and cin == cout
                     else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), group_norm(cout)))

    def forward(self, x):
        out = torch.relu(self.norm1(self.conv1(x)))
        return torch.relu(self.norm2(self.conv2(out)) + self.skip(x))


class TinyNet(nn.Module):
    """The ``tiny`` body: a stride-2 stem and four residual stages (children in forward order, for
    torchvision's ``IntermediateLayerGetter``)."""

    def __init__(self, channels=TINY_CHANNELS):
        super().__init__()
        c0, c1, c2, c3, c4 = channels
        self.stem = nn.Sequential(nn.Conv2d(3, c0, 3, 2, 1, bias=False), group_norm(c0), nn.ReLU(inplace=True))
        self.layer1 = _Block(c0, c1, 2)
        self.layer2 = _Block(c1, c2, 2)
        self.layer3 = _Block(c2, c3, 2)
        self.layer4 = _Block(c3, c4, 2)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        for child in self.children():
            x = child(x)
        return x


def _classification_net(backbone: str, weights_spec, frozen_bn: bool) -> nn.Module:
    """The torchvision classification network whose features become the detector's backbone."""
    from torchvision.ops import misc as misc_nn_ops

    enum, path = common.resolve_weights(weights_spec)
    builder = torchvision.models.__dict__[_TORCHVISION_BACKBONE[backbone]]
    kwargs = {"weights": enum}
    if backbone != "vgg16":  # VGG16 has no batch norm
        kwargs["norm_layer"] = misc_nn_ops.FrozenBatchNorm2d if frozen_bn else group_norm
    net = builder(**kwargs)
    if path is not None:
        common.load_weights_file(net, path, ignore=("fc.", "classifier."))
    return net


def build_backbone(backbone: str, arch: str, image_size: int = 512, backbone_weights=None,
                   trainable_layers: int = 3, frozen_bn: bool | None = None) -> nn.Module:
    """The feature extractor of ``arch``: an FPN (``BackboneWithFPN``, output dict of levels) or SSD's VGG16.

    Args:
        backbone: one of :data:`BACKBONES`.
        arch: ``faster_rcnn``/``cascade_rcnn`` (FPN levels + max-pool), ``retinanet``/``fcos`` (P6/P7) or ``ssd``.
        image_size (512): SSD uses its SSD512 extractor at ≥ 512, SSD300's below.
        backbone_weights (None): see :func:`sardata.train.common.resolve_weights`.
        trainable_layers (3): backbone stages left trainable when starting from weights (all of them otherwise).
        frozen_bn (None): treat the backbone as pretrained: ``FrozenBatchNorm2d`` and only ``trainable_layers``
            trained; otherwise GroupNorm. Default: when ``backbone_weights`` is given. Stored in checkpoints so a
            reload builds identical modules without the weights file.
    """
    from torchvision.models.detection.backbone_utils import (
        BackboneWithFPN,
        _mobilenet_extractor,
        _resnet_fpn_extractor,
    )
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7

    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; expected one of {BACKBONES}")
    retina_like = arch in ("retinanet", "fcos")
    if backbone == "tiny":
        if backbone_weights is not None:
            raise ValueError("backbone 'tiny' has no pretrained weights (it is the from-scratch CPU preset)")
        body = TinyNet()
        extra = LastLevelP6P7(TINY_FPN_CHANNELS, TINY_FPN_CHANNELS) if retina_like else LastLevelMaxPool()
        return BackboneWithFPN(body, {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
                               list(TINY_CHANNELS[1:]), TINY_FPN_CHANNELS, extra_blocks=extra)
    pretrained = backbone_weights is not None if frozen_bn is None else frozen_bn
    net = _classification_net(backbone, backbone_weights, pretrained)
    if arch == "ssd":
        from torchvision.models.detection.ssd import _vgg_extractor

        return _vgg_extractor(net, image_size >= 512, min(trainable_layers, 5) if pretrained else 5)
    extra = LastLevelP6P7(256, 256) if retina_like else LastLevelMaxPool()
    if backbone.startswith("resnet"):
        returned = [2, 3, 4] if retina_like else [1, 2, 3, 4]
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
    if not isinstance(features, (dict, OrderedDict)):
        features = OrderedDict([("0", features)])
    names = list(features)
    return names, [max(1, round(probe_size / f.shape[-1])) for f in features.values()]

"""LANet on a ResNet-18 encoder (Ding et al. 2021, "LANet: Local Attention Embedding to Improve the Semantic
Segmentation of Remote Sensing Images", IEEE TGRS 59(1)), with the seed-003 contrastive-clustering heads.

* **PAM** (patch attention module): average-pool the map inside a grid of local patches, squeeze–excite the
  pooled descriptors (1×1 conv → ReLU → 1×1 conv → sigmoid), upsample the per-patch channel weights back to the
  map and re-weight it. Unlike global SE attention, each patch gets its own channel weights. The module is
  residual, as the paper specifies: the enhanced features are added to the original ones, ``x + x · A(x)``.
* **AEM** (attention embedding module): the same patch-wise attention computed from the *high-level* map and
  projected to the low-level width, upsampled and embedded into the low-level map (``low + low · att_high``), so the
  spatially precise low-level features inherit the high-level semantics' focus.
* Decoder: high-level map (after PAM) upsampled, concatenated with the low-level map (after PAM + AEM), 3×3 conv,
  1×1 classifier, upsampled to the input size.
* Contrastive-clustering heads on the pooled encoder output: instance projection (128-d, L2-normalised) and
  cluster head (softmax over ``M`` clusters).

Input channels: 1 (SAR), 4 (optical) or 5 (both, concatenated); the stem convolution is rebuilt for them.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models import resnet18


class PatchAttention(nn.Module):
    """PAM: channel attention computed per local patch (``patch_grid × patch_grid`` patches per map).

    Args:
        channels: input (and output) channels.
        patch_grid (4): patches per side; the map is pooled to this grid (the paper pools by a fixed patch size,
            which on its 256² crops amounts to a small grid; a grid keeps the module independent of input size).
        reduction (4): squeeze ratio of the bottleneck.
    """

    def __init__(self, channels: int, patch_grid: int = 4, reduction: int = 4):
        super().__init__()
        self.patch_grid = patch_grid
        hidden = max(channels // reduction, 8)
        self.attention = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1), nn.Sigmoid()
        )

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """Per-patch channel weights upsampled to ``x``'s size: ``(N, C, H, W)`` in ``(0, 1)``."""
        pooled = F.adaptive_avg_pool2d(x, self.patch_grid)
        return F.interpolate(self.attention(pooled), size=x.shape[-2:], mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x + x · A(x)``: the patch-attention-enhanced map added to the original (residual)."""
        return x + x * self.weights(x)


class AttentionEmbedding(nn.Module):
    """AEM: embeds the high-level map's patch attention into the low-level map.

    Args:
        high_channels: channels of the high-level map.
        low_channels: channels of the low-level map.
        patch_grid (4): patches per side when pooling the high-level map.
    """

    def __init__(self, high_channels: int, low_channels: int, patch_grid: int = 4):
        super().__init__()
        self.patch_grid = patch_grid
        self.project = nn.Sequential(
            nn.Conv2d(high_channels, low_channels, 1), nn.BatchNorm2d(low_channels), nn.ReLU(inplace=True),
            nn.Conv2d(low_channels, low_channels, 1), nn.Sigmoid(),
        )

    def forward(self, high: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        attention = self.project(F.adaptive_avg_pool2d(high, self.patch_grid))
        attention = F.interpolate(attention, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return low + low * attention


def _conv_bn_relu(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class LANet(nn.Module):
    """LANet segmentation network with a ResNet-18 encoder and optional contrastive-clustering heads.

    Args:
        num_classes: output classes.
        in_channels (1): 1 (SAR), 4 (optical) or 5 (SAR + optical).
        high_channels (128): decoder width of the high-level branch.
        low_channels (64): decoder width of the low-level branch.
        patch_grid (4): PAM/AEM patches per side.
        instance_dim (128): instance-projection size.
        num_clusters (10): cluster-head size ``M``.
        encoder_weights (None): path to ResNet-18 weights (a torchvision ``state_dict``); the stem is adapted by
            averaging the RGB filters over the new input channels.
    """

    def __init__(self, num_classes: int, in_channels: int = 1, high_channels: int = 128, low_channels: int = 64,
                 patch_grid: int = 4, instance_dim: int = 128, num_clusters: int = 10,
                 encoder_weights: str | None = None):
        super().__init__()
        self.num_classes, self.in_channels = num_classes, in_channels
        encoder = resnet18(weights=None)
        if encoder_weights:
            encoder.load_state_dict(torch.load(encoder_weights, map_location="cpu", weights_only=True))
        rgb = encoder.conv1.weight.data
        encoder.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        if encoder_weights:
            encoder.conv1.weight.data = rgb.mean(dim=1, keepdim=True).repeat(1, in_channels, 1, 1) * 3 / in_channels
        self.stem = nn.Sequential(encoder.conv1, encoder.bn1, encoder.relu, encoder.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = encoder.layer1, encoder.layer2, encoder.layer3, encoder.layer4

        self.high_reduce = _conv_bn_relu(512, high_channels, 3)
        self.low_reduce = _conv_bn_relu(64, low_channels, 1)
        self.pam_high = PatchAttention(high_channels, patch_grid)
        self.pam_low = PatchAttention(low_channels, patch_grid)
        self.aem = AttentionEmbedding(high_channels, low_channels, patch_grid)
        self.fuse = _conv_bn_relu(high_channels + low_channels, high_channels, 3)
        self.classifier = nn.Conv2d(high_channels, num_classes, 1)

        self.instance_head = nn.Sequential(nn.Linear(512, 512), nn.ReLU(inplace=True), nn.Linear(512, instance_dim))
        self.cluster_head = nn.Sequential(nn.Linear(512, 512), nn.ReLU(inplace=True), nn.Linear(512, num_clusters))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(low, high)``: layer-1 (stride 4, 64 ch) and layer-4 (stride 32, 512 ch) maps."""
        if x.shape[1] != self.in_channels:
            raise ValueError(f"LANet built for {self.in_channels} input channels, got {x.shape[1]}")
        low = self.layer1(self.stem(x))
        high = self.layer4(self.layer3(self.layer2(low)))
        return low, high

    def forward(self, x: torch.Tensor, with_embeddings: bool = False):
        """Logits ``(N, num_classes, H, W)``; with ``with_embeddings`` also a dict with ``features`` (pooled encoder,
        512-d), ``instance`` (L2-normalised) and ``cluster`` (softmax probabilities)."""
        low, high = self.encode(x)
        high_out = self.pam_high(self.high_reduce(high))
        low_out = self.aem(high_out, self.pam_low(self.low_reduce(low)))
        high_up = F.interpolate(high_out, size=low_out.shape[-2:], mode="bilinear", align_corners=False)
        logits = self.classifier(self.fuse(torch.cat([high_up, low_out], dim=1)))
        logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        if not with_embeddings:
            return logits
        return logits, self._heads(high)

    def embed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The contrastive-clustering outputs of ``x`` without the decoder (for the extra augmented view)."""
        return self._heads(self.encode(x)[1])

    def _heads(self, high: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = F.adaptive_avg_pool2d(high, 1).flatten(1)
        return {
            "features": pooled,
            "instance": F.normalize(self.instance_head(pooled), dim=1),
            "cluster": F.softmax(self.cluster_head(pooled), dim=1),
        }

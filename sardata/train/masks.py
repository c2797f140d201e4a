"""Pluggable foreground-mask sources for EDE distillation.

A mask source turns one image (``(C, H, W)`` float tensor) and its target dict (torchvision detection convention:
``boxes`` absolute xyxy) into ``(H, W)`` mask **logits** at the image's resolution, as MobileSAM's mask decoder
returns them; EDE (Eq. 1–2) takes their sigmoid and resizes it to each FPN level. The paper uses MobileSAM prompted
with the boxes; :class:`BoxMaskSource` (filled boxes) needs nothing and is the default.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol

import torch


class MaskSource(Protocol):
    """Anything with ``__call__(image, target) -> (H, W) mask logits``."""

    def __call__(self, image: torch.Tensor, target: dict) -> torch.Tensor: ...


class BoxMaskSource:
    """Foreground = union of the ground-truth boxes (filled rectangles), as logits ``±logit_scale``.

    Args:
        soft (False): when True, each box is a Gaussian bump (σ = box side / 4) instead of a flat rectangle, which
            weights the target centre more than its corners.
        logit_scale (8.0): logit of a full-foreground pixel (background gets ``−logit_scale``), so the sigmoid EDE
            takes is ≈ 1 inside and ≈ 0 outside (σ(8) = 0.9997).
    """

    def __init__(self, soft: bool = False, logit_scale: float = 8.0):
        self.soft = soft
        self.logit_scale = float(logit_scale)

    def __call__(self, image: torch.Tensor, target: dict) -> torch.Tensor:
        return (2.0 * self.probability(image, target) - 1.0) * self.logit_scale

    def probability(self, image: torch.Tensor, target: dict) -> torch.Tensor:
        """The ``(H, W)`` foreground map in ``[0, 1]`` before the logit scaling."""
        height, width = image.shape[-2:]
        mask = torch.zeros(height, width, device=image.device)
        boxes = target.get("boxes")
        if boxes is None or len(boxes) == 0:
            return mask
        ys = torch.arange(height, device=image.device, dtype=torch.float32).view(-1, 1) + 0.5
        xs = torch.arange(width, device=image.device, dtype=torch.float32).view(1, -1) + 0.5
        for x1, y1, x2, y2 in boxes.to(image.device).float().tolist():
            inside = (xs >= x1) & (xs <= x2) & (ys >= y1) & (ys <= y2)
            if self.soft:
                cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
                sx, sy = max((x2 - x1) / 4, 0.5), max((y2 - y1) / 4, 0.5)
                bump = torch.exp(-((xs - cx) ** 2) / (2 * sx**2) - ((ys - cy) ** 2) / (2 * sy**2))
                mask = torch.maximum(mask, bump * inside)
            else:
                mask[inside] = 1.0
        return mask


class MobileSAMMaskSource:
    """Foreground = MobileSAM masks prompted with the ground-truth boxes (as in the IFKD paper).

    MobileSAM is not a dependency of sardata and its weights cannot be downloaded by sardata: install the
    ``mobile_sam`` package and pass the ``mobile_sam.pt`` checkpoint path.

    Args:
        checkpoint: path to the MobileSAM weights file (``mobile_sam.pt``).
        model_type ("vit_t"): registry key of the MobileSAM model.
        device (None): torch device; default the image's device.

    Raises:
        ImportError: the ``mobile_sam`` package is not installed.
        FileNotFoundError: ``checkpoint`` is missing.
    """

    def __init__(self, checkpoint: str | Path | None, model_type: str = "vit_t", device: str | None = None):
        try:
            mobile_sam = importlib.import_module("mobile_sam")
        except ImportError as e:
            raise ImportError(
                "MobileSAMMaskSource needs the 'mobile_sam' package (pip install "
                "git+https://github.com/ChaoningZhang/MobileSAM) and its weights file; use BoxMaskSource otherwise"
            ) from e
        if checkpoint is None or not Path(checkpoint).is_file():
            raise FileNotFoundError(f"MobileSAM weights file not found: {checkpoint!r} (pass the path to mobile_sam.pt)")
        model = mobile_sam.sam_model_registry[model_type](checkpoint=str(checkpoint))
        model.eval()
        if device is not None:
            model.to(device)
        self._predictor = mobile_sam.SamPredictor(model)

    @torch.no_grad()
    def __call__(self, image: torch.Tensor, target: dict) -> torch.Tensor:
        height, width = image.shape[-2:]
        mask = torch.full((height, width), -20.0, device=image.device)  # σ(−20) ≈ 0: background
        boxes = target.get("boxes")
        if boxes is None or len(boxes) == 0:
            return mask
        rgb = image[:3] if image.shape[0] >= 3 else image[:1].expand(3, -1, -1)
        rgb = (rgb.clamp(0, 1) * 255).byte().permute(1, 2, 0).cpu().numpy()
        self._predictor.set_image(rgb)
        for box in boxes.float().cpu().numpy():
            masks, _, _ = self._predictor.predict(box=box, multimask_output=False, return_logits=True)
            mask = torch.maximum(mask, torch.as_tensor(masks[0], dtype=torch.float32, device=image.device))
        return mask


def build_mask_source(name: str = "box", checkpoint: str | Path | None = None) -> MaskSource:
    """Mask source by name: ``"box"``, ``"soft_box"`` or ``"mobilesam"`` (needs ``checkpoint``)."""
    if name == "box":
        return BoxMaskSource()
    if name == "soft_box":
        return BoxMaskSource(soft=True)
    if name == "mobilesam":
        return MobileSAMMaskSource(checkpoint)
    raise ValueError(f"unknown mask source {name!r}; choose from 'box', 'soft_box', 'mobilesam'")

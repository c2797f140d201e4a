"""Grad-CAM (Selvaraju et al., ICCV 2017) for the ship classifiers, as PNG overlays (FiftyOne heatmaps: their
``*_cam.png`` maps go back through :mod:`sardata.predictions`).

Hooks the last convolution of any model (or a layer you choose): the class score's gradient, averaged over space,
weights that layer's activation maps; their ReLU'd sum, upsampled to the input, is the class activation map in [0, 1].
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def find_last_conv(model: nn.Module) -> nn.Module:
    """The last ``nn.Conv2d`` in module order (VGG: conv5_3, ResNet: layer4's last conv, small CNN: its last)."""
    last = None
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            last = module
    if last is None:
        raise ValueError(f"{type(model).__name__} has no Conv2d layer for Grad-CAM")
    return last


class GradCAM:
    """Class activation maps of ``model`` at ``target_layer`` (default: its last convolution).

    Example::

        with GradCAM(model) as cam:
            maps = cam(images)           # (N, H, W) in [0, 1], for each image's predicted class

    Args:
        model: a classifier returning logits ``(N, K)``.
        target_layer (None): the module whose output is explained.
    """

    def __init__(self, model: nn.Module, target_layer: nn.Module | None = None):
        self.model = model
        self.target_layer = target_layer or find_last_conv(model)
        self._activations: torch.Tensor | None = None
        self._gradients: torch.Tensor | None = None
        self._handle = self.target_layer.register_forward_hook(self._on_forward)

    def _on_forward(self, module, inputs, output):
        self._activations = output
        if output.requires_grad:
            output.register_hook(self._on_backward)

    def _on_backward(self, grad):
        self._gradients = grad

    def close(self) -> None:
        self._handle.remove()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __call__(self, images: torch.Tensor, class_idx: int | Sequence[int] | None = None) -> np.ndarray:
        """Maps for ``images`` ``(N, C, H, W)``: of ``class_idx`` (one for all, or one per image), else of each
        image's predicted class. Returns float32 ``(N, H, W)`` in [0, 1]."""
        was_training = self.model.training
        self.model.eval()
        # In-place ReLUs would overwrite the hooked activation before its gradient is taken.
        inplace = [m for m in self.model.modules() if getattr(m, "inplace", False)]
        for module in inplace:
            module.inplace = False
        try:
            device = next(self.model.parameters()).device
            x = images.to(device).detach().requires_grad_(True)  # so frozen backbones still carry a graph
            with torch.enable_grad():
                logits = self.model(x)
                if class_idx is None:
                    targets = logits.argmax(dim=1)
                elif isinstance(class_idx, int):
                    targets = torch.full((len(x),), class_idx, device=device, dtype=torch.long)
                else:
                    targets = torch.as_tensor(list(class_idx), device=device, dtype=torch.long)
                score = logits.gather(1, targets[:, None]).sum()
                self.model.zero_grad(set_to_none=True)
                score.backward()
            acts, grads = self._activations.detach(), self._gradients.detach()
            weights = grads.mean(dim=(2, 3), keepdim=True)
            cam = F.relu((weights * acts).sum(dim=1, keepdim=True))
            cam = F.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
            peak = cam.flatten(1).max(dim=1).values.clamp_min(1e-12)[:, None, None]
            return (cam / peak).clamp(0, 1).cpu().numpy().astype(np.float32)
        finally:
            for module in inplace:
                module.inplace = True
            self.model.train(was_training)


def save_overlays(images, cams: np.ndarray, out_dir: str | os.PathLike, names: Sequence[str],
                  alpha: float = 0.45) -> list[tuple[Path, Path]]:
    """Writes ``<name>_cam.png`` (8-bit gray map, for ``fo.Heatmap``) and ``<name>_overlay.png`` (jet over the image).

    Args:
        images: ``(N, C, H, W)`` or ``(N, H, W)`` display images in [0, 1] (tensor or array), same size as the maps.
        cams: ``(N, H, W)`` maps from :class:`GradCAM`.
        out_dir: output directory.
        names: one file stem per image.
        alpha (0.45): opacity of the heat colours.

    Returns:
        ``[(cam_path, overlay_path), ...]``.
    """
    from matplotlib import colormaps

    from sardata.sarimage import write_png_atomic

    images = images.detach().cpu().numpy() if torch.is_tensor(images) else np.asarray(images)
    if images.ndim == 4:
        images = images.mean(axis=1)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jet = colormaps["jet"]
    written = []
    for image, cam, name in zip(images, cams, names):
        gray = np.clip(image, 0, 1)
        heat = jet(cam)[..., :3]
        overlay = (1 - alpha) * gray[..., None] + alpha * heat
        cam_path = write_png_atomic((cam * 255).round().astype(np.uint8), out_dir / f"{name}_cam.png")
        overlay_path = write_png_atomic((overlay * 255).round().astype(np.uint8), out_dir / f"{name}_overlay.png")
        written.append((Path(cam_path), Path(overlay_path)))
    return written

"""Grad-CAM (Selvaraju et al., ICCV 2017) for the ship classifiers, as PNG overlays (FiftyOne heatmaps: their
``*_cam.png`` maps go back through :mod:`sardata.predictions`).

Hooks a target layer (default: :func:`find_target_layer`): the class score's gradient, averaged over space, weights
that layer's activation maps; their ReLU'd sum, upsampled to the input, is the class activation map in [0, 1].

The target layer follows the convention of pytorch-grad-cam, the implementation seed 001 cites: the output of the
last *block*, not the last convolution. For a ResNet that is ``layer4[-1]`` (the bottleneck's output: residual
branch plus shortcut, after the final ReLU), not ``layer4[-1].conv3`` (the residual branch alone, before its
batch norm). For VGG it is the last ReLU of ``features`` (conv5_3 after its activation; pytorch-grad-cam's README
names ``features[-1]``, the max-pool that follows, i.e. the same maps pooled 2×: the ReLU keeps the finer grid),
not conv5_3 before its ReLU. The small CNN is treated like VGG (its last block's ReLU).
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
    """The last ``nn.Conv2d`` in module order (the fallback target for models :func:`find_target_layer` does not
    know)."""
    last = None
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            last = module
    if last is None:
        raise ValueError(f"{type(model).__name__} has no Conv2d layer for Grad-CAM")
    return last


def find_target_layer(model: nn.Module) -> nn.Module:
    """The Grad-CAM target of the pytorch-grad-cam convention (module docstring): ResNet ``layer4[-1]``; VGG and the
    small CNN the last ReLU of ``features``; a frozen-backbone wrapper (``.backbone``) is looked through; anything
    else: its last convolution."""
    import torchvision

    net = getattr(model, "backbone", model)
    if isinstance(net, torchvision.models.ResNet):
        return net.layer4[-1]
    features = getattr(net, "features", None)
    if isinstance(features, nn.Sequential):
        relus = [m for m in features if isinstance(m, nn.ReLU)]
        if relus:
            return relus[-1]
    return find_last_conv(model)


class GradCAM:
    """Class activation maps of ``model`` at ``target_layer`` (default: :func:`find_target_layer`).

    Example::

        with GradCAM(model) as cam:
            maps = cam(images)           # (N, H, W) in [0, 1], for each image's predicted class

    Args:
        model: a classifier returning logits ``(N, K)``.
        target_layer (None): the module whose output is explained.
    """

    def __init__(self, model: nn.Module, target_layer: nn.Module | None = None):
        self.model = model
        self.target_layer = target_layer or find_target_layer(model)
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

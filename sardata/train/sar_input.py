"""What a detector does to a SAR image before its backbone: per-image dB standardisation, native resolution.

:func:`db_standardize` is the one input normalisation of the from-scratch detectors. It runs inside the model
(:class:`SARTransform` replaces torchvision's ``GeneralizedRCNNTransform.normalize``), so training, evaluation,
prediction, tiled inference and a distillation teacher all see exactly the same numbers: there is no second copy of
it in a data pipeline that could drift.

Reading of "per-image dB standardisation": the input tensor holds amplitude scaled to [0, 1] (what
:func:`sardata.train.common.to_chw_tensor` returns for 8-bit, 16-bit and float SAR); it becomes
``20·log10(a + eps)`` dB and is standardised to zero mean and unit variance over the pixels of that input (the
crop during training, the whole image or tile at test time), then clipped to ±:data:`CLIP` standard deviations so
a corner reflector cannot dominate. Standardising in dB makes the speckle's spread the same at any mean brightness
(multiplicative noise becomes additive), which is what a detector trained from scratch on a few hundred images needs.
"""

from __future__ import annotations

import torch
from torchvision.models.detection.transform import GeneralizedRCNNTransform

#: Amplitude floor before the logarithm: half an 8-bit grey level.
EPS = 0.5 / 255
#: Standardised values are clipped to ±CLIP.
CLIP = 6.0


def db_standardize(image: torch.Tensor, eps: float = EPS, clip: float = CLIP) -> torch.Tensor:
    """``(C, H, W)`` amplitude in [0, 1] → dB, standardised over the image's pixels (all channels together).

    A constant image (no variance) becomes zeros.
    """
    if not image.is_floating_point():
        raise TypeError(f"expected a float image in [0, 1], got {image.dtype}")
    db = 20.0 * torch.log10(image.clamp_min(0.0) + eps)
    mean = db.mean()
    std = db.std(unbiased=False)
    z = (db - mean) / std.clamp_min(1e-6)
    return z.clamp(-clip, clip)


class SARTransform(GeneralizedRCNNTransform):
    """torchvision's detection transform with SAR input handling.

    Args:
        native (True): no resizing: images (training crops, whole test images, tiles) go to the backbone at their
            own resolution, so a 6 px ship stays 6 px. With ``native=False`` torchvision's resize to
            ``min_size``/``max_size`` applies (the paper's 512² setting).
        db (True): :func:`db_standardize` instead of mean/std normalisation.
        min_size, max_size, image_mean, image_std, size_divisible, fixed_size: as ``GeneralizedRCNNTransform``.
    """

    def __init__(self, min_size, max_size, image_mean, image_std, native: bool = True, db: bool = True,
                 size_divisible: int = 32, fixed_size=None, **kwargs):
        super().__init__(min_size, max_size, image_mean, image_std, size_divisible=size_divisible,
                         fixed_size=fixed_size, **kwargs)
        self.native = native
        self.db = db

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        return db_standardize(image) if self.db else super().normalize(image)

    def resize(self, image, target=None):
        if self.native:
            return image, target
        return super().resize(image, target)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(native={self.native}, db={self.db}, "
                f"size_divisible={self.size_divisible})")


def install(model: torch.nn.Module, native: bool, db: bool) -> torch.nn.Module:
    """Replaces ``model.transform`` (any torchvision detector) by a :class:`SARTransform` with the same sizes."""
    old = model.transform
    model.transform = SARTransform(old.min_size, old.max_size, old.image_mean, old.image_std, native=native, db=db,
                                   size_divisible=old.size_divisible, fixed_size=None if native else old.fixed_size)
    return model

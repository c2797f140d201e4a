"""SAR-appropriate augmentations on image tensors (``(C, H, W)`` or ``(B, C, H, W)``, non-negative pixel values).

SAR is not colour imagery: the useful invariances are speckle (multiplicative, gamma-distributed in intensity),
viewing geometry (flips, 90° rotations, crops) and calibration (a gain/offset in dB, i.e. a power law in linear
units). There is no colour jitter.

The geometric transforms and the drawn parameters apply to the whole tensor: a ``(B, C, H, W)`` batch gets one crop,
one flip/rotation and one dB jitter (the speckle noise is drawn per pixel). Contrastive views are made per image.
"""

from __future__ import annotations

import math

import torch
from torchvision.transforms import v2

#: Smallest value taken to a power in the dB jitter, so zero pixels stay finite.
_EPS = 1e-6


def speckle(images: torch.Tensor, looks: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Re-samples speckle: multiplies by unit-mean gamma noise with shape ``looks`` (variance ``1/looks``).

    The expected value of every pixel is unchanged; fewer looks mean stronger speckle.
    """
    if looks <= 0:
        raise ValueError(f"looks must be > 0, got {looks}")
    concentration = torch.full_like(images, float(looks))
    if generator is None:
        noise = torch.distributions.Gamma(concentration, concentration).sample()
    else:
        # torch.distributions has no generator argument; _standard_gamma does.
        noise = torch._standard_gamma(concentration, generator=generator) / float(looks)
    return images * noise


def db_jitter(images: torch.Tensor, scale: float, offset_db: float) -> torch.Tensor:
    """Scales and offsets the image in the log domain: ``dB' = scale·dB + offset_db``, back to linear units."""
    db = 10.0 * torch.log10(images.clamp_min(_EPS))
    out = torch.pow(10.0, (scale * db + offset_db) / 10.0)
    return torch.where(images > 0, out, torch.zeros_like(out))


def random_flip_rot90(images: torch.Tensor) -> torch.Tensor:
    """Random horizontal/vertical flip and a random multiple of 90° rotation (the 8 dihedral symmetries)."""
    if torch.rand(()) < 0.5:
        images = images.flip(-1)
    if torch.rand(()) < 0.5:
        images = images.flip(-2)
    k = int(torch.randint(0, 4, ()))
    return torch.rot90(images, k, dims=(-2, -1)) if k else images


class SarAugment(torch.nn.Module):
    """The contrastive view pipeline: crop, flips/rotations, speckle, dB jitter, clamp to ``[0, 1]``.

    Args:
        image_size: output side.
        crop_scale ((0.3, 1.0)): area fraction range of the random resized crop.
        looks ((2.0, 16.0)): range of the number of looks of the re-sampled speckle (log-uniform).
        speckle_p (0.8): probability of re-sampling speckle.
        db_scale ((0.8, 1.2)): range of the dB scale factor.
        db_offset ((-2.0, 2.0)): range of the dB offset.
        jitter_p (0.8): probability of the dB jitter.
    """

    def __init__(
        self,
        image_size: int,
        crop_scale: tuple[float, float] = (0.3, 1.0),
        looks: tuple[float, float] = (2.0, 16.0),
        speckle_p: float = 0.8,
        db_scale: tuple[float, float] = (0.8, 1.2),
        db_offset: tuple[float, float] = (-2.0, 2.0),
        jitter_p: float = 0.8,
    ):
        super().__init__()
        self.crop = v2.RandomResizedCrop(image_size, scale=crop_scale, antialias=True)
        self.looks = looks
        self.speckle_p = speckle_p
        self.db_scale = db_scale
        self.db_offset = db_offset
        self.jitter_p = jitter_p

    @staticmethod
    def _uniform(low: float, high: float) -> float:
        return float(torch.empty(()).uniform_(low, high))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = random_flip_rot90(self.crop(images))
        if torch.rand(()) < self.speckle_p:
            looks = math.exp(self._uniform(math.log(self.looks[0]), math.log(self.looks[1])))
            out = speckle(out, looks)
        if torch.rand(()) < self.jitter_p:
            out = db_jitter(out, self._uniform(*self.db_scale), self._uniform(*self.db_offset))
        return out.clamp(0.0, 1.0)

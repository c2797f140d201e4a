"""IFKD distillation losses as pure functions and small modules (seed 004, SAR-Aircraft-1.0).

All feature maps are ``(N, C, H, W)`` tensors of one FPN level; masks are ``(N, 1, H, W)`` and broadcast over
channels. The teacher side is always detached by the caller; nothing here touches the teacher's parameters.

* **FRS** (feature-richness score): ``mask = max_class sigmoid(teacher cls logits)`` per location;
  ``L = Σ((T − adapt(S))² · mask) / (C · Σ mask)``. Dividing by the mask sum makes the loss invariant to the mask's
  scale; dividing by the channel count ``C`` (our choice: the paper's sum over channels is C times larger and
  swamps L_GT on untrained features) makes it equal ``MSE(T, S)`` for an all-ones mask.
* **FDR** (frequency decoupling): ``fft2`` of each map, a centred (``fftshift``) square of side ``ratio·H × ratio·W``
  keeps the low band, its complement the high band; both go back with ``ifft2``. The low band gets the FRS loss,
  the high band a plain squared error after a learnable complex filter on the student's high-frequency spectrum.
* **HSM** (hyperbolic similarity mask): per location, teacher and student vectors go to the Poincaré ball
  (``expmap0``, curvature ``c``); ``d(x, y) = (2/√c)·artanh(√c‖(−x) ⊕ y‖)``; the distance map, divided by its
  per-image maximum, weights a squared-error loss towards where the student is farthest from the teacher.
* **EDE** (enhanced distillation with foreground embedding): ``T' = T + λ · m_fg · T`` with ``m_fg ∈ [0, 1]`` a
  foreground mask (box or SAM masks from :mod:`sardata.train.masks`), so distillation attends to target pixels.
* **Head**: BCE between student logits and the teacher's sigmoid probabilities, weighted by the FRS mask
  (RetinaNet classification / Faster R-CNN RPN objectness), and a temperature KL on ROI class logits.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

#: Smallest denominator used when normalising by a mask sum or a norm.
EPS = 1e-6


# ---------------------------------------------------------------------------------------------------------------
# FRS
# ---------------------------------------------------------------------------------------------------------------


def frs_mask(cls_logits: torch.Tensor) -> torch.Tensor:
    """Feature-richness mask from classification logits laid out as ``(N, A·K, H, W)`` or ``(N, A, K, H, W)``.

    Args:
        cls_logits: teacher logits; every channel is one (anchor, class) score at that location.

    Returns:
        ``(N, 1, H, W)`` mask in ``[0, 1]``: the maximum sigmoid score over anchors and classes.
    """
    if cls_logits.dim() == 5:
        cls_logits = cls_logits.flatten(1, 2)
    if cls_logits.dim() != 4:
        raise ValueError(f"cls_logits must be (N, A*K, H, W) or (N, A, K, H, W), got shape {tuple(cls_logits.shape)}")
    return torch.sigmoid(cls_logits).amax(dim=1, keepdim=True)


def masked_feature_loss(teacher: torch.Tensor, student: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``Σ((T − S)² · mask) / (C · Σ mask)`` (the FRS feature loss; ``student`` already adapted to teacher channels).

    Args:
        teacher: ``(N, C, H, W)`` teacher features (detached).
        student: ``(N, C, H, W)`` adapted student features.
        mask: ``(N, 1, H, W)`` non-negative weights (detached).
    """
    if teacher.shape != student.shape:
        raise ValueError(f"teacher {tuple(teacher.shape)} and student {tuple(student.shape)} shapes differ")
    squared = (teacher - student).pow(2) * mask
    return squared.sum() / (mask.sum().clamp_min(EPS) * teacher.shape[1])


class FeatureAdapter(nn.Module):
    """One 1×1 convolution per FPN level mapping student channels to teacher channels.

    Args:
        levels: FPN level names (e.g. ``["0", "1", "2", "3", "pool"]``).
        student_channels: channels of the student's FPN maps.
        teacher_channels: channels of the teacher's FPN maps.
    """

    def __init__(self, levels: list[str], student_channels: int, teacher_channels: int):
        super().__init__()
        self.levels = list(levels)
        self.convs = nn.ModuleDict({_key(k): nn.Conv2d(student_channels, teacher_channels, 1) for k in self.levels})

    def forward(self, level: str, student: torch.Tensor) -> torch.Tensor:
        return self.convs[_key(level)](student)


def _key(level: str) -> str:
    # ModuleDict keys cannot contain dots and must not clash with attributes.
    return f"level_{level}".replace(".", "_")


# ---------------------------------------------------------------------------------------------------------------
# Head distillation
# ---------------------------------------------------------------------------------------------------------------


def masked_bce_head_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """BCE of student logits against teacher sigmoid probabilities, averaged over channels, weighted by ``mask``.

    Args:
        student_logits: ``(N, A·K, H, W)`` student head logits.
        teacher_logits: same shape, teacher head logits (detached).
        mask: ``(N, 1, H, W)`` location weights (the FRS mask).

    Returns:
        ``Σ_loc mask · mean_ch BCE / Σ mask``. BCE against soft targets is minimised (not zero) when the student's
        logits equal the teacher's; the minimum is the teacher's own entropy.
    """
    bce = F.binary_cross_entropy_with_logits(student_logits, torch.sigmoid(teacher_logits), reduction="none")
    per_location = bce.mean(dim=1, keepdim=True)
    return (per_location * mask).sum() / mask.sum().clamp_min(EPS)


def kl_logits_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 2.0) -> torch.Tensor:
    """Hinton KL(teacher ‖ student) on softmax class logits ``(R, K)``, scaled by ``T²``; zero when equal."""
    if student_logits.numel() == 0:
        return student_logits.sum() * 0.0
    t = temperature
    log_p_student = F.log_softmax(student_logits / t, dim=-1)
    p_teacher = F.softmax(teacher_logits / t, dim=-1)
    return F.kl_div(log_p_student, p_teacher, reduction="batchmean") * t * t


# ---------------------------------------------------------------------------------------------------------------
# FDR
# ---------------------------------------------------------------------------------------------------------------


def low_frequency_mask(height: int, width: int, ratio: float, device=None) -> torch.Tensor:
    """Centred square low-pass mask ``(H, W)`` of ones for the shifted spectrum (``fftshift`` layout).

    Args:
        height: spectrum height.
        width: spectrum width.
        ratio: side of the square as a fraction of each dimension, in ``(0, 1]``; at least one bin is kept.
    """
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")
    mask = torch.zeros(height, width, device=device)
    half_h = max(1, int(round(height * ratio))) / 2.0
    half_w = max(1, int(round(width * ratio))) / 2.0
    ch, cw = height // 2, width // 2  # fftshift puts the zero frequency at index n // 2
    top, bottom = int(math.floor(ch - half_h + 0.5)), int(math.floor(ch + half_h + 0.5))
    left, right = int(math.floor(cw - half_w + 0.5)), int(math.floor(cw + half_w + 0.5))
    mask[max(top, 0) : max(bottom, top + 1), max(left, 0) : max(right, left + 1)] = 1.0
    return mask


def split_frequency(features: torch.Tensor, ratio: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Splits ``(N, C, H, W)`` features into real low- and high-frequency bands that sum to the input.

    Args:
        features: feature maps.
        ratio (0.5): side of the centred low-pass square as a fraction of ``H`` and ``W``.

    Returns:
        ``(low, high)`` real tensors of the input's shape.
    """
    spectrum = torch.fft.fftshift(torch.fft.fft2(features.float()), dim=(-2, -1))
    low_mask = low_frequency_mask(features.shape[-2], features.shape[-1], ratio, device=features.device)
    low = _inverse(spectrum * low_mask)
    high = _inverse(spectrum * (1.0 - low_mask))
    return low.to(features.dtype), high.to(features.dtype)


def _inverse(shifted_spectrum: torch.Tensor) -> torch.Tensor:
    return torch.fft.ifft2(torch.fft.ifftshift(shifted_spectrum, dim=(-2, -1))).real


class ComplexFrequencyFilter(nn.Module):
    """Learnable complex filter on a feature spectrum, ``real + i·imag``, initialised to identity (1 + 0i).

    The filter is a ``size × size`` grid per channel, resized bilinearly to each map's spectrum so one module serves
    every FPN level and image size.

    Args:
        channels: feature channels.
        size (8): filter grid side.
    """

    def __init__(self, channels: int, size: int = 8):
        super().__init__()
        self.real = nn.Parameter(torch.ones(1, channels, size, size))
        self.imag = nn.Parameter(torch.zeros(1, channels, size, size))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Filters ``(N, C, H, W)`` real features in the shifted frequency domain; returns real features."""
        h, w = features.shape[-2:]
        real = F.interpolate(self.real, size=(h, w), mode="bilinear", align_corners=False)
        imag = F.interpolate(self.imag, size=(h, w), mode="bilinear", align_corners=False)
        spectrum = torch.fft.fftshift(torch.fft.fft2(features.float()), dim=(-2, -1))
        return _inverse(spectrum * torch.complex(real, imag)).to(features.dtype)


def fdr_loss(
    teacher: torch.Tensor,
    student: torch.Tensor,
    mask: torch.Tensor,
    high_filter: nn.Module,
    ratio: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Frequency-decoupled loss: FRS-masked on the low band, filtered squared error on the high band.

    Args:
        teacher: ``(N, C, H, W)`` teacher features (detached).
        student: adapted student features, same shape.
        mask: ``(N, 1, H, W)`` FRS mask.
        high_filter: a :class:`ComplexFrequencyFilter` applied to the student's high band.
        ratio (0.5): low-pass square ratio.

    Returns:
        ``(low_loss, high_loss)``; the high loss is a plain MSE, the unmasked counterpart of the FRS loss.
    """
    t_low, t_high = split_frequency(teacher, ratio)
    s_low, s_high = split_frequency(student, ratio)
    low = masked_feature_loss(t_low, s_low, mask)
    high = (t_high - high_filter(s_high)).pow(2).mean()
    return low, high


# ---------------------------------------------------------------------------------------------------------------
# HSM (Poincaré ball)
# ---------------------------------------------------------------------------------------------------------------


def expmap0(v: torch.Tensor, c: float = 1.0, dim: int = -1) -> torch.Tensor:
    """Exponential map at the origin of the Poincaré ball of curvature ``−c``: ``tanh(√c‖v‖)·v/(√c‖v‖)``."""
    sqrt_c = math.sqrt(c)
    norm = v.norm(dim=dim, keepdim=True).clamp_min(EPS)
    return torch.tanh(sqrt_c * norm) * v / (sqrt_c * norm)


def project_to_ball(x: torch.Tensor, c: float = 1.0, dim: int = -1, margin: float = 1e-5) -> torch.Tensor:
    """Pulls points back inside the ball (norm ≤ (1 − margin)/√c) so ``artanh`` stays finite."""
    max_norm = (1.0 - margin) / math.sqrt(c)
    norm = x.norm(dim=dim, keepdim=True).clamp_min(EPS)
    return torch.where(norm > max_norm, x / norm * max_norm, x)


def mobius_add(x: torch.Tensor, y: torch.Tensor, c: float = 1.0, dim: int = -1) -> torch.Tensor:
    """Möbius addition ``x ⊕_c y`` on the Poincaré ball (``0 ⊕ y = y``, ``x ⊕ 0 = x``, ``(−x) ⊕ x = 0``)."""
    xy = (x * y).sum(dim=dim, keepdim=True)
    x2 = x.pow(2).sum(dim=dim, keepdim=True)
    y2 = y.pow(2).sum(dim=dim, keepdim=True)
    numerator = (1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y
    denominator = 1 + 2 * c * xy + c * c * x2 * y2
    return numerator / denominator.clamp_min(EPS)


def poincare_distance(x: torch.Tensor, y: torch.Tensor, c: float = 1.0, dim: int = -1) -> torch.Tensor:
    """Hyperbolic distance ``(2/√c)·artanh(√c‖(−x) ⊕ y‖)`` (symmetric, zero on identical points)."""
    sqrt_c = math.sqrt(c)
    diff_norm = mobius_add(-x, y, c=c, dim=dim).norm(dim=dim)
    return 2.0 / sqrt_c * torch.atanh((sqrt_c * diff_norm).clamp(max=1.0 - 1e-6))


def hyperbolic_mask(teacher: torch.Tensor, student: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    """Per-location hyperbolic teacher–student distance, divided by its per-image maximum → ``(N, 1, H, W)`` in [0, 1].

    Channel vectors are divided by ``√C`` before ``expmap0`` so their norms are O(1) whatever the width (raw FPN
    vectors of norm ≫ 1 would all land on the ball's boundary and be indistinguishable).
    """
    scale = math.sqrt(teacher.shape[1])
    t = project_to_ball(expmap0(teacher / scale, c, dim=1), c, dim=1)
    s = project_to_ball(expmap0(student / scale, c, dim=1), c, dim=1)
    distance = poincare_distance(t, s, c=c, dim=1).unsqueeze(1)
    peak = distance.flatten(1).amax(dim=1).clamp_min(EPS).view(-1, 1, 1, 1)
    return distance / peak


def hsm_loss(teacher: torch.Tensor, student: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    """Squared error weighted by the (detached) hyperbolic distance mask, normalised by the mask sum."""
    mask = hyperbolic_mask(teacher.detach(), student.detach(), c=c)
    return masked_feature_loss(teacher, student, mask)


# ---------------------------------------------------------------------------------------------------------------
# EDE
# ---------------------------------------------------------------------------------------------------------------


def embed_foreground(teacher: torch.Tensor, foreground: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """``T' = T + strength · m · T``: amplifies teacher features on foreground pixels.

    Args:
        teacher: ``(N, C, H, W)`` teacher features.
        foreground: ``(N, 1, H, W)`` or ``(N, H, W)`` mask in ``[0, 1]`` at this level's resolution.
        strength (1.0): λ; 0 leaves the features unchanged.
    """
    if foreground.dim() == 3:
        foreground = foreground.unsqueeze(1)
    if foreground.shape[-2:] != teacher.shape[-2:]:
        foreground = F.interpolate(foreground.float(), size=teacher.shape[-2:], mode="bilinear", align_corners=False)
    return teacher + strength * foreground.to(teacher.dtype) * teacher

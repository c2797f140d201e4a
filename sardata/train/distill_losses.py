"""The IFKD loss terms (seed 004, Eq. 1–14) as pure functions of tensors, plus the two small trainable parts.

Notation: one FPN level ``l`` with teacher features ``F_t`` and student features ``F_s``, both ``(N, C, H, W)``;
``M`` a per-location weight ``(N, 1, H, W)``. Every function here is one equation; :mod:`sardata.train.distill`
wires them together. The readings of passages the paper leaves open are listed in that module's docstring; the
ones that concern a single formula are repeated at the function.

* EDE (Eq. 1–2): ``F_t' = F_t + Resize(σ(mask(x)))`` — :func:`ede` / :func:`embed_foreground`.
* FRS mask (Du et al.): ``M_FRS = max_c σ(teacher class logits)`` — :func:`frs_mask`.
* FDR (Alg. 1): DFT → centred low-frequency window ``M_Binary`` (ratio r) → low band back to space, ``× M_FRS`` →
  back to the spectrum → ``(F_h + F̂_l) ⊙ W_filter`` → inverse DFT — :func:`fdr_rebuild`, :class:`SpectralFilter`.
* HSM: features mapped onto the Poincaré ball, Möbius addition, ``M_HSM = d_c(t, s)`` per location —
  :func:`mobius_add`, :func:`poincare_distance`, :func:`hsm_mask`.
* Feature loss (one per level): ``1/N_l Σ_ij M_ij Σ_c (F_t'' − φ_adapt(F_s))²`` — :func:`feature_loss`.
* Head loss (Eq. 13): ``1/N_l Σ_ij M_ij Σ_c φ_Binary(y_s, y_t)`` — :func:`head_loss`.

``N_l = Σ_{n,i,j} M`` (the normaliser of Du et al.'s reference FRS implementation, which IFKD extends): the loss is a
weighted average over locations of a *sum* over channels — there is no division by ``C``.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

EPS = 1e-12

# ---------------------------------------------------------------------------------------------------------------
# Masks and the two weighted losses
# ---------------------------------------------------------------------------------------------------------------


def frs_mask(cls_logits: torch.Tensor) -> torch.Tensor:
    """Feature-richness score: max over every channel (anchors × classes) of the sigmoid scores.

    Args:
        cls_logits: ``(N, A·K, H, W)`` head logits of one level (a ``(N, A, K, H, W)`` view works too).

    Returns:
        ``(N, 1, H, W)`` in ``(0, 1)``.
    """
    n, h, w = cls_logits.shape[0], cls_logits.shape[-2], cls_logits.shape[-1]
    return torch.sigmoid(cls_logits.reshape(n, -1, h, w)).amax(dim=1, keepdim=True)


def _normaliser(mask: torch.Tensor) -> torch.Tensor:
    return mask.sum().clamp_min(EPS)


def feature_loss(teacher: torch.Tensor, student: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``1/N_l Σ_{n,i,j} M_nij Σ_c (T_ncij − S_ncij)²`` with ``N_l = Σ M`` (one FPN level).

    Args:
        teacher: ``(N, C, H, W)`` transformed teacher features (no gradient expected).
        student: adapted student features, same shape.
        mask: ``(N, 1, H, W)`` location weights (M_HSM, or M_FRS when HSM is off); treated as constant.
    """
    if teacher.shape != student.shape:
        raise ValueError(f"teacher features {tuple(teacher.shape)} and student features {tuple(student.shape)} differ")
    mask = mask.detach()
    return ((teacher - student).pow(2).sum(dim=1, keepdim=True) * mask).sum() / _normaliser(mask)


def binary_kd(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """``φ_Binary``: element-wise binary cross-entropy of ``σ(y_s)`` against the soft target ``σ(y_t)``."""
    return F.binary_cross_entropy_with_logits(student_logits, torch.sigmoid(teacher_logits), reduction="none")


def head_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. 13 for one level: ``1/N_l Σ_{n,i,j} M_nij Σ_c φ_Binary(y_s, y_t)_ncij`` with ``N_l = Σ M``.

    Args:
        student_logits: ``(N, A·K, H, W)`` student classification logits (RetinaNet) or objectness (RPN).
        teacher_logits: same shape, teacher logits (no gradient).
        mask: ``(N, 1, H, W)`` location weights (M_HSM, or M_FRS when HSM is off).

    The sum runs over all ``A·K`` channels (each anchor's class scores). Its minimum over ``y_s`` is reached at
    ``y_s = y_t`` and equals the teacher's own binary entropy, not zero.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student head logits {tuple(student_logits.shape)} and teacher's "
                         f"{tuple(teacher_logits.shape)} differ (same anchors and classes are required)")
    mask = mask.detach()
    per_location = binary_kd(student_logits, teacher_logits.detach()).sum(dim=1, keepdim=True)
    return (per_location * mask).sum() / _normaliser(mask)


# ---------------------------------------------------------------------------------------------------------------
# EDE (Eq. 1–2)
# ---------------------------------------------------------------------------------------------------------------


def embed_foreground(teacher: torch.Tensor, foreground: torch.Tensor) -> torch.Tensor:
    """``F_t + Resize(P)``: adds a foreground probability map ``P = σ(mask(x))`` to every channel.

    Args:
        teacher: ``(N, C, H, W)`` teacher features.
        foreground: ``(N, 1, h, w)`` or ``(N, h, w)`` probabilities at any resolution; bilinearly resized to
            ``(H, W)``.
    """
    if foreground.dim() == 3:
        foreground = foreground.unsqueeze(1)
    if foreground.shape[-2:] != teacher.shape[-2:]:
        foreground = F.interpolate(foreground.float(), size=teacher.shape[-2:], mode="bilinear", align_corners=False)
    return teacher + foreground.to(teacher.dtype)


def ede(teacher: torch.Tensor, mask_logits: torch.Tensor) -> torch.Tensor:
    """Eq. 1–2: ``F_t' = F_t + Resize(σ(mask_logits))`` (mask logits from MobileSAM or any mask source)."""
    return embed_foreground(teacher, torch.sigmoid(mask_logits))


# ---------------------------------------------------------------------------------------------------------------
# FDR (Alg. 1)
# ---------------------------------------------------------------------------------------------------------------


def binary_window(height: int, width: int, ratio: float, device=None) -> torch.Tensor:
    """``M_Binary``: ones on a centred ``round(r·H) × round(r·W)`` window of the ``fftshift``-ed spectrum.

    Args:
        height, width: spectrum size.
        ratio: ``r`` in ``(0, 1]``; at least the zero-frequency bin is kept, ``r = 1`` keeps everything.
    """
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"FDR ratio r must be in (0, 1], got {ratio}")
    mask = torch.zeros(height, width, device=device)
    win_h, win_w = max(1, round(height * ratio)), max(1, round(width * ratio))
    # fftshift puts the zero frequency at index n // 2; the window is centred there (odd sizes exactly).
    top, left = height // 2 - win_h // 2, width // 2 - win_w // 2
    mask[top : top + win_h, left : left + win_w] = 1.0
    return mask


def _spectrum(x: torch.Tensor) -> torch.Tensor:
    return torch.fft.fftshift(torch.fft.fft2(x.float()), dim=(-2, -1))


def _spatial(shifted: torch.Tensor) -> torch.Tensor:
    return torch.fft.ifft2(torch.fft.ifftshift(shifted, dim=(-2, -1))).real


class SpectralFilter(nn.Module):
    """``W_filter``: a learnable complex filter on the shifted spectrum, ``real + i·imag``, initialised to 1 + 0i.

    One ``size × size`` grid per channel, bilinearly resized to each spectrum, so one module serves any map size.

    Args:
        channels: feature channels.
        size (8): grid side.
    """

    def __init__(self, channels: int, size: int = 8):
        super().__init__()
        self.real = nn.Parameter(torch.ones(1, channels, size, size))
        self.imag = nn.Parameter(torch.zeros(1, channels, size, size))

    def weights(self, height: int, width: int) -> torch.Tensor:
        """The complex filter ``(1, C, H, W)``."""
        real = F.interpolate(self.real, size=(height, width), mode="bilinear", align_corners=False)
        imag = F.interpolate(self.imag, size=(height, width), mode="bilinear", align_corners=False)
        return torch.complex(real, imag)

    def forward(self, shifted_spectrum: torch.Tensor) -> torch.Tensor:
        return shifted_spectrum * self.weights(*shifted_spectrum.shape[-2:])


def fdr_rebuild(teacher: torch.Tensor, frs: torch.Tensor, ratio: float,
                spectral_filter: nn.Module | None = None) -> torch.Tensor:
    """Alg. 1: the frequency-decoupled reconstruction of the teacher feature.

    ``X = shift(DFT(F_t))``; ``X_l = X ⊙ M_Binary``, ``X_h = X ⊙ (1 − M_Binary)``; ``F_l = IDFT(X_l)``;
    ``F̂_l = shift(DFT(F_l ⊙ M_FRS))``; ``out = IDFT((X_h + F̂_l) ⊙ W_filter)`` (real part).

    Args:
        teacher: ``(N, C, H, W)`` teacher features (after EDE when it is on).
        frs: ``(N, 1, H, W)`` FRS mask (spatial weights of the low band).
        ratio: window ratio ``r`` of ``M_Binary``.
        spectral_filter (None): ``W_filter``; None means ``W ≡ 1``.

    With ``M_FRS ≡ 1`` and ``W_filter ≡ 1`` the output is the input (the bands sum back to ``X``).
    """
    spectrum = _spectrum(teacher)
    window = binary_window(teacher.shape[-2], teacher.shape[-1], ratio, device=teacher.device)
    low = _spatial(spectrum * window)
    rebuilt = spectrum * (1.0 - window) + _spectrum(low * frs.float())
    if spectral_filter is not None:
        rebuilt = spectral_filter(rebuilt)
    return _spatial(rebuilt).to(teacher.dtype)


# ---------------------------------------------------------------------------------------------------------------
# HSM (Poincaré ball of curvature −c)
# ---------------------------------------------------------------------------------------------------------------


def mobius_add(x: torch.Tensor, y: torch.Tensor, c: float = 1.0, dim: int = -1) -> torch.Tensor:
    """Möbius addition ``x ⊕_c y = ((1 + 2c⟨x,y⟩ + c‖y‖²) x + (1 − c‖x‖²) y) / (1 + 2c⟨x,y⟩ + c²‖x‖²‖y‖²)``."""
    xy = (x * y).sum(dim=dim, keepdim=True)
    x2 = x.pow(2).sum(dim=dim, keepdim=True)
    y2 = y.pow(2).sum(dim=dim, keepdim=True)
    numerator = (1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y
    denominator = 1 + 2 * c * xy + c * c * x2 * y2
    return numerator / denominator.clamp_min(EPS)


def expmap0(v: torch.Tensor, c: float = 1.0, dim: int = -1) -> torch.Tensor:
    """Exponential map at the origin: ``tanh(√c‖v‖) · v / (√c‖v‖)`` (tangent vector → point of the ball)."""
    sqrt_c = math.sqrt(c)
    norm = v.norm(dim=dim, keepdim=True).clamp_min(1e-7)
    return torch.tanh(sqrt_c * norm) * v / (sqrt_c * norm)


def project_to_ball(x: torch.Tensor, c: float = 1.0, dim: int = -1, margin: float = 1e-5) -> torch.Tensor:
    """Pulls points inside ``‖x‖ ≤ (1 − margin)/√c`` so ``artanh`` stays finite."""
    max_norm = (1.0 - margin) / math.sqrt(c)
    norm = x.norm(dim=dim, keepdim=True).clamp_min(EPS)
    return torch.where(norm > max_norm, x / norm * max_norm, x)


def poincare_distance(x: torch.Tensor, y: torch.Tensor, c: float = 1.0, dim: int = -1) -> torch.Tensor:
    """``d_c(x, y) = (2/√c) · artanh(√c ‖(−x) ⊕_c y‖)`` for points of the ball."""
    sqrt_c = math.sqrt(c)
    norm = mobius_add(-x, y, c=c, dim=dim).norm(dim=dim)
    return 2.0 / sqrt_c * torch.atanh((sqrt_c * norm).clamp(max=1.0 - 1e-6))


def to_ball(features: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    """Channel vectors of ``(N, C, H, W)`` features as points of the ball: ``expmap0(f / √C)``, projected.

    The ``1/√C`` scale keeps a unit-variance vector's norm O(1); raw 256-d FPN vectors would all land at the
    boundary, where every distance is the same.
    """
    return project_to_ball(expmap0(features / math.sqrt(features.shape[1]), c, dim=1), c, dim=1)


def hsm_mask(teacher: torch.Tensor, student: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    """``M_HSM``: hyperbolic distance between teacher and student channel vectors per location, ``(N, 1, H, W)``.

    Zero where the two features are equal, growing with their disagreement. No gradient (a weight, like M_FRS).
    """
    with torch.no_grad():
        return poincare_distance(to_ball(teacher.float(), c), to_ball(student.float(), c), c=c, dim=1).unsqueeze(1)


# ---------------------------------------------------------------------------------------------------------------
# φ_adapt
# ---------------------------------------------------------------------------------------------------------------


class FeatureAdapter(nn.Module):
    """``φ_adapt``: one 3×3 convolution per student FPN level, student width → teacher width (as Du et al.).

    Args:
        levels: student level names.
        in_channels: student FPN width.
        out_channels: teacher FPN width.
    """

    def __init__(self, levels: list[str], in_channels: int, out_channels: int):
        super().__init__()
        self.convs = nn.ModuleDict({_key(level): nn.Conv2d(in_channels, out_channels, 3, padding=1)
                                    for level in levels})

    def forward(self, level: str, student: torch.Tensor) -> torch.Tensor:
        return self.convs[_key(level)](student)


def _key(level: str) -> str:
    # ModuleDict keys cannot contain dots and must not clash with attributes.
    return f"level_{level}".replace(".", "_")

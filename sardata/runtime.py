"""Where code runs and how it is seeded: the one device choice (torch and FAISS) and the one seeding helper.

torch and faiss are imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def resolve_device(device: "str | torch.device | None" = "auto") -> "torch.device":
    """The torch device to use: ``device`` as given, or CUDA when available, else CPU.

    Args:
        device ("auto"): ``"auto"`` (or None / ``""``) for the automatic choice, else a torch device or its name
            (``"cpu"``, ``"cuda:1"``, ...).
    """
    import torch

    if isinstance(device, torch.device):
        return device
    if device and device != "auto":
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def faiss_use_gpu(gpu: bool | str = "auto") -> bool:
    """Whether FAISS indexes go to the GPU: with ``gpu="auto"`` when faiss sees one (faiss-gpu and a device).

    Args:
        gpu ("auto"): ``"auto"``, or True / False to force it.

    Raises:
        ValueError: ``gpu=True`` but faiss sees no GPU.
    """
    import faiss  # lazily: importing sardata must not load faiss

    num_gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if gpu == "auto":
        return num_gpus > 0
    if gpu and num_gpus == 0:
        raise ValueError("gpu=True but faiss sees no GPU (install faiss-gpu instead of faiss-cpu)")
    return bool(gpu)


def seed_everything(seed: int) -> None:
    """Seeds Python's ``random``, NumPy's global generator and torch (all devices) with ``seed``."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)

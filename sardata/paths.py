"""Where sardata keeps its artifacts (checkpoints, feature caches, indexes, reports, plots).

Everything lives under ``$SARDATA_HOME`` (default ``~/.sardata``), per FiftyOne dataset and stage:
``work_dir("ssdd", "dcgan")`` → ``~/.sardata/ssdd/dcgan``. Display PNGs live in :func:`sarimage.default_cache_dir`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path


def sardata_home() -> Path:
    return Path(os.environ.get("SARDATA_HOME", Path.home() / ".sardata")).expanduser()


def _safe_component(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "_"


def work_dir(dataset_name: str, stage: str, create: bool = True) -> Path:
    """Artifact directory for one dataset and stage (``dcgan``, ``cc``, ``index``, ``scenes``, ``reports``, ...)."""
    path = sardata_home() / _safe_component(dataset_name) / _safe_component(stage)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def resolve_device(device: str | None = None) -> "torch.device":  # noqa: F821
    """``--device`` override, else CUDA when available, else CPU."""
    import torch

    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")

"""Where sardata keeps its artifacts (checkpoints, feature caches, indexes, reports, plots).

Everything lives under ``$SARDATA_HOME`` (default ``~/.sardata``), per FiftyOne dataset and stage:
``work_dir("ssdd", "dcgan")`` → ``~/.sardata/ssdd/dcgan``. Display PNGs live in :func:`sarimage.default_cache_dir`.
"""

from __future__ import annotations

import os
from pathlib import Path

from sardata.safepath import safe_component


def sardata_home() -> Path:
    return Path(os.environ.get("SARDATA_HOME", Path.home() / ".sardata")).expanduser()


def work_dir(dataset_name: str, stage: str, create: bool = True) -> Path:
    """Artifact directory for one dataset and stage (``dcgan``, ``cc``, ``index``, ``scenes``, ``reports``, ...)."""
    path = sardata_home() / safe_component(dataset_name) / safe_component(stage)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path

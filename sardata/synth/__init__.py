"""Synthetic SAR generator: writes each dataset's real on-disk layout with known ground truth.

Each ``sardata/synth/<name>.py`` has ``generate(out_dir, n=None, seed=0, full=False) -> Path`` returning the dataset
root to pass to the loader, and writes ``synth_truth.json`` there.
"""

from __future__ import annotations

import os
from pathlib import Path

from sardata import registry


def synthesize(name: str, out_dir: str | os.PathLike, n: int | None = None, seed: int = 0, full: bool = False,
               **options) -> Path:
    """Writes a synthetic copy of dataset ``name`` under ``out_dir`` and returns its root.

    Args:
        name: a key of :data:`sardata.registry.DATASETS`.
        out_dir: output directory (created).
        n (None): number of images/chips/tiles (a small default when None).
        seed (0): random seed; the output is deterministic for a seed.
        full (False): full-size dataset (e.g. SSDD's 1160 images) instead of the small default.
        **options: generator-specific options (SSDD: ``preset``, ``land_masks``).
    """
    return registry.get(name).generator_module().generate(Path(out_dir), n=n, seed=seed, full=full, **options)

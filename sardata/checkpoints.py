"""The one checkpoint layout of every sardata trainer, as torchvision's ``references`` write it.

A run directory holds ``checkpoint.pth`` (the latest state, what a resume reads) and, when the trainer keeps them,
``model_{epoch}.pth`` per epoch (same content). A state is a plain dict (``model``/``optimizer``/``lr_scheduler``/
``args``/``epoch`` …, or the embedders' ``generator``/``discriminator``/…) holding only what
``torch.load(weights_only=True)`` accepts: tensors, numbers, strings, lists and dicts. Writes are atomic.

``resume="latest"`` (:func:`find_checkpoint` on a directory) takes the newest state: the highest epoch among
``model_{epoch}.pth`` and ``checkpoint.pth`` (whose epoch is read from the file; it wins a tie, being written last).

Before this layout the embedders wrote ``checkpoint.pt``. Such a file is still read: passed by path it loads like
any other, and a run directory holding only ``checkpoint.pt`` resolves to it (with a warning); the next save writes
``checkpoint.pth`` beside it, which wins from then on.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

from sardata import _io

CHECKPOINT_NAME = "checkpoint.pth"
LEGACY_NAME = "checkpoint.pt"  # the embedders' name before this layout
_EPOCH_FILE = re.compile(r"^model_(\d+)\.pth$")


class CheckpointNotFoundError(FileNotFoundError):
    """No checkpoint where one was asked for; the message names the path."""

    def __init__(self, path: str | os.PathLike, detail: str = "no such file"):
        self.path = Path(path)
        super().__init__(f"checkpoint not found: {path} ({detail})")


def epoch_checkpoint_name(epoch: int) -> str:
    """``model_{epoch}.pth``."""
    return f"model_{int(epoch)}.pth"


def save_checkpoint(out_dir: str | os.PathLike, state: dict, epoch: int, keep_every_epoch: bool = True) -> Path:
    """Writes ``state`` (with its ``epoch``) as ``model_{epoch}.pth`` (if ``keep_every_epoch``) and ``checkpoint.pth``.

    Returns:
        the path of ``checkpoint.pth``.
    """
    out_dir = Path(out_dir)
    state = {**state, "epoch": int(epoch)}
    if keep_every_epoch:
        _io.torch_save(out_dir / epoch_checkpoint_name(epoch), state)
    return _io.torch_save(out_dir / CHECKPOINT_NAME, state)


def find_checkpoint(path_or_dir: str | os.PathLike, required: bool = True) -> Path | None:
    """The checkpoint file a resume reads: ``path_or_dir`` itself, or the newest checkpoint in a run directory.

    Args:
        path_or_dir: a checkpoint file or a run directory.
        required (True): raise when there is none (else return None: ``resume="latest"`` on a fresh run).

    Raises:
        CheckpointNotFoundError: nothing there (naming the path) and ``required``.
    """
    path = Path(path_or_dir).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        newest = _newest_in(path)
        if newest is not None:
            return newest
        if required:
            raise CheckpointNotFoundError(path, f"the directory holds no {CHECKPOINT_NAME} or model_<epoch>.pth")
        return None
    if required:
        raise CheckpointNotFoundError(path)
    return None


def load_checkpoint(path_or_dir: str | os.PathLike, map_location: Any = "cpu", mmap: bool = False) -> dict:
    """Reads a checkpoint (a file, or the newest in a run directory) with ``torch.load(weights_only=True)``.

    Args:
        path_or_dir: see :func:`find_checkpoint`.
        map_location ("cpu"): as ``torch.load``.
        mmap (False): memory-map the tensors (cheap when only part of a large checkpoint is used).

    Raises:
        CheckpointNotFoundError: nothing there (the message names the path).
        ValueError: the file is not a readable checkpoint (names the file and the reason).
    """
    import torch

    path = find_checkpoint(path_or_dir)
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as e:  # pickle, zip and unsupported-global errors all mean "not a checkpoint we can read"
        raise ValueError(f"{path}: cannot read checkpoint ({type(e).__name__}: {e})") from e


# --------------------------------------------------------------------------------------------- helpers


def _newest_in(folder: Path) -> Path | None:
    epochs = {int(m.group(1)): p for p in folder.iterdir() if (m := _EPOCH_FILE.match(p.name)) and p.is_file()}
    latest = folder / CHECKPOINT_NAME
    if latest.is_file():
        if not epochs:
            return latest
        newest_epoch = max(epochs)
        return epochs[newest_epoch] if newest_epoch > _stored_epoch(latest) else latest
    if epochs:
        return epochs[max(epochs)]
    legacy = folder / LEGACY_NAME
    if legacy.is_file():
        warnings.warn(f"{legacy}: legacy checkpoint name (now {CHECKPOINT_NAME}); reading it", stacklevel=3)
        return legacy
    return None


def _stored_epoch(path: Path) -> int:
    """The ``epoch`` saved in a checkpoint (memory-mapped: the tensors are not read); -1 when unreadable."""
    import torch

    try:
        return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("epoch", -1))
    except Exception:
        return -1

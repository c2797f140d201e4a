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

Finished runs: :func:`run_fingerprint` keys a run by its options (without those that cannot change its result:
device, progress bars, workers, output directory, resume) and the *content* of its training data
(:func:`data_fingerprint`) and the ``REVISION`` its config class declares (bumped when a code change alters what the
same options produce, so a finished run of older code is not reused); :func:`mark_finished` writes it into the run
directory (``run.json``) with what the run produced, and :func:`finished_run` returns that record when an identical
run already finished there. A teacher cache, a recipe's ``--reuse`` and an interrupted grid all ask this one question
the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

from sardata import _io

CHECKPOINT_NAME = "checkpoint.pth"
LEGACY_NAME = "checkpoint.pt"  # the embedders' name before this layout
_EPOCH_FILE = re.compile(r"^model_(\d+)\.pth$")
#: The record :func:`mark_finished` writes into a finished run directory.
RUN_RECORD = "run.json"
#: Config fields that do not change what a run produces (left out of :func:`run_fingerprint`).
VOLATILE_OPTIONS = ("device", "progress", "workers", "out_dir", "resume")


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


# --------------------------------------------------------------------------------------------- finished runs


def data_fingerprint(data_dir: str | os.PathLike) -> str:
    """SHA-256 of a COCO export's content: per split, the images (id, file name, size, replica), boxes and
    categories, and the image files' byte sizes. Volatile keys (FiftyOne ``sample_id``, ``info``, dates) are left
    out, so re-ingesting and re-exporting the same data gives the same fingerprint."""
    root = Path(data_dir)
    digest = hashlib.sha256()
    for path in sorted((root / "annotations").glob("*.json")):
        coco = json.loads(path.read_text())
        canonical = {
            "images": [[im.get("id"), im.get("file_name"), im.get("width"), im.get("height"), im.get("replica", 0)]
                       for im in coco.get("images", [])],
            "annotations": [[a.get("image_id"), a.get("category_id"), a.get("bbox"), a.get("iscrowd", 0)]
                            for a in coco.get("annotations", [])],
            "categories": [[c.get("id"), c.get("name")] for c in coco.get("categories", [])],
        }
        digest.update(path.name.encode())
        digest.update(json.dumps(canonical, sort_keys=True).encode())
    for path in sorted((root / "images").rglob("*")):
        if path.is_file():
            digest.update(f"{path.relative_to(root)}:{path.stat().st_size}".encode())
    return digest.hexdigest()


def run_fingerprint(config: Any, ignore: tuple[str, ...] = VOLATILE_OPTIONS) -> str:
    """SHA-256 (hex) of a run's config (a dataclass) without the ``ignore`` fields, its ``data`` directory (if it
    has one) replaced by :func:`data_fingerprint` of its content: the same options on the same data give the same
    fingerprint wherever the data lives.

    The config class's ``REVISION`` (a ``ClassVar``, default 0) enters the hash when it is not 0: a trainer bumps
    it when its code changes what the same options produce. Revision 0 is left out, so fingerprints recorded before
    a trainer declared one stay valid."""
    from dataclasses import asdict

    options = {k: v for k, v in asdict(config).items() if k not in ignore and k != "data"}
    if getattr(config, "data", None) is not None:
        options["data"] = data_fingerprint(config.data)
    if revision := getattr(type(config), "REVISION", 0):
        options["_revision"] = revision
    return hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode()).hexdigest()


def mark_finished(run_dir: str | os.PathLike, fingerprint: str, **result: Any) -> Path:
    """Records a finished run in ``run_dir/run.json``: its fingerprint and ``result`` (JSON-serialisable, e.g. the
    path of its predictions). Written last and atomically, so an interrupted run is never taken as finished."""
    return _io.write_json(Path(run_dir) / RUN_RECORD, {"fingerprint": fingerprint, **result})


def finished_run(run_dir: str | os.PathLike, fingerprint: str) -> dict | None:
    """The record of ``run_dir`` (:func:`mark_finished`) if a run of this fingerprint finished there, else None."""
    try:
        record = json.loads((Path(run_dir) / RUN_RECORD).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) and record.get("fingerprint") == fingerprint else None


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

"""The one base configuration of every sardata trainer: :class:`TrainConfig`.

Detector, classifier, distillation, segmentation and the two embedders (BSLM DCGAN, contrastive clustering) each
subclass it with their own fields and defaults, as torchvision's ``references`` share one argument parser core. The
shared fields are the ones every training run has: where it writes, how long and how big, on which device, from
which seed, and whether it continues an earlier run. Paths are :class:`~pathlib.Path` (strings are converted);
:meth:`TrainConfig.validate` rejects a bad value naming the field and returns the config, so
``train(Config(...).validate())`` reads top to bottom.

All fields are keyword-only (``DetectorConfig(data=..., epochs=2)``), so a subclass can add required fields and
change defaults freely.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import ClassVar

#: ``resume="latest"``: continue from the newest checkpoint in ``out_dir`` (start fresh when there is none).
LATEST = "latest"


@dataclasses.dataclass(kw_only=True)
class TrainConfig:
    """Fields every trainer shares.

    Attributes:
        out_dir (None): run directory (checkpoints, curves, predictions); each trainer has a default under
            ``$SARDATA_HOME``.
        epochs (1): total epochs; a resumed run trains only the missing ones.
        batch_size (1): images per step.
        lr (None): learning rate (None: the trainer's rule, e.g. the detector's linear scaling).
        device (None): ``cpu``, ``cuda``, ``cuda:1`` …; None or ``"auto"``: CUDA when available.
        seed (0): random seed of initialisation, shuffling and augmentation.
        resume (None): a checkpoint file (or a run directory: its newest checkpoint) to continue from, or
            ``"latest"``: the newest checkpoint in ``out_dir`` if there is one (see :mod:`sardata.checkpoints`).
        workers (0): DataLoader worker processes (None: the trainer's default).
        progress (True): progress bars.
    """

    #: Fields converted to ``Path`` (subclasses extend this tuple with theirs).
    PATH_FIELDS: ClassVar[tuple[str, ...]] = ("out_dir",)

    out_dir: Path | None = None
    epochs: int = 1
    batch_size: int = 1
    lr: float | None = None
    device: str | None = None
    seed: int = 0
    resume: Path | str | None = None
    workers: int | None = 0
    progress: bool = True

    def __post_init__(self):
        for name in self.PATH_FIELDS:
            value = getattr(self, name)
            if isinstance(value, (str, os.PathLike)) and str(value) != "":
                setattr(self, name, Path(value).expanduser())
            elif isinstance(value, str):
                setattr(self, name, None)
        if self.resume is not None and str(self.resume) == LATEST:  # also Path("latest") from a CLI option
            self.resume = LATEST
        elif self.resume is not None:
            self.resume = Path(self.resume).expanduser()

    def validate(self):
        """Rejects bad values, naming the field; returns ``self``. Subclasses check theirs, then call this."""
        if self.epochs is not None:  # None: the trainer stops by another rule (the detector's ``iterations``)
            _integer(self, "epochs", minimum=1)
        _integer(self, "batch_size", minimum=1)
        _integer(self, "seed", minimum=0)
        if self.workers is not None:
            _integer(self, "workers", minimum=0)
        if self.lr is not None and not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"lr={self.lr!r}: must be a positive number")
        if self.device not in (None, "", "auto"):
            import torch

            try:
                torch.device(str(self.device))
            except (RuntimeError, ValueError) as e:
                raise ValueError(f"device={self.device!r}: not a torch device (cpu, cuda, cuda:1, mps)") from e
        if self.resume == LATEST and self.out_dir is None:
            raise ValueError(f"resume={LATEST!r} needs out_dir: the directory to look for checkpoints in")
        return self

    def resume_checkpoint(self) -> Path | None:
        """The checkpoint file to continue from (None: start fresh); see :func:`sardata.checkpoints.find_checkpoint`.

        Raises:
            CheckpointNotFoundError: ``resume`` names a file or directory that holds no checkpoint.
        """
        from sardata.checkpoints import find_checkpoint

        if self.resume is None:
            return None
        if self.resume == LATEST:
            return find_checkpoint(self.out_dir, required=False)
        return find_checkpoint(self.resume)


def resume_option(resume) -> Path | str | None:
    """The embedders' ``resume`` flag as a :class:`TrainConfig` value: True → ``"latest"``, False → None."""
    if resume is True:
        return LATEST
    if resume is False:
        return None
    return resume


def _integer(cfg, name: str, minimum: int) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}={value!r}: must be an integer ≥ {minimum}")

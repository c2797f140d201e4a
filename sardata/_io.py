"""Atomic writes: the one way sardata puts a file or a directory on disk.

A writer never leaves a half-written file (or dataset root, or export) under its final name: it writes to a temporary
path beside the target, in the same directory (so the rename stays on one filesystem), and ``os.replace``-s it into
place only on success. On any exception (including ``KeyboardInterrupt``) the temporary path is removed and the
target is left as it was.

Policy, the same for every writer:

- temporary names are hidden and marked: ``.<name>`` + :data:`TMP_MARK` + ``<pid>-<random>`` (``<name>`` cut to
  100 characters; files keep their suffix so that writers choosing a format by extension, e.g. ``savefig``, still
  work). Readers listing a directory that may be being written skip names starting with ``.``;
- finished files get mode :data:`FILE_MODE` (0o644) and finished directories :data:`DIR_MODE` (0o755), whatever
  ``mkstemp``/``mkdtemp`` made (0o600/0o700): artifacts and caches are shared between users and processes.

Usage::

    with atomic_path(out / "chip.png") as tmp:
        image.save(tmp, format="PNG")

    write_json(out / "summary.json", summary)

    with atomic_dir(out / "SSDD", overwrite=True) as tmp:  # a whole directory, swapped in at the end
        ...
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

#: Marks every temporary file or directory that sardata writes (``.<name>.sardata-tmp-<pid>-<random>``).
TMP_MARK = ".sardata-tmp-"
#: Mode of every finished file.
FILE_MODE = 0o644
#: Mode of every finished directory written through :func:`atomic_dir`.
DIR_MODE = 0o755


#: Longest part of the target's name kept in a temporary name (a 255-byte name must still get a temporary one).
_NAME_CHARS = 100


def _temp_mark(path: Path) -> str:
    return f".{path.name[:_NAME_CHARS]}{TMP_MARK}"


def _temp_prefix(path: Path) -> str:
    return f"{_temp_mark(path)}{os.getpid()}-"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside ``path``; on success it is renamed to ``path`` (mode 0o644), on error removed.

    The parent directory is created if missing. The temporary file exists (empty) when the block starts; the block
    may overwrite it by name (``savefig(tmp)``, ``image.save(tmp)``, ``open(tmp, "wb")``).

    Args:
        path: the final path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Writes ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Writes ``text`` (UTF-8, newlines as given) to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2, **dumps_kwargs) -> Path:
    """Writes ``json.dumps(obj, indent=indent, **dumps_kwargs)`` to ``path`` atomically; returns ``path``.

    Args:
        path: the final path.
        obj: a JSON-serialisable object.
        indent (2): ``json.dumps`` indent.
        **dumps_kwargs: more ``json.dumps`` arguments (``default=``, ``sort_keys=``, ...).
    """
    return write_text(path, json.dumps(obj, indent=indent, **dumps_kwargs))


def save_npy(path: str | os.PathLike, array) -> Path:
    """``np.save`` of ``array`` to exactly ``path`` (no ``.npy`` appended), atomically; returns ``path``."""
    import numpy as np

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(array), allow_pickle=False)
    return Path(path)


def save_figure(path: str | os.PathLike, fig, dpi: int | float = 100, **savefig_kwargs) -> Path:
    """``fig.savefig`` to ``path`` atomically (format from the suffix, PNG when none); returns ``path``.

    The figure is not closed: the caller owns it (``plt.close(fig)``).
    """
    path = Path(path)
    savefig_kwargs.setdefault("format", path.suffix.lstrip(".").lower() or "png")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, **savefig_kwargs)
    return path


def torch_save(path: str | os.PathLike, obj: Any) -> Path:
    """``torch.save(obj)`` to ``path`` atomically (no half-written checkpoint after a kill); returns ``path``."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


# --------------------------------------------------------------------------------------------- directories


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yields a temporary directory beside ``path``; on success it replaces ``path``, on error it is removed.

    An existing ``path`` is swapped out only at the end (moved aside, the new directory renamed in, the old one
    deleted), so a failed or killed writer leaves the previous content in place. Temporary directories of killed
    processes (by the pid in their name) are removed first.

    Args:
        path: the final directory.
        overwrite (False): replace an existing ``path``; otherwise an existing one raises ``FileExistsError``.
    """
    path = Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True (--overwrite) to replace it")
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, DIR_MODE)
        if path.exists():
            # os.replace cannot replace a non-empty directory: move the old one aside first, then drop it
            old = Path(tempfile.mkdtemp(prefix=_temp_prefix(path) + "old-", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def clean_stale_temps(path: str | os.PathLike) -> None:
    """Removes temporary files and directories of ``path`` left by processes that no longer run."""
    path = Path(path).absolute()
    prefix = _temp_mark(path)
    if not path.parent.is_dir():
        return
    for entry in path.parent.iterdir():
        if not entry.name.startswith(prefix):
            continue
        pid = entry.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

"""Safe extraction of dataset archives (the datasets ship as zip files; some users hand sardata the zip itself).

``zipfile.extractall`` already strips ``..`` components, but it silently rewrites the member's path, so a hostile or
broken archive lands somewhere the user did not expect. Here every member is checked first and the extraction is
refused, naming the offending member, when one would escape the target (``../``, absolute paths, symlinks).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path


class UnsafeArchiveError(ValueError):
    """An archive member would be written outside the extraction directory."""


def _check_member(info: zipfile.ZipInfo, target: Path, archive: Path) -> None:
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: member {info.filename!r} has an absolute path")
    if (target / name).resolve() != target and not (target / name).resolve().is_relative_to(target):
        raise UnsafeArchiveError(f"{archive}: member {info.filename!r} escapes the extraction directory")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise UnsafeArchiveError(f"{archive}: member {info.filename!r} is a symbolic link")


def safe_extract(archive: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Extracts a zip archive into ``target`` after checking every member; atomic (temp dir, then rename).

    Raises:
        UnsafeArchiveError: a member escapes ``target`` (nothing is extracted).
        zipfile.BadZipFile: the archive is corrupt.
    """
    archive = Path(archive)
    target = Path(target).resolve()
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        for info in members:
            _check_member(info, target, archive)
        if target.exists():
            raise FileExistsError(f"{target} already exists; remove it or choose another directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-"))
        try:
            zf.extractall(tmp, members)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target

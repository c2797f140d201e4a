"""Dataset archives (zip, tar, tar.gz/bz2/xz): verified, extracted safely once into a cache, then loaded.

The datasets ship as archives (Official-SSDD and SAR-AIRcraft-1.0 as one zip, OpenSARShip as one zip per scene);
every loader accepts the archive itself, or a folder holding it, in place of the extracted layout
(:meth:`sardata.datasets._base.SarDatasetImporter.setup` follows TorchGeo's order: extracted → archive → error).

Verified means: the archive opens and every zip member's CRC matches (``ZipFile.testzip``; a tar is read to its
end), and no member would be written outside the extraction directory — ``../`` components, absolute paths,
links and device files are refused, naming the member, before anything is written. ``zipfile.extractall`` would
silently rewrite such a path instead. The cache directory is named by the SHA-256 of the archives' bytes, so the
same archive is extracted once and a changed one is extracted afresh; extraction goes to a temporary directory
renamed into place, so an interrupted one leaves nothing that looks complete.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tarfile
import zipfile
from pathlib import Path

from sardata import _io

#: File name endings recognised as archives.
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


class UnsafeArchiveError(ValueError):
    """An archive member would be written outside the extraction directory (or is a link / device file)."""


class BadArchiveError(ValueError):
    """An archive is corrupt, truncated or not an archive; the message names the file."""


def is_archive(path: str | os.PathLike) -> bool:
    """True for a file whose name ends in one of :data:`ARCHIVE_SUFFIXES`."""
    return Path(path).is_file() and Path(path).name.lower().endswith(ARCHIVE_SUFFIXES)


def find_archives(folder: str | os.PathLike) -> list[Path]:
    """The archives directly inside ``folder`` (not hidden), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and is_archive(p))


def archive_stem(path: str | os.PathLike) -> str:
    """``Official-SSDD.tar.gz`` → ``Official-SSDD``."""
    name = Path(path).name
    for suffix in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def default_archive_cache() -> Path:
    """``archives`` in sardata's cache (``$SARDATA_CACHE``, default ``~/.cache/sardata``)."""
    from sardata.sarimage import default_cache_dir

    return default_cache_dir() / "archives"


def safe_extract(archive: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Extracts one zip or tar archive into the new directory ``target`` after verifying it; atomic.

    Raises:
        UnsafeArchiveError: a member escapes ``target`` or is a link (nothing is extracted).
        BadArchiveError: the archive is corrupt or not a zip/tar.
        FileExistsError: ``target`` exists.
    """
    target = Path(target).resolve()
    with _io.atomic_dir(target) as tmp:  # FileExistsError when target exists
        _extract(Path(archive), tmp)
    return target


def extract_cached(archives: list[str | os.PathLike], cache_dir: str | os.PathLike | None = None) -> Path:
    """Extracts ``archives`` once into a cache directory named by their content hash; returns that directory.

    One archive is extracted into the directory itself; several (OpenSARShip's per-scene zips) each into a
    sub-folder named after the archive. A second call with the same bytes returns the same directory untouched.

    Args:
        archives: archive files.
        cache_dir (None): where extracted archives live (default :func:`default_archive_cache`).

    Raises:
        UnsafeArchiveError, BadArchiveError: as :func:`safe_extract`; nothing is left in the cache.
    """
    archives = [Path(a).resolve() for a in archives]
    if not archives:
        raise ValueError("no archive given")
    digest = hashlib.sha256()
    for path in archives:
        digest.update(_sha256(path).encode())
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", archive_stem(archives[0])).strip("._") or "archive"
    target = Path(cache_dir or default_archive_cache()).resolve() / f"{name}-{digest.hexdigest()[:16]}"
    if not target.is_dir():
        _extract_atomically(archives, target, nest=len(archives) > 1)
    return target


# --------------------------------------------------------------------------------------------- helpers


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as e:
        raise BadArchiveError(f"{path}: cannot read ({e.strerror})") from e
    return digest.hexdigest()


def _extract_atomically(archives: list[Path], target: Path, nest: bool) -> None:
    try:
        with _io.atomic_dir(target) as tmp:
            for archive in archives:
                out = tmp / archive_stem(archive) if nest else tmp
                out.mkdir(exist_ok=True)
                _extract(archive, out)
    except FileExistsError:
        if not target.is_dir():  # not "another process finished the same extraction first"
            raise


def _extract(archive: Path, out: Path) -> None:
    if zipfile.is_zipfile(archive):
        try:
            with zipfile.ZipFile(archive) as zf:
                members = zf.infolist()
                for info in members:
                    _check_name(info.filename, out, archive)
                    if stat.S_ISLNK(info.external_attr >> 16):
                        raise UnsafeArchiveError(f"{archive}: member {info.filename!r} is a symbolic link")
                bad = zf.testzip()
                if bad is not None:
                    raise BadArchiveError(f"{archive}: member {bad!r} is corrupt (CRC mismatch)")
                zf.extractall(out, members)
        except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as e:
            raise BadArchiveError(f"{archive}: corrupt zip archive ({e})") from e
        return
    try:
        tf = tarfile.open(archive)
        members = tf.getmembers()  # reads the whole archive: a truncated one fails here
    except (tarfile.TarError, EOFError) as e:
        raise BadArchiveError(f"{archive}: not a readable zip or tar archive ({e})") from e
    with tf:
        for member in members:
            _check_name(member.name, out, archive)
            if not (member.isfile() or member.isdir()):
                kind = "link" if (member.issym() or member.islnk()) else "special file"
                raise UnsafeArchiveError(f"{archive}: member {member.name!r} is a {kind}")
        try:
            tf.extractall(out, members, filter="data")
        except (tarfile.TarError, EOFError) as e:
            raise BadArchiveError(f"{archive}: corrupt tar archive ({e})") from e


def _check_name(name: str, out: Path, archive: Path) -> None:
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or (len(normalised) > 1 and normalised[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path")
    resolved = (out / normalised).resolve()
    if resolved != out.resolve() and not resolved.is_relative_to(out.resolve()):
        raise UnsafeArchiveError(f"{archive}: member {name!r} escapes the extraction directory")

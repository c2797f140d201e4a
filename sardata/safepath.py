"""Paths that stay where they belong: joins that cannot escape a root, and names safe as one path component.

Paths read from annotation files, manifests or archives go through :func:`safe_join`; names chosen by users
(dataset names, brain keys, run keys) become directory or file names through :func:`safe_component`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path


class UnsafePathError(ValueError):
    """A path (e.g. from an annotation file) escapes the root it must stay in."""


def safe_join(root: str | os.PathLike, *parts: str | os.PathLike) -> Path:
    """Joins ``parts`` to ``root`` and resolves the result; refuses any result outside ``root``.

    Windows separators are accepted (FUSAR-Ship's meta.csv writes ``Cargo\\BulkCarrier``). Symlinks are followed
    before the check, so a link pointing out of ``root`` is refused too.

    Args:
        root: the directory the result must stay in.
        *parts: relative path pieces.

    Returns:
        the resolved path.

    Raises:
        UnsafePathError (a ``ValueError``): a part is absolute or the result escapes ``root``.
    """
    root = Path(root).resolve()
    rels = [str(part).replace("\\", "/") for part in parts]
    joined = "/".join(rels)
    candidate = root.joinpath(*rels).resolve()
    if any(os.path.isabs(rel) for rel in rels) or not candidate.is_relative_to(root):
        raise UnsafePathError(f"path {joined!r} escapes the root {root}")
    return candidate


def safe_component(name: str) -> str:
    """``name`` as a single safe path component: runs of characters outside ``[A-Za-z0-9._-]`` become ``_``,
    leading/trailing dots and underscores are dropped (so never ``..`` or a hidden name), ``_`` if nothing is left."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._") or "_"

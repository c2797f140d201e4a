"""Helpers that corrupt a copy of a VOC-style dataset, for the loaders' bad-input tests."""

from __future__ import annotations

import re
from pathlib import Path


def truncate(path: Path, keep: float = 0.3) -> None:
    """Cuts a file to ``keep`` of its bytes (a truncated download)."""
    data = path.read_bytes()
    path.write_bytes(data[: max(1, int(len(data) * keep))])


def break_xml(path: Path) -> None:
    """Makes an XML file malformed (unclosed root)."""
    path.write_bytes(path.read_bytes().replace(b"</annotation>", b""))


def rename_first_class(path: Path, new_name: str) -> None:
    """Renames the class of the first object."""
    text = path.read_text()
    path.write_text(re.sub(r"<name>[^<]*</name>", f"<name>{new_name}</name>", text, count=1))


def push_first_box_outside(path: Path) -> None:
    """Moves the first object's ``xmax`` past the image width."""
    text = path.read_text()
    width = int(re.search(r"<width>(\d+)</width>", text).group(1))
    path.write_text(re.sub(r"<xmax>\d+</xmax>", f"<xmax>{width + 40}</xmax>", text, count=1))


def object_count(path: Path) -> int:
    return path.read_text().count("<object>")

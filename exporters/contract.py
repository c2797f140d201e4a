"""The export contract: what an export directory promises to the code that reads it (trainers, predictions-back).

* **Replicas.** A sample exported ``k`` times (a balance run's count) is written once as ``<stem><ext>`` and then as
  hardlinks ``<stem>__rep1<ext>`` … ``<stem>__rep{k-1}<ext>``: :func:`replica_name` writes the rule,
  :func:`parse_replica` reads it back. No other module spells ``__rep``.
* **Manifest.** ``manifest.json`` at the export root records how the export was made (dataset, view, options,
  counts) and a sha256 of every file (:func:`write_manifest`, :func:`read_manifest`, :func:`verify_manifest`).
* **Sample ids.** ``manifest["sample_ids"]`` maps the path of every file an exporter wrote for a sample (relative
  to the export root, POSIX; replicas, masks and optical images included) to that sample's FiftyOne id, so anything
  computed per file (detections, classes, Grad-CAM maps, masks) goes back to the right sample:
  :class:`SampleIds` records them while exporting, :class:`SampleIdMap` looks them up. A Hugging Face export
  records ``"<split>/<row>"`` keys (its rows also carry a ``sample_id`` column).

This module depends only on :mod:`sardata._io` (the lowest floor), so exporters, trainers and
:mod:`sardata.predictions` all read the contract from the same place.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Iterable

from sardata._io import write_json

MANIFEST = "manifest.json"
#: Version of this contract, recorded in every manifest (2: every file's sample id is recorded).
CONTRACT_VERSION = 2
#: Separator of the replica index in a file name: ``<stem>__rep<k><ext>``.
REPLICA_MARK = "__rep"
_REPLICA = re.compile(r"^(?P<stem>.+)__rep(?P<k>[1-9][0-9]*)(?P<ext>\.[^./]*)?$")


# --------------------------------------------------------------------------------------------- replicas


def replica_name(stem: str, k: int, ext: str = "") -> str:
    """File name of replica ``k`` of ``<stem><ext>``: the name itself for ``k = 0``, ``<stem>__rep<k><ext>`` after.

    ``ext`` includes its dot (``".png"``) or is empty (a stem).
    """
    if k < 0:
        raise ValueError(f"replica index {k} must be >= 0")
    return f"{stem}{ext}" if k == 0 else f"{stem}{REPLICA_MARK}{k}{ext}"


def parse_replica(name: str | os.PathLike) -> tuple[str, int]:
    """``(original name, k)`` of a file name or stem written by :func:`replica_name`.

    ``"a__rep2.png"`` → ``("a.png", 2)``, ``"a__rep2"`` → ``("a", 2)``, ``"a.png"`` → ``("a.png", 0)``. A
    directory part is dropped (pass ``Path(p).name``-style names or paths alike).
    """
    base = Path(name).name
    match = _REPLICA.match(base)
    if match is None:
        return base, 0
    return match["stem"] + (match["ext"] or ""), int(match["k"])


def original_path(path: str | os.PathLike) -> str:
    """``path`` with its file name replaced by the original's (``train/x/a__rep1.png`` → ``train/x/a.png``), POSIX."""
    path = Path(path)
    return (path.parent / parse_replica(path.name)[0]).as_posix()


def is_replica(name: str | os.PathLike) -> bool:
    """True for ``<stem>__rep<k>…`` with ``k >= 1``."""
    return parse_replica(name)[1] > 0


# --------------------------------------------------------------------------------------------- manifest


def sha256_tree(root: str | os.PathLike) -> dict[str, str]:
    """sha256 of every file under ``root`` but the manifest (relative POSIX paths), hashing each inode once
    (hardlinked replicas share one)."""
    root = Path(root)
    by_inode: dict = {}
    sums = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.relative_to(root).as_posix() == MANIFEST:
            continue
        st = path.stat()
        key = (st.st_dev, st.st_ino)
        if key not in by_inode:
            by_inode[key] = _sha256(path)
        sums[path.relative_to(root).as_posix()] = by_inode[key]
    return sums


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(root: str | os.PathLike, manifest: dict) -> dict:
    """Writes ``<root>/manifest.json``: ``manifest`` plus ``checksums`` of every file now under ``root``.

    Call it last, once every file of the export is written (inside the temporary export directory, which is renamed
    into place as a whole). ``manifest`` must hold ``sample_ids`` (``{relative path: sample id}``).
    """
    root = Path(root)
    if not isinstance(manifest.get("sample_ids"), dict):
        raise ValueError("an export manifest must record sample_ids ({relative path: FiftyOne sample id})")
    unknown = [p for p in manifest["sample_ids"] if not (root / p).is_file() and not _is_row_key(p)]
    if unknown:
        raise ValueError(f"sample_ids name files that were not written under {root}: {unknown[:3]}")
    full = {**manifest, "contract": CONTRACT_VERSION, "sample_ids": dict(sorted(manifest["sample_ids"].items())), "checksums": sha256_tree(root)}
    write_json(root / MANIFEST, full, indent=1)
    return full


def _is_row_key(key: str) -> bool:
    split, _, row = key.rpartition("/")
    return bool(split) and row.isdigit()


def read_manifest(export_dir: str | os.PathLike) -> dict | None:
    """The manifest of an export directory, or None when there is none (or it is not readable JSON)."""
    try:
        with open(Path(export_dir) / MANIFEST) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def load_manifest(export_dir: str | os.PathLike) -> dict:
    """The manifest of an export directory; ``ValueError`` naming the file when it is missing or unreadable."""
    manifest = read_manifest(export_dir)
    if manifest is None:
        raise ValueError(f"{Path(export_dir) / MANIFEST}: no readable export manifest (is {export_dir} a sardata "
                         "export?)")
    return manifest


def verify_manifest(export_dir: str | os.PathLike) -> dict[str, str]:
    """Files that differ from the manifest's checksums: ``{path: "missing" | "changed" | "unlisted"}`` (empty when
    the export is intact)."""
    export_dir = Path(export_dir)
    expected = load_manifest(export_dir).get("checksums", {})
    actual = sha256_tree(export_dir)
    problems = {p: "missing" for p in expected if p not in actual}
    problems.update({p: "changed" for p in expected if p in actual and actual[p] != expected[p]})
    problems.update({p: "unlisted" for p in actual if p not in expected})
    return dict(sorted(problems.items()))


# --------------------------------------------------------------------------------------------- sample ids


class SampleIds:
    """Records the sample id of every file an exporter writes (paths relative to the export root)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self._ids: dict[str, str] = {}

    def add(self, path: str | os.PathLike, sample_id: str) -> None:
        """Records one file (absolute, or relative to the root). A file claimed by two samples is an error."""
        path = Path(path)
        rel = (path.relative_to(self.root) if path.is_absolute() else path).as_posix()
        previous = self._ids.setdefault(rel, str(sample_id))
        if previous != str(sample_id):
            raise ValueError(f"export file {rel} written for samples {previous} and {sample_id}")

    def add_files(self, directory: str | os.PathLike, names: Iterable[str], sample_id: str) -> None:
        """Records ``directory/<name>`` for each name (e.g. a file and its replicas)."""
        for name in names:
            self.add(Path(directory) / name, sample_id)

    def add_row(self, split: str, row: int, sample_id: str) -> None:
        """Records row ``row`` of split ``split`` of a table export (Hugging Face ``datasets``)."""
        self.add(f"{split}/{int(row)}", sample_id)

    def to_dict(self) -> dict[str, str]:
        return dict(sorted(self._ids.items()))

    def __len__(self) -> int:
        return len(self._ids)


class SampleIdMap:
    """Looks up the FiftyOne sample id of an exported file from the export's manifest.

    Args:
        export_dir: the export root (holding ``manifest.json``).

    Raises:
        ValueError: no manifest, or a manifest without ``sample_ids`` (an export made before they were recorded).
    """

    def __init__(self, export_dir: str | os.PathLike):
        self.root = Path(export_dir)
        manifest = load_manifest(self.root)
        ids = manifest.get("sample_ids")
        if not isinstance(ids, dict) or not ids:
            raise ValueError(f"{self.root / MANIFEST}: records no sample_ids; export again with this sardata")
        self.ids: dict[str, str] = ids
        self.dataset: str | None = manifest.get("dataset")

    def _relative(self, path: str | os.PathLike) -> str:
        path = Path(path)
        if path.is_absolute():
            try:
                path = path.resolve().relative_to(self.root.resolve())
            except ValueError:
                raise ValueError(f"{path} is not inside the export {self.root}") from None
        return path.as_posix()

    def get(self, path: str | os.PathLike, default=None) -> str | None:
        """The sample id of ``path`` (absolute, or relative to the export root); a replica not listed on its own
        resolves through its original (:func:`original_path`)."""
        rel = self._relative(path)
        if rel in self.ids:
            return self.ids[rel]
        return self.ids.get(original_path(rel), default)

    def __getitem__(self, path: str | os.PathLike) -> str:
        sample_id = self.get(path)
        if sample_id is None:
            raise KeyError(f"{path}: not a file of the export {self.root} (no sample id in its manifest)")
        return sample_id

    def __len__(self) -> int:
        return len(self.ids)


__all__ = [
    "CONTRACT_VERSION",
    "MANIFEST",
    "REPLICA_MARK",
    "SampleIdMap",
    "SampleIds",
    "is_replica",
    "load_manifest",
    "original_path",
    "parse_replica",
    "read_manifest",
    "replica_name",
    "sha256_tree",
    "verify_manifest",
    "write_manifest",
]

"""Every loader reads the dataset's archive as it reads the extracted folder (extracted → archive → error).

Per loader family, a synthetic set is written, packed the way the dataset ships (one zip with a top folder, a
tarball, a folder holding the archive, OpenSARShip's one zip per scene), and both are imported: the samples must be
the same, with paths taken relative to each root. The display PNGs live in a cache keyed by the source path, so
a ``filepath`` there is compared by existence only.
"""

import os
import re
import tarfile
import zipfile
from pathlib import Path

import pytest

from sardata import registry
from sardata.archive import UnsafeArchiveError
from sardata.synth import synthesize

SIZES = {"ssdd": 4, "fusar": 6, "opensarship": None, "sar_aircraft": 3, "whu_opt_sar": 1}


def _zip_dir(folder: Path, path: Path, top: str | None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for file in sorted(folder.rglob("*")):
            rel = file.relative_to(folder)
            zf.write(file, f"{top}/{rel}" if top else str(rel))
    return path


def _tar_dir(folder: Path, path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        tf.add(folder, arcname=folder.name)
    return path


def _pack(key: str, root: Path, out: Path) -> Path:
    """The archive form the test hands the loader (a file, or a folder holding archives)."""
    out.mkdir()
    if key == "ssdd":  # Official-SSDD.zip with its top folder: the archive file itself is the root
        return _zip_dir(root, out / f"{root.name}.zip", root.name)
    if key in ("fusar", "whu_opt_sar"):  # a tarball
        return _tar_dir(root, out / f"{root.name}.tar.gz")
    if key == "sar_aircraft":  # a folder holding the zip
        _zip_dir(root, out / f"{root.name}.zip", root.name)
        return out
    scenes = [p.parent for p in root.rglob("Ship.xml")]  # OpenSARShip: one zip per scene, v2.0 style (no top folder)
    assert len(scenes) >= 2
    for scene in scenes:
        _zip_dir(scene, out / f"{scene.name}.zip", None)
    return out


def _samples(importer, display_dir: Path) -> tuple[list, list]:
    with importer:
        root = str(getattr(importer, "root", None) or importer.dataset_dir)  # FUSAR: the folder holding meta.csv
        samples = [s.to_dict() for s in importer]
        problems = [p.to_dict() for p in importer.problems]

    def norm(value):
        if isinstance(value, dict):
            return {k: norm(v) for k, v in value.items() if k != "_id"}
        if isinstance(value, list):
            return [norm(v) for v in value]
        if isinstance(value, str) and value.startswith(root):
            return "<root>" + value[len(root):]
        if isinstance(value, str) and value.startswith(str(display_dir)):  # named by a hash of the source path
            return "<display>"
        if isinstance(value, str) and value.startswith(os.environ["SARDATA_CACHE"]):  # WHU patches: the same
            return re.sub(r"_[0-9a-f]{12}/", "_<hash>/", value)
        return value

    assert all(Path(s["filepath"]).is_file() for s in samples)
    return norm(samples), norm(problems)


@pytest.mark.parametrize("key", sorted(SIZES))
def test_loading_the_archive_gives_the_samples_of_the_folder(key, tmp_path):
    root = synthesize(key, tmp_path / "synth", n=SIZES[key], seed=1)
    packed = _pack(key, root, tmp_path / "packed")
    importer_cls = registry.get(key).importer_cls()
    display = tmp_path / "display"
    from_folder = _samples(importer_cls(str(root), display_dir=display, num_workers=1), display)
    importer = importer_cls(str(packed), display_dir=display, num_workers=1)
    from_archive = _samples(importer, display)
    assert from_folder[0] and from_archive == from_folder
    assert importer.archives and all(Path(a).is_file() for a in importer.archives)
    cache = Path(os.environ["SARDATA_CACHE"]) / "archives"
    assert Path(importer.dataset_dir).is_relative_to(cache)
    assert importer.get_dataset_info()["sardata_archives"] == importer.archives
    before = sorted(cache.iterdir())
    again = importer_cls(str(packed), display_dir=display, num_workers=1)
    again.setup()
    assert again.dataset_dir == importer.dataset_dir and sorted(cache.iterdir()) == before  # extracted once


def test_a_malicious_archive_is_refused_and_writes_nothing(tmp_path):
    from sardata.datasets.ssdd import SSDDImporter

    root = synthesize("ssdd", tmp_path / "synth", n=2, seed=0)
    evil = _zip_dir(root, tmp_path / "Official-SSDD.zip", root.name)
    with zipfile.ZipFile(evil, "a") as zf:
        zf.writestr("Official-SSDD/../../escaped.txt", "pwned")
    cache = Path(os.environ["SARDATA_CACHE"]) / "archives"
    before = sorted(cache.iterdir()) if cache.is_dir() else []
    with pytest.raises(UnsafeArchiveError, match=r"Official-SSDD\.zip.*escaped\.txt"):
        SSDDImporter(str(evil)).setup()
    assert (sorted(cache.iterdir()) if cache.is_dir() else []) == before  # no partial extraction left behind
    assert not list(tmp_path.rglob("escaped.txt")) and not (cache.parent / "escaped.txt").exists()

    from typer.testing import CliRunner

    from sardata.cli import app

    result = CliRunner().invoke(app, ["ingest", "ssdd", str(evil), "--name", "never-created"])
    assert result.exit_code == 1 and "escaped.txt" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_folder_without_layout_or_archive_is_dataset_not_found(tmp_path):
    from sardata.datasets._base import DatasetNotFoundError
    from sardata.datasets.ssdd import SSDDImporter

    (tmp_path / "notes.txt").write_text("no dataset here")
    with pytest.raises(DatasetNotFoundError, match="zip/tar archive"):
        SSDDImporter(str(tmp_path)).setup()
    with pytest.raises(DatasetNotFoundError, match="notes.txt"):
        SSDDImporter(str(tmp_path / "notes.txt")).setup()

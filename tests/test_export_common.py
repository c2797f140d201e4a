"""Atomic export directories, stale temporary directories, hardlink fallback (no FiftyOne needed)."""

import os
import subprocess
import sys

import pytest

from exporters._common import atomic_export_dir, place_replicas
from sardata._io import DIR_MODE, TMP_MARK


def test_failed_overwrite_keeps_the_previous_export(tmp_path):
    out = tmp_path / "exp"
    with atomic_export_dir(out) as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_export_dir(out, overwrite=True) as tmp:
            (tmp / "a.txt").write_text("new")
            raise RuntimeError("killed")
    assert (out / "a.txt").read_text() == "old"
    with atomic_export_dir(out, overwrite=True) as tmp:
        (tmp / "b.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]
    assert out.stat().st_mode & 0o777 == DIR_MODE  # not mkdtemp's 0700


def test_temp_dir_of_a_killed_process_is_removed_next_time(tmp_path):
    out = tmp_path / "exp"
    # a process that dies (SIGKILL) inside the export: its temporary directory stays, out_dir never appears
    code = (
        "import os, signal, sys; sys.path.insert(0, sys.argv[2]);"
        "from exporters._common import atomic_export_dir\n"
        "with atomic_export_dir(sys.argv[1]) as tmp:\n"
        "    (tmp / 'half.txt').write_text('x'); os.kill(os.getpid(), signal.SIGKILL)"
    )
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", code, str(out), repo])
    assert proc.returncode == -9
    assert not out.exists()
    leftovers = [p for p in tmp_path.iterdir() if TMP_MARK in p.name]
    assert len(leftovers) == 1
    with atomic_export_dir(out) as tmp:
        (tmp / "done.txt").write_text("ok")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]


def test_replicas_are_hardlinks_or_copies_when_links_fail(tmp_path, monkeypatch):
    src = tmp_path / "img.png"
    src.write_bytes(b"pixels")
    names = place_replicas(src, tmp_path / "a", "img", ".png", 3)
    assert names == ["img.png", "img__rep1.png", "img__rep2.png"]
    assert len({(tmp_path / "a" / n).stat().st_ino for n in names}) == 1
    assert (tmp_path / "a" / "img.png").stat().st_ino != src.stat().st_ino  # the first is a real copy

    def no_links(*_):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    names = place_replicas(src, tmp_path / "b", "img", ".png", 2)
    assert [(tmp_path / "b" / n).read_bytes() for n in names] == [b"pixels", b"pixels"]
    assert (tmp_path / "b" / names[1]).stat().st_ino != (tmp_path / "b" / names[0]).stat().st_ino

"""Atomic writes (sardata._io): the target appears whole or not at all, with one file/directory mode policy."""

import json
import os
import stat

import numpy as np
import pytest

from sardata import _io


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_path_renames_into_place_with_file_mode(tmp_path):
    target = tmp_path / "sub" / "a.png"  # parent is created
    with _io.atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        assert tmp.suffix == ".png" and tmp.name.startswith(".a.png" + _io.TMP_MARK)
        tmp.write_bytes(b"data")
        assert not target.exists()  # nothing under the final name until the block succeeds
    assert target.read_bytes() == b"data"
    assert _mode(target) == 0o644  # not mkstemp's 0600
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.png"]


def test_error_inside_the_block_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    for exc in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(exc)):
            with _io.atomic_path(target) as tmp:
                tmp.write_text("half")
                raise exc
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_long_names_get_a_temporary_name_too(tmp_path):
    target = tmp_path / ("x" * 250 + ".png")  # a temporary name must stay within the 255-byte limit
    assert _io.write_bytes(target, b"ok").read_bytes() == b"ok"


def test_failing_serialiser_leaves_nothing(tmp_path):
    with pytest.raises(TypeError):
        _io.write_json(tmp_path / "x.json", {"a": object()})
    assert list(tmp_path.iterdir()) == []


def test_helpers_write_what_they_are_given(tmp_path):
    assert _io.write_text(tmp_path / "t.csv", "a,b\r\nü,2\r\n").read_bytes() == "a,b\r\nü,2\r\n".encode()
    assert _io.write_bytes(tmp_path / "b.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    assert json.loads(_io.write_json(tmp_path / "j.json", {"k": [1, 2]}).read_text()) == {"k": [1, 2]}
    assert (tmp_path / "j.json").read_text() == json.dumps({"k": [1, 2]}, indent=2)
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    path = _io.save_npy(tmp_path / "arr.bin", arr)  # exactly this name, no ".npy" appended
    assert path.name == "arr.bin" and np.array_equal(np.load(path), arr)
    for p in tmp_path.iterdir():
        assert _mode(p) == 0o644, p


def test_save_figure_and_torch_save(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    png = _io.save_figure(tmp_path / "f.png", fig, dpi=50)
    plt.close(fig)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ckpt = _io.torch_save(tmp_path / "m.pth", {"w": torch.ones(3)})
    assert torch.equal(torch.load(ckpt, weights_only=True)["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png", "m.pth"]


def test_atomic_dir_swaps_whole_directories(tmp_path):
    out = tmp_path / "root"
    with _io.atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("old")
    assert _mode(out) == 0o755  # not mkdtemp's 0700
    with pytest.raises(FileExistsError, match="root"):
        with _io.atomic_dir(out):
            pass
    with pytest.raises(RuntimeError):
        with _io.atomic_dir(out, overwrite=True) as tmp:
            (tmp / "a.txt").write_text("new")
            raise RuntimeError("killed")
    assert (out / "a.txt").read_text() == "old"
    with _io.atomic_dir(out, overwrite=True) as tmp:
        (tmp / "b.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]


def test_stale_temps_of_dead_processes_are_removed(tmp_path):
    out = tmp_path / "root"
    dead = tmp_path / f".root{_io.TMP_MARK}999999999-abc"  # no such pid
    dead.mkdir()
    alive = tmp_path / f".root{_io.TMP_MARK}{os.getpid()}-abc"
    alive.mkdir()
    _io.clean_stale_temps(out)
    assert not dead.exists() and alive.exists()

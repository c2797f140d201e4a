import zipfile

import pytest

from sardata.archive import UnsafeArchiveError, safe_extract


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_extracts_a_normal_archive(tmp_path):
    archive = _zip(tmp_path / "ok.zip", {"ssdd/a.txt": "a", "ssdd/sub/b.txt": "b"})
    out = safe_extract(archive, tmp_path / "out")
    assert (out / "ssdd" / "a.txt").read_text() == "a"
    assert (out / "ssdd" / "sub" / "b.txt").read_text() == "b"


@pytest.mark.parametrize("bad", ["../evil.txt", "ssdd/../../evil.txt", "/abs/evil.txt"])
def test_refuses_members_escaping_the_target(tmp_path, bad):
    archive = _zip(tmp_path / "bad.zip", {"ssdd/fine.txt": "x", bad: "evil"})
    with pytest.raises(UnsafeArchiveError, match="evil.txt"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "evil.txt").exists()
    assert not list(tmp_path.glob(".out.partial-*"))


def test_refuses_symlink_members(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("ssdd/link")
        info.external_attr = (0o120777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(UnsafeArchiveError, match="symbolic link"):
        safe_extract(archive, tmp_path / "out")


def test_refuses_to_extract_over_an_existing_directory(tmp_path):
    archive = _zip(tmp_path / "ok.zip", {"a.txt": "a"})
    (tmp_path / "out").mkdir()
    with pytest.raises(FileExistsError):
        safe_extract(archive, tmp_path / "out")

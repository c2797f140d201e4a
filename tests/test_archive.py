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
    assert not list(tmp_path.glob(".out*sardata-tmp*"))


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


# ------------------------------------------------------------------- tar archives and the extraction cache

import io  # noqa: E402
import tarfile  # noqa: E402

from sardata.archive import BadArchiveError, extract_cached  # noqa: E402


def _tar(path, members, links=()):
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data.encode()))
        for name, to in links:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, to
            tf.addfile(info)
    return path


def test_extracts_a_tar_archive(tmp_path):
    out = safe_extract(_tar(tmp_path / "ok.tar.gz", {"d/a.txt": "a"}), tmp_path / "out")
    assert (out / "d" / "a.txt").read_text() == "a"


@pytest.mark.parametrize("bad", ["../evil.txt", "d/../../evil.txt", "/abs/evil.txt"])
def test_refuses_tar_members_escaping_the_target(tmp_path, bad):
    with pytest.raises(UnsafeArchiveError, match="evil.txt"):
        safe_extract(_tar(tmp_path / "bad.tgz", {"d/fine.txt": "x", bad: "evil"}), tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.txt").exists()


def test_refuses_tar_links(tmp_path):
    with pytest.raises(UnsafeArchiveError, match="'d/passwd' is a link"):
        safe_extract(_tar(tmp_path / "link.tar.gz", {"d/a.txt": "a"}, links=[("d/passwd", "/etc/passwd")]),
                     tmp_path / "out")


def test_corrupt_archives_are_a_clear_error(tmp_path):
    zipped = _zip(tmp_path / "crc.zip", {"d/a.txt": "a" * 1000})
    data = bytearray(zipped.read_bytes())
    data[data.index(b"aaaa")] ^= 0xFF  # flip a byte of the (stored) member: the CRC no longer matches
    zipped.write_bytes(bytes(data))
    with pytest.raises(BadArchiveError, match=r"crc.zip.*d/a.txt"):
        safe_extract(zipped, tmp_path / "a")
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"not an archive at all" * 40)
    with pytest.raises(BadArchiveError, match="garbage.tar"):
        safe_extract(garbage, tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_extract_cached_extracts_once_and_again_when_the_bytes_change(tmp_path):
    archive = _zip(tmp_path / "set.zip", {"d/a.txt": "a"})
    first = extract_cached([archive], tmp_path / "cache")
    (first / "d" / "marker").write_text("kept")  # a re-extraction would drop it
    assert extract_cached([archive], tmp_path / "cache") == first and (first / "d" / "marker").exists()
    _zip(archive, {"d/a.txt": "changed"})
    second = extract_cached([archive], tmp_path / "cache")
    assert second != first and (second / "d" / "a.txt").read_text() == "changed"
    both = extract_cached([archive, _zip(tmp_path / "other.zip", {"b.txt": "b"})], tmp_path / "cache")
    assert (both / "set" / "d" / "a.txt").is_file() and (both / "other" / "b.txt").is_file()
    assert not list((tmp_path / "cache").glob(".*sardata-tmp*"))

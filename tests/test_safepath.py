"""safe_join refuses paths out of the root; safe_component makes one harmless path component."""

import pytest

from sardata.safepath import UnsafePathError, safe_component, safe_join


def test_safe_join_accepts_paths_inside_the_root(tmp_path):
    root = tmp_path / "root"
    (root / "inside").mkdir(parents=True)
    assert safe_join(root, "inside/../inside/a.jpg") == (root / "inside" / "a.jpg").resolve()
    assert safe_join(root, "inside", "b", "c.png") == (root / "inside" / "b" / "c.png").resolve()
    assert safe_join(root, "Cargo\\Bulk") == (root / "Cargo" / "Bulk").resolve()


@pytest.mark.parametrize("parts", [("../secret",), ("inside", "..", "..", "x"), ("/etc/passwd",), ("a", "/etc"),
                                   ("..\\secret",), ("link/key.pem",)])
def test_safe_join_rejects_escaping_paths(tmp_path, parts):
    root = tmp_path / "root"
    (root / "inside").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    (root / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(ValueError, match="escapes"):  # UnsafePathError is a ValueError
        safe_join(root, *parts)
    assert issubclass(UnsafePathError, ValueError)


@pytest.mark.parametrize("name, expected", [("ssdd", "ssdd"), ("my data/set", "my_data_set"), ("..", "_"),
                                            ("../../etc", "etc"), (".hidden", "hidden"), ("", "_"),
                                            ("a:b*c", "a_b_c")])
def test_safe_component(name, expected):
    assert safe_component(name) == expected

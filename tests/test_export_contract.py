"""The export contract: replica names, manifest checksums, and every exporter recording each file's sample id."""

import json

import pytest

from exporters.contract import (
    MANIFEST,
    SampleIdMap,
    SampleIds,
    is_replica,
    original_path,
    parse_replica,
    read_manifest,
    replica_name,
    verify_manifest,
    write_manifest,
)
from test_views_data import make_classification_dataset, make_detection_dataset, make_segmentation_dataset


@pytest.mark.parametrize("stem,ext", [("a", ".png"), ("chip.v2", ".tif"), ("x__rep", ".npy"), ("p_1", "")])
def test_replica_names_parse_back(stem, ext):
    for k in range(4):
        name = replica_name(stem, k, ext)
        assert parse_replica(name) == (stem + ext, k)
        assert is_replica(name) == (k > 0)
    assert replica_name("a", 2, ".png") == "a__rep2.png" and replica_name("a", 0, ".png") == "a.png"


def test_parse_replica_rejects_look_alikes():
    assert parse_replica("a__rep0.png") == ("a__rep0.png", 0)  # replicas count from 1
    assert parse_replica("a__repx.png") == ("a__repx.png", 0)
    assert parse_replica("a_rep2.png") == ("a_rep2.png", 0)
    assert parse_replica("train/Cargo/a__rep3.tif") == ("a.tif", 3)
    assert original_path("train/Cargo/a__rep3.tif") == "train/Cargo/a.tif"
    with pytest.raises(ValueError):
        replica_name("a", -1)


def test_manifest_checksums_find_changed_missing_and_unlisted_files(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(b"aaa")
    (tmp_path / "images" / "b.png").write_bytes(b"bbb")
    ids = SampleIds(tmp_path)
    ids.add_files(tmp_path / "images", ["a.png", "b.png"], "s1")
    written = write_manifest(tmp_path, {"format": "test", "sample_ids": ids.to_dict()})
    assert read_manifest(tmp_path) == written and MANIFEST not in written["checksums"]
    assert verify_manifest(tmp_path) == {}
    (tmp_path / "images" / "a.png").write_bytes(b"AAA")
    (tmp_path / "images" / "b.png").unlink()
    (tmp_path / "images" / "c.png").write_bytes(b"ccc")
    assert verify_manifest(tmp_path) == {"images/a.png": "changed", "images/b.png": "missing",
                                         "images/c.png": "unlisted"}
    with pytest.raises(ValueError, match="sample_ids"):
        write_manifest(tmp_path, {"format": "test"})
    with pytest.raises(ValueError, match="not written"):
        write_manifest(tmp_path, {"sample_ids": {"images/none.png": "s1"}})


def test_sample_ids_refuse_one_file_for_two_samples_and_look_up_replicas(tmp_path):
    ids = SampleIds(tmp_path)
    ids.add("train/a.png", "s1")
    ids.add(tmp_path / "train" / "a.png", "s1")  # the same claim twice is fine
    with pytest.raises(ValueError, match="s1 and s2"):
        ids.add("train/a.png", "s2")
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "a.png").write_bytes(b"x")
    write_manifest(tmp_path, {"sample_ids": ids.to_dict()})
    lookup = SampleIdMap(tmp_path)
    assert lookup["train/a.png"] == "s1" and lookup[tmp_path / "train" / "a.png"] == "s1"
    assert lookup.get("train/a__rep4.png") == "s1"  # a replica resolves through its original
    assert lookup.get("train/b.png") is None
    with pytest.raises(KeyError, match="b.png"):
        lookup["train/b.png"]
    with pytest.raises(ValueError, match="not inside"):
        lookup.get(tmp_path.parent / "elsewhere.png")
    (tmp_path / MANIFEST).unlink()
    with pytest.raises(ValueError, match="manifest"):
        SampleIdMap(tmp_path)


def _files_of_export(out):
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name != MANIFEST)


def _expected_sample(ds, rel):
    """The sample a file belongs to, from its (original) file stem: every fixture sample has a unique stem."""
    import os

    stem = os.path.splitext(parse_replica(rel)[0])[0]
    matches = [s.id for s in ds if os.path.splitext(os.path.basename(s.filepath))[0] == stem]
    assert len(matches) == 1, rel
    return matches[0]


@pytest.mark.parametrize("fmt", ["coco", "yolo", "imagefolder", "masks"])
def test_every_exported_file_maps_to_its_sample(fmt, tmp_path, fo_dataset_name):
    from exporters import export_view
    from sardata.views.balance import balance

    if fmt == "masks":
        ds = make_segmentation_dataset(tmp_path / "src", fo_dataset_name, n=4)
        balance(ds, by="tile_id", run_key="rep")  # tile1 (one patch) is replicated to match tile0 (two)
        data_dirs = ("images", "optical", "masks")
    elif fmt == "imagefolder":
        ds = make_classification_dataset(tmp_path / "src", fo_dataset_name, ["Cargo", "Tanker", "Cargo", "Cargo"],
                                         splits=["train", "train", "train", "test"])
        balance(ds, by="ground_truth.label", run_key="rep")
        data_dirs = ("train", "test")
    else:
        ds = make_detection_dataset(tmp_path / "src", fo_dataset_name)
        balance(ds, by="scene", run_key="rep")
        data_dirs = ("images", "labels")
    out = tmp_path / fmt
    manifest = export_view(ds, out, fmt, balance_run="rep")
    files = [f for f in _files_of_export(out) if any(part in data_dirs for part in f.split("/"))]
    if fmt == "yolo":
        files = [f for f in files if f.startswith(("images/", "labels/"))]
    assert any(is_replica(f) for f in files), "the fixture must produce replicas"
    assert sorted(manifest["sample_ids"]) == files  # every data file, replicas included, and nothing else
    lookup = SampleIdMap(out)
    for rel in files:
        assert lookup[rel] == _expected_sample(ds, rel), rel
    assert json.loads((out / MANIFEST).read_text())["contract"] == 2


def test_hf_export_records_rows(tmp_path, fo_dataset_name):
    import datasets

    from exporters import export_view

    ds = make_classification_dataset(tmp_path / "src", fo_dataset_name, ["Cargo", "Tanker", "Cargo"],
                                     splits=["train", "train", "test"])
    out = tmp_path / "hf"
    manifest = export_view(ds, out, "hf")
    dd = datasets.load_from_disk(str(out))
    expected = {f"{split}/{row}": sid for split in dd for row, sid in enumerate(dd[split]["sample_id"])}
    assert manifest["sample_ids"] == expected and len(expected) == 3

"""SAR-AIRcraft-1.0 loader and synthetic generator: real-sample conformance, round trip, bad input, CLI."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import data_bad_voc as bad

import fiftyone as fo

import sardata.datasets as sds
from sardata.datasets import _voc
from sardata.datasets._base import IngestError
from sardata.datasets.sar_aircraft import CLASSES, SARAircraftImporter, seeded_split
from sardata.synth import sar_aircraft as synth_air
from sardata.types import SARAircraft


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    return synth_air.generate(tmp_path_factory.mktemp("air"), n=8, seed=1)


def _pixel_boxes(sample) -> list[list[int]]:
    w, h = sample.metadata.width, sample.metadata.height
    return [list(_voc.relative_to_voc_box(d.bounding_box, w, h)) for d in sample.ground_truth.detections]


# --------------------------------------------------------------------------------------------- real samples


def test_real_conformance(real_data, fo_dataset_name):
    root = real_data / "sar_aircraft"
    dataset = sds.load("sar_aircraft", root, name=fo_dataset_name, progress=False)
    assert dataset.info["ingest_problems"] == []
    ids = [f"{i:07d}" for i in range(4360, 4369)]
    by_id = {s.image_id: s for s in dataset}
    assert sorted(by_id) == ids
    assert [len(by_id[i].ground_truth.detections) for i in ids] == [5, 1, 2, 2, 2, 1, 3, 5, 5]
    assert dataset.count("ground_truth.detections") == 26
    labels = set(dataset.distinct("ground_truth.detections.label"))
    assert "A320/321" in labels and labels <= set(CLASSES)
    assert dataset.default_classes == CLASSES
    for sample in dataset:
        assert sample.metadata.num_channels == 1  # grayscale JPEG, mode L
        assert sample.metadata.width == sample.metadata.height in (800, 1000, 1200, 1500)
        assert sample.source == "sar_aircraft" and sample.filepath.endswith(f"JPEGImages/{sample.image_id}.jpg")
    # 0004361: one A220 at 276,758,335,810 (inclusive pixel indices in a 1500 px image)
    det = by_id["0004361"].ground_truth.detections[0]
    assert det.label == "A220" and _pixel_boxes(by_id["0004361"]) == [[276, 758, 335, 810]]
    assert det.bounding_box[2] == pytest.approx(60 / 1500)
    # no ImageSets here: the documented seeded split, recorded in the dataset info
    assert dataset.info["split_source"].startswith("seeded")
    assert {s.image_id: s.split for s in dataset} == {i: seeded_split(i, 0.2, 0) for i in ids}


def test_seeded_split_options(real_data):
    importer = SARAircraftImporter(real_data / "sar_aircraft", test_fraction=0.0)
    importer.setup()
    assert {r.split for r in importer._records} == {"train"}
    importer = SARAircraftImporter(real_data / "sar_aircraft", test_fraction=1.0)
    importer.setup()
    assert {r.split for r in importer._records} == {"test"}
    fractions = [seeded_split(f"{i:07d}", 0.2, 7) == "test" for i in range(1, 4369)]
    assert 0.18 < np.mean(fractions) < 0.22
    with pytest.raises(ValueError, match="test_fraction"):
        SARAircraftImporter(real_data / "sar_aircraft", test_fraction=1.5)


def test_merged_annotations_counts(real_data):
    """The merged file of the whole dataset: 4368 images, 16463 objects, the published class counts."""
    merged = list(_voc.iter_voc_annotations(real_data / "sar_aircraft/_merged_wangjuec/annotations.xml"))
    assert len(merged) == 4368
    counts = Counter(obj.name for ann in merged for obj in ann.objects)
    assert sum(counts.values()) == 16463
    assert counts == {"other": 4264, "A220": 3730, "Boeing787": 2645, "Boeing737": 2557, "A320/321": 1771,
                      "ARJ21": 1187, "A330": 309}
    assert Counter(ann.width for ann in merged) == {800: 1312, 1000: 1085, 1200: 1038, 1500: 933}
    for ann in merged:  # 0-based inclusive: no box reaches the width/height
        for obj in ann.objects:
            _voc.check_box(obj.box, ann.width, ann.height)
    # the per-image XMLs here are the merged records of the same ids
    per_image = _voc.parse_voc_xml(real_data / "sar_aircraft/Annotations/0004368.xml")
    assert [o.box for o in per_image.objects] == [o.box for o in merged[4367].objects]


# --------------------------------------------------------------------------------------------- synthetic


def test_synth_style(synth_root, real_data):
    jpg = synth_root / "JPEGImages" / "0000001.jpg"
    with Image.open(jpg) as im:
        assert im.mode == "L" and im.width == im.height and 256 <= im.width <= 512
    xml = (synth_root / "Annotations" / "0000001.xml").read_bytes()
    real = (real_data / "sar_aircraft/Annotations/0004361.xml").read_bytes()
    assert xml.split(b"\r\n")[:2] == real.split(b"\r\n")[:2] == [b"<annotation>", b"<size>"]
    assert b"\t" not in xml and b"<?xml" not in xml and not xml.endswith(b"\n")
    lists = {p.stem: p.read_text().split() for p in (synth_root / "ImageSets" / "Main").glob("*.txt")}
    assert set(lists) == {"train", "val", "trainval", "test"}
    assert sorted(lists["trainval"]) == sorted(lists["train"] + lists["val"])
    assert sorted(lists["train"] + lists["val"] + lists["test"]) == [f"{i:07d}" for i in range(1, 9)]
    a = synth_air.generate(synth_root.parent / "again", n=2, seed=1)
    assert (a / "JPEGImages/0000002.jpg").read_bytes() == (synth_root / "JPEGImages/0000002.jpg").read_bytes()


def test_synth_aircraft_sizes_follow_class():
    """Wide-body classes are drawn larger than regional jets at the same pixel scale."""
    rng = np.random.default_rng(0)
    a330 = [synth_air._aircraft_size(rng, "A330", 1.0)[1] for _ in range(20)]
    arj = [synth_air._aircraft_size(rng, "ARJ21", 1.0)[1] for _ in range(20)]
    assert min(a330) > 2 * max(arj) * 0.99


def test_synth_narrow_bodies_overlap_in_size_and_differ_in_engine_layout():
    """A220, A320/321 and Boeing737: overlapping lengths, spans within 5 %, one sweep; engines at different
    spanwise positions (737 closest in), which is what a detector must see to tell them apart."""
    trio = ("A220", "A320/321", "Boeing737")
    models = synth_air.AIRCRAFT_MODELS
    for a in trio:
        for b in trio:
            (la0, la1), (lb0, lb1) = models[a]["length"], models[b]["length"]
            assert min(la1, lb1) > max(la0, lb0)  # length ranges overlap
    spans = [np.mean(models[k]["span"]) for k in trio]
    assert max(spans) / min(spans) < 1.05 and len({models[k]["sweep"] for k in trio}) == 1

    def engine_offset(label):  # spanwise distance of the brightest return off the fuselage, same airframe size
        patch = synth_air.aircraft_reflectivity(models[label], 38.0, 35.0, 0.0, 1.0)
        c = (patch.shape[0] - 1) / 2
        rows = np.arange(patch.shape[0])
        off = np.abs(rows - c) > 3  # leave out the fuselage itself
        column = patch[:, int(c) - 6 : int(c) + 12].max(axis=1)  # the wing-root band, nacelles included
        return abs(rows[off][np.argmax(column[off])] - c)

    offsets = {k: engine_offset(k) for k in trio}
    assert offsets["Boeing737"] < offsets["A320/321"] < offsets["A220"], offsets
    assert models["ARJ21"]["engines"] is None and models["ARJ21"]["tail"] == "T"  # rear engines, T-tail


def test_synth_small_scenes_carry_airport_clutter(tmp_path):
    root = synth_air.generate(tmp_path, n=4, seed=3, small=True)
    truth = json.loads((root / "synth_truth.json").read_text())["images"]
    clutter = 0
    for image_id, t in truth.items():
        assert synth_air.SMALL_SIDES[0] <= t["width"] <= synth_air.SMALL_SIDES[1] and t["objects"]
        gray = np.asarray(Image.open(root / "JPEGImages" / f"{image_id}.jpg")).astype(float)
        outside = np.ones_like(gray, dtype=bool)
        for o in t["objects"]:
            x0, y0, x1, y1 = o["box"]
            outside[y0 : y1 + 1, x0 : x1 + 1] = False
        clutter += int((gray[outside] > np.percentile(gray, 99)).sum())  # bright returns that are not aircraft
    assert clutter > 50
    with pytest.raises(ValueError, match="full or small"):
        synth_air.generate(tmp_path / "x", n=1, full=True, small=True)


def test_synth_round_trip(synth_root, fo_dataset_name):
    truth = json.loads((synth_root / "synth_truth.json").read_text())["images"]
    dataset = fo.Dataset.from_dir(str(synth_root), dataset_type=SARAircraft, name=fo_dataset_name, progress=False)
    assert dataset.info["split_source"] == "ImageSets/Main"
    assert len(dataset) == len(truth) == 8
    assert dataset.count("ground_truth.detections") == sum(len(t["objects"]) for t in truth.values()) > 8
    for sample in dataset:
        t = truth[sample.image_id]
        assert sample.split == t["split"]
        assert _pixel_boxes(sample) == [o["box"] for o in t["objects"]]
        assert [d.label for d in sample.ground_truth.detections] == [o["name"] for o in t["objects"]]
        gray = np.asarray(Image.open(sample.filepath))
        for x0, y0, x1, y1 in _pixel_boxes(sample):  # aircraft are brighter than the scene
            assert gray[y0 : y1 + 1, x0 : x1 + 1].max() > np.median(gray) + 40


# --------------------------------------------------------------------------------------------- bad input


def test_bad_input_reported_and_rest_ingested(synth_root, tmp_path):
    root = Path(shutil.copytree(synth_root, tmp_path / "bad"))
    xmls = sorted((root / "Annotations").glob("*.xml"))
    truncated = root / "JPEGImages" / f"{xmls[0].stem}.jpg"
    bad.truncate(truncated)
    bad.break_xml(xmls[1])
    (root / "JPEGImages" / f"{xmls[2].stem}.jpg").unlink()
    bad.rename_first_class(xmls[3], "B-52")
    bad.push_first_box_outside(xmls[4])
    importer = SARAircraftImporter(root)
    dataset = fo.Dataset()
    try:
        with pytest.warns(UserWarning):
            dataset.add_importer(importer, progress=False)
        reasons = {Path(p.path).name: p.reason for p in importer.problems}
        assert len(importer.problems) == 5
        assert "cannot decode jpeg" in reasons[truncated.name]
        assert "malformed XML" in reasons[xmls[1].name]
        assert "missing image" in reasons[xmls[2].name]
        assert "unknown class 'B-52'" in reasons[xmls[3].name]
        assert "outside" in reasons[xmls[4].name]
        assert len(dataset) == 8 - 3
    finally:
        dataset.delete()
    with pytest.raises(IngestError, match=xmls[1].name):
        SARAircraftImporter(root, strict=True).setup()


def test_missing_layout(tmp_path):
    (tmp_path / "JPEGImages").mkdir()
    with pytest.raises(FileNotFoundError, match="Annotations"):
        SARAircraftImporter(tmp_path).setup()


# --------------------------------------------------------------------------------------------- CLI


def test_cli_synth_and_ingest(tmp_path, fo_dataset_name):
    from typer.testing import CliRunner

    from sardata.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["synth", "sar_aircraft", str(tmp_path), "--n", "3", "--seed", "2"])
    assert result.exit_code == 0, result.output
    root = tmp_path / synth_air.ROOT_NAME
    # the folder holding SAR-AIRcraft-1.0 is accepted as the root
    result = runner.invoke(app, ["ingest", "sar_aircraft", str(tmp_path), "--name", fo_dataset_name], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "samples" in result.output and "skipped files" in result.output
    truth = json.loads((root / "synth_truth.json").read_text())["images"]
    for label, count in Counter(o["name"] for t in truth.values() for o in t["objects"]).items():
        assert f"class {label}" in result.output

"""SSDD loader and synthetic generator: real-sample conformance, synthetic round trip, bad input, CLI."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import data_bad_voc as bad

import fiftyone as fo

import sardata.datasets as sds
from sardata import sarimage
from sardata.datasets import _voc
from sardata.datasets._base import IngestError
from sardata.datasets.ssdd import SSDDImporter
from sardata.synth import ssdd as synth_ssdd
from sardata.types import SSDD


def _pixel_boxes(sample) -> list[list[int]]:
    w, h = sample.metadata.width, sample.metadata.height
    return [list(_voc.relative_to_voc_box(d.bounding_box, w, h)) for d in sample.ground_truth.detections]


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    return synth_ssdd.generate(tmp_path_factory.mktemp("ssdd"), n=14, seed=3)


# --------------------------------------------------------------------------------------------- real samples


def test_real_voc_conformance(real_data, fo_dataset_name):
    root = real_data / "ssdd"
    dataset = sds.load("ssdd", root, name=fo_dataset_name, progress=False)
    assert dataset.info["ingest_problems"] == []
    assert len(dataset) == 4
    by_id = {s.image_id: s for s in dataset}
    assert set(by_id) == {"000001", "000002", "000006", "000015"}
    assert {k: s.split for k, s in by_id.items()} == {"000001": "test", "000002": "train", "000006": "train", "000015": "train"}
    assert [len(by_id[k].ground_truth.detections) for k in ("000001", "000002", "000006", "000015")] == [1, 1, 3, 3]
    assert {(s.metadata.width, s.metadata.height, s.metadata.num_channels) for s in dataset} == {
        (416, 323, 3), (501, 355, 3), (501, 357, 3), (385, 258, 3)
    }
    # boxes are the XML integers, inclusive: 000006 object 1 is 101,136,183,180
    assert _pixel_boxes(by_id["000006"])[0] == [101, 136, 183, 180]
    assert _pixel_boxes(by_id["000001"]) == [[218, 48, 266, 146]]
    assert by_id["000006"].ground_truth.detections[0].bounding_box[2] == pytest.approx(83 / 501)
    assert dataset.count_values("ground_truth.detections.label") == {"ship": 8}
    assert dataset.default_classes == ["ship"]
    # RBox: 000001 theta and corners
    rbox = by_id["000001"].rboxes.polylines[0]
    assert rbox.theta == pytest.approx(85.8150863647461)
    assert (rbox.cx, rbox.cy, rbox.w, rbox.h) == (242, 96, 98, 45)
    assert rbox.closed and not rbox.filled and len(rbox.points[0]) == 4
    assert rbox.points[0][0] == pytest.approx(((215 + 0.5) / 416, (48 + 0.5) / 323))
    # PSeg: 000006 first polygon has 6 points, filled
    polygon = by_id["000006"].polygons.polylines[0]
    assert polygon.filled and len(polygon.points[0]) == 6
    assert polygon.points[0][0] == pytest.approx(((101 + 0.5) / 501, (168 + 0.5) / 357))
    assert sum(len(s.rboxes.polylines) for s in dataset) == sum(len(s.polygons.polylines) for s in dataset) == 8
    # SAR fields: the JPEG itself is displayable
    sample = by_id["000002"]
    assert sample.filepath == sample.sar_path and sample.filepath.endswith("JPEGImages_train/000002.jpg")
    assert sample.source == "ssdd" and sample.sar_stats.max <= 255


def test_real_coco_quirks(real_data):
    """Category id 0, duplicate annotation ids (1,1,1,1 in train.json) and the extra "ignore" key."""
    root = real_data / "ssdd"
    train = json.loads((root / "PSeg_SSDD/coco_style/annotations/train.json").read_text())
    assert Counter(a["id"] for a in train["annotations"])[1] == 4  # the quirk is really there
    dataset = fo.Dataset.from_dir(str(root), dataset_type=SSDD, annotation_source="coco", progress=False)
    try:
        by_id = {s.image_id: s for s in dataset}
        assert sum(len(s.ground_truth.detections) for s in dataset) == 8  # 7 train + 1 test, no duplicate lost
        assert [len(by_id[k].ground_truth.detections) for k in ("000001", "000002", "000006", "000015")] == [1, 1, 3, 3]
        det = by_id["000001"].ground_truth.detections[0]
        assert np.allclose(np.array(det.bounding_box) * [416, 323, 416, 323], [218.66666666666669, 48.0, 48.0, 98.66666666666666])
        assert det.ignore is False and det.label == "ship"
        assert by_id["000001"].split == "test" and by_id["000015"].split == "train"
        assert len(by_id["000015"].polygons.polylines) == 3
        # COCO float boxes and VOC integer boxes of the same ships agree to a pixel
        voc = SSDDImporter(root)
        voc.setup()
        voc_boxes = {r.image_id: r.boxes for r in voc._records}
        for image_id, sample in by_id.items():
            w, h = sample.metadata.width, sample.metadata.height
            for det, (_, (x0, y0, x1, y1), _) in zip(sample.ground_truth.detections, voc_boxes[image_id]):
                x, y, bw, bh = np.array(det.bounding_box) * [w, h, w, h]
                assert abs(x - x0) <= 1 and abs(y - y0) <= 1 and abs(x + bw - x1) <= 1.5 and abs(y + bh - y1) <= 1.5
    finally:
        dataset.delete()


def test_uint8_stats_match_generic_path(real_data):
    gray, channels = sarimage.read_gray_jpeg(real_data / "ssdd/BBox_SSDD/voc_style/JPEGImages_train/000006.jpg")
    rgb = sarimage.read_image(real_data / "ssdd/BBox_SSDD/voc_style/JPEGImages_train/000006.jpg")
    assert channels == 3 and np.array_equal(gray, rgb[..., 0])  # R = G = B, luma-only decode is exact
    fast, generic = _voc.uint8_speckle_stats(gray).to_dict(), sarimage.speckle_stats(gray).to_dict()
    assert fast == pytest.approx(generic, rel=1e-9)


def test_writer_and_parser_agree_on_rbox_keys():
    assert synth_ssdd.ROTATED_KEYS == _voc.ROTATED_KEYS


def test_box_conversion_round_trip():
    for box, size in (((0, 0, 9, 4), (10, 5)), ((101, 136, 183, 180), (501, 357))):
        assert _voc.relative_to_voc_box(_voc.voc_box_to_relative(box, *size), *size) == box
    with pytest.raises(ValueError, match="outside"):
        _voc.check_box((0, 0, 12, 4), 10, 5)  # three pixels past the right edge: clearly outside
    with pytest.raises(ValueError, match="degenerate"):
        _voc.check_box((5, 0, 4, 4), 10, 5)


# --------------------------------------------------------------------------------------------- synthetic


def test_synth_layout_and_style(synth_root, real_data):
    truth = json.loads((synth_root / "synth_truth.json").read_text())["images"]
    assert sorted(truth) == [f"{i:06d}" for i in range(1, 15)]
    voc = synth_root / "BBox_SSDD" / "voc_style"
    assert sorted(p.stem for p in (voc / "JPEGImages_test").glob("*.jpg")) == ["000001", "000009", "000011"]
    test_groups = sorted(p.stem for f in ("test_inshore", "test_offshore") for p in (voc / f"JPEGImages_{f}").glob("*.jpg"))
    assert test_groups == ["000001", "000009", "000011"]
    for image_id in ("000001", "000009", "000011"):
        group = "test_inshore" if truth[image_id]["scene"] == "inshore" else "test_offshore"
        assert (voc / f"Annotations_{group}" / f"{image_id}.xml").exists()
    # the real files' style: same line structure with tabs and CRLF, no declaration, no final newline
    xml = (voc / "Annotations_train" / "000002.xml").read_bytes()
    real = (real_data / "ssdd/BBox_SSDD/voc_style/Annotations_train/000002.xml").read_bytes()
    assert xml.startswith(b"<annotation>\r\n\t<folder>JPEGImages</folder>\r\n") and not xml.endswith(b"\n")
    assert [len(line) - len(line.lstrip(b"\t")) for line in xml.split(b"\r\n")][:20] == [
        len(line) - len(line.lstrip(b"\t")) for line in real.split(b"\r\n")
    ][:20]
    with __import__("PIL.Image").Image.open(voc / "JPEGImages_train" / "000002.jpg") as im:
        assert im.mode == "RGB" and 300 <= im.width <= 550
        rgb = np.asarray(im)
    assert np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])
    # RBox/PSeg consistent with the boxes: polygon floor-extent is the box, rbox centre inside it
    for image_id, t in truth.items():
        for box, rbox, points in zip(t["boxes"], t["rboxes"], t["polygons"]):
            pts = np.array(points)
            assert [*pts.min(axis=0), *pts.max(axis=0)] == box
            assert box[0] <= rbox["rotated_bbox_cx"] <= box[2] and box[1] <= rbox["rotated_bbox_cy"] <= box[3]
            assert 0 <= rbox["rotated_bbox_theta"] < 90
        assert (t["land_fraction"] > 0) == (t["scene"] == "inshore")


def test_synth_deterministic_and_scene_mix(tmp_path):
    a = synth_ssdd.generate(tmp_path / "a", n=3, seed=5)
    b = synth_ssdd.generate(tmp_path / "b", n=3, seed=5)
    for rel in ("BBox_SSDD/voc_style/JPEGImages_test/000001.jpg", "RBox_SSDD/voc_style/Annotations_train/000002.xml",
                "PSeg_SSDD/coco_style/annotations/train.json", "synth_truth.json"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    # full size: 1160 images, the official 232 test ids, about a fifth inshore (the draw that decides the scene)
    scenes = Counter((synth_ssdd.official_split(k), synth_ssdd.draw_scene(0, k)[1]) for k in range(1, 1161))
    assert scenes[("test", True)] + scenes[("test", False)] == 232
    inshore = scenes[("test", True)] + scenes[("train", True)]
    assert 0.18 <= inshore / 1160 <= 0.25


def test_synth_round_trip(synth_root, fo_dataset_name):
    truth = json.loads((synth_root / "synth_truth.json").read_text())["images"]
    dataset = sds.load("ssdd", synth_root, name=fo_dataset_name, progress=False)
    assert dataset.info["ingest_problems"] == []
    assert len(dataset) == len(truth)
    for sample in dataset:
        t = truth[sample.image_id]
        assert (sample.metadata.width, sample.metadata.height) == (t["width"], t["height"])
        assert _pixel_boxes(sample) == t["boxes"]
        assert sample.split == t["split"] == synth_ssdd.official_split(int(sample.image_id))
        expected_tags = [f"test_{t['scene']}"] if t["split"] == "test" else []
        assert sample.tags == expected_tags
        assert len(sample.rboxes.polylines) == len(sample.polygons.polylines) == len(t["boxes"])
        for rbox, truth_rbox in zip(sample.rboxes.polylines, t["rboxes"]):
            assert rbox.theta == pytest.approx(truth_rbox["rotated_bbox_theta"])
    # COCO source on the same data: float polygon extents inside the integer VOC boxes (+1 px)
    coco = SSDDImporter(synth_root, annotation_source="coco")
    coco.setup()
    assert len(coco) == len(truth) and not coco.problems
    for record in coco._records:
        t = truth[record.image_id]
        assert [[round(v) for v in b] for _, b, _ in record.boxes] == [[x0, y0, x1 + 1, y1 + 1] for x0, y0, x1, y1 in t["boxes"]]
        assert len(record.polygons) == len(t["boxes"])


# --------------------------------------------------------------------------------------------- bad input


def test_bad_input_reported_and_rest_ingested(synth_root, tmp_path):
    root = Path(shutil.copytree(synth_root, tmp_path / "bad"))
    voc = root / "BBox_SSDD" / "voc_style"
    train_xml = sorted((voc / "Annotations_train").glob("*.xml"))
    truncated_jpg = voc / "JPEGImages_train" / f"{train_xml[0].stem}.jpg"
    bad.truncate(truncated_jpg)
    bad.break_xml(train_xml[1])
    (voc / "JPEGImages_train" / f"{train_xml[2].stem}.jpg").unlink()
    bad.rename_first_class(train_xml[3], "submarine")
    bad.push_first_box_outside(train_xml[4])
    kept_objects_4 = bad.object_count(train_xml[4]) - 1
    importer = SSDDImporter(root, load_rboxes=False, load_polygons=False)
    dataset = fo.Dataset()
    try:
        with pytest.warns(UserWarning):
            dataset.add_importer(importer, progress=False)
        problems = {Path(p.path).name + ":" + p.reason for p in importer.problems}
        paths = {p.path for p in importer.problems}
        assert str(truncated_jpg) in paths and any("cannot decode jpeg" in p for p in problems)
        assert str(train_xml[1]) in paths and any("malformed XML" in p for p in problems)
        assert any(p.startswith(train_xml[2].name) and "missing image" in p for p in problems)
        assert any(p.startswith(train_xml[3].name) and "unknown class 'submarine'" in p for p in problems)
        assert any(p.startswith(train_xml[4].name) and "outside" in p for p in problems)
        assert len(importer.problems) == 5
        ids = set(dataset.values("image_id"))
        assert len(dataset) == 14 - 3 and train_xml[3].stem in ids  # unknown class drops the object, not the image
        assert len(dataset.match(fo.ViewField("image_id") == train_xml[4].stem).first().ground_truth.detections) == kept_objects_4
    finally:
        dataset.delete()
    with pytest.raises(IngestError, match=train_xml[1].name):
        SSDDImporter(root, strict=True).setup()


def test_bad_coco_path_escape(synth_root, tmp_path):
    root = Path(shutil.copytree(synth_root, tmp_path / "bad"))
    path = root / "BBox_SSDD" / "coco_style" / "annotations" / "train.json"
    data = json.loads(path.read_text())
    data["images"][0]["file_name"] = "../../../../../etc/passwd"
    path.write_text(json.dumps(data))
    importer = SSDDImporter(root, annotation_source="coco")
    with pytest.warns(UserWarning, match="escapes"):
        importer.setup()
    assert [p.path for p in importer.problems] == [str(path)]
    assert len(importer) == 13


def test_missing_layout_names_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="BBox_SSDD/voc_style"):
        SSDDImporter(tmp_path).setup()


# --------------------------------------------------------------------------------------------- CLI


def test_cli_ingest_prints_summary(synth_root, fo_dataset_name):
    from typer.testing import CliRunner

    from sardata.cli import app

    result = CliRunner().invoke(app, ["ingest", "ssdd", str(synth_root), "--name", fo_dataset_name], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "samples" in result.output and "14" in result.output
    assert "class ship" in result.output and "split test" in result.output
    assert fo.load_dataset(fo_dataset_name).count("ground_truth.detections") > 0


def test_flat_layout_uses_official_rule_and_parent_folder(synth_root, tmp_path):
    """Pre-official flat JPEGImages/Annotations: split by the id rule; the folder holding Official-SSDD is accepted."""
    root = tmp_path / "Official-SSDD"
    voc = root / "BBox_SSDD" / "voc_style"
    voc.mkdir(parents=True)
    for kind in ("JPEGImages", "Annotations"):
        shutil.copytree(synth_root / "BBox_SSDD" / "voc_style" / f"{kind}_train", voc / kind)
        for path in (synth_root / "BBox_SSDD" / "voc_style" / f"{kind}_test").iterdir():
            shutil.copy(path, voc / kind / path.name)
    importer = SSDDImporter(tmp_path)
    importer.setup()
    assert not importer.problems and len(importer) == 14 and importer.dataset_dir == str(root)
    splits = {r.image_id: r.split for r in importer._records}
    assert splits == {f"{i:06d}": ("test" if i % 10 in (1, 9) else "train") for i in range(1, 15)}
    assert importer.get_dataset_info()["label_fields"] == ["ground_truth"]

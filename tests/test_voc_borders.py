"""Boxes touching the image border: 0-based and 1-based (PASCAL) VOC files keep every ship (issue: border GT loss)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sardata.datasets import _voc


# --------------------------------------------------------------------------------------------- geometry


def test_convention_is_read_from_the_boxes():
    assert _voc.detect_convention([(0, 5, 9, 9), (3, 3, 6, 6)], 20, 20) == "0-based"  # xmin == 0
    assert _voc.detect_convention([(4, 5, 20, 9)], 20, 20) == "1-based"  # xmax == width
    assert _voc.detect_convention([(4, 5, 9, 20)], 20, 20) == "1-based"  # ymax == height
    assert _voc.detect_convention([(4, 5, 9, 9)], 20, 20) == "0-based"  # no evidence: the default
    assert _voc.detect_convention([(4, 5, 9, 9)], 20, 20, default="1-based") == "1-based"
    # both kinds of evidence: a 0-based file with one box a pixel too far (clipped later), not a 1-based file
    assert _voc.detect_convention([(0, 5, 9, 9), (4, 5, 20, 9)], 20, 20) == "0-based"


def test_resolve_box_spans_for_both_conventions():
    # 0-based inclusive 0..9 covers pixels 0..9 → [0, 10); 1-based 1..10 covers the same pixels
    assert _voc.resolve_box((0, 2, 9, 4), 10, 10, "0-based").span == (0, 2, 10, 5)
    assert _voc.resolve_box((1, 3, 10, 5), 10, 10, "1-based").span == (0, 2, 10, 5)
    verdict = _voc.resolve_box((1, 3, 10, 5), 10, 10, "1-based")
    assert verdict.status == "kept" and verdict.reason == ""


def test_one_pixel_past_is_clipped_and_kept_further_is_dropped():
    clipped = _voc.resolve_box((5, 5, 10, 8), 10, 10, "0-based")  # reaches x = 11 of a 10-px image
    assert clipped.status == "clipped" and clipped.span == (5, 5, 10, 9)
    assert "clipped" in clipped.reason
    low = _voc.resolve_box((-1, 0, 4, 4), 10, 10, "0-based")
    assert low.status == "clipped" and low.span == (0, 0, 5, 5)
    far = _voc.resolve_box((5, 5, 12, 8), 10, 10, "0-based")
    assert far.status == "dropped" and far.span is None and "outside" in far.reason
    assert _voc.resolve_box((5, 5, 4, 8), 10, 10).status == "dropped"  # degenerate
    with pytest.raises(ValueError, match="convention"):
        _voc.resolve_box((0, 0, 1, 1), 10, 10, "2-based")


def test_resolve_objects_drops_unknown_classes_and_sizeless_files():
    objs = [_voc.VOCObject("ship", (0, 0, 4, 4)), _voc.VOCObject("boat", (1, 1, 3, 3)), _voc.VOCObject("ship")]
    convention, resolved = _voc.resolve_objects(objs, (10, 10), ("ship",))
    assert convention == "0-based"
    assert [v.status for _, v in resolved] == ["kept", "dropped", "dropped"]
    assert "unknown class 'boat'" in resolved[1][1].reason and "no <bndbox>" in resolved[2][1].reason
    _, resolved = _voc.resolve_objects(objs[:1], None, ("ship",))
    assert resolved[0][1].status == "dropped" and "<size>" in resolved[0][1].reason


# --------------------------------------------------------------------------------------------- ingest


def _write_voc(path: Path, size, boxes):
    objects = "".join(
        f"<object><name>ship</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax><ymax>{d}</ymax>"
        "</bndbox></object>"
        for a, b, c, d in boxes
    )
    path.write_text(f"<annotation><size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>"
                    f"{objects}</annotation>")


def _ssdd_root(tmp_path: Path, files: dict) -> Path:
    """An Official-SSDD BBox layout; ``files`` maps image id → (size, boxes) in the file's own convention."""
    root = tmp_path / "Official-SSDD"
    rng = np.random.default_rng(0)
    for image_id, (size, boxes) in files.items():
        split = "test" if image_id[-1] in "19" else "train"
        img_dir = root / "BBox_SSDD" / "voc_style" / f"JPEGImages_{split}"
        ann_dir = root / "BBox_SSDD" / "voc_style" / f"Annotations_{split}"
        img_dir.mkdir(parents=True, exist_ok=True)
        ann_dir.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 60, size=(size[1], size[0]), dtype=np.uint8)
        Image.fromarray(np.stack([pixels] * 3, axis=-1)).save(img_dir / f"{image_id}.jpg")
        _write_voc(ann_dir / f"{image_id}.xml", size, boxes)
    return root


#: PASCAL (1-based) files: ships touching the right and bottom edges (xmax == width, ymax == height) are legal.
ONE_BASED = {
    "000002": ((64, 48), [(40, 10, 64, 20), (3, 30, 12, 48)]),
    "000003": ((64, 48), [(10, 10, 20, 20)]),
    "000004": ((80, 60), [(70, 50, 80, 60), (5, 5, 15, 15), (20, 20, 30, 30)]),
}
#: 0-based files: a ship touching the left/top edge (xmin == 0), one reaching a pixel past, one clearly outside.
ZERO_BASED = {
    "000012": ((64, 48), [(0, 10, 9, 20), (50, 0, 63, 8)]),
    "000013": ((64, 48), [(0, 0, 5, 5), (55, 40, 64, 47)]),  # second: xmax == width in a 0-based file → clipped
    "000014": ((64, 48), [(0, 1, 4, 4), (60, 30, 70, 40)]),  # second: 7 px outside → dropped
}


def _spans(sample):
    w, h = sample.metadata.width, sample.metadata.height
    return sorted(tuple(round(v * s) for v, s in zip(
        (d.bounding_box[0], d.bounding_box[1], d.bounding_box[0] + d.bounding_box[2], d.bounding_box[1] + d.bounding_box[3]),
        (w, h, w, h))) for d in sample.ground_truth.detections)


def test_one_based_files_keep_every_border_ship(tmp_path, fo_dataset_name):
    import sardata

    ds = sardata.load("ssdd", _ssdd_root(tmp_path, ONE_BASED), name=fo_dataset_name)
    assert ds.count("ground_truth.detections") == 6  # every ship, none lost at the border
    assert ds.info["ingest_problems"] == []
    assert ds.info["ingest_labels"] == {"ship": {"kept": 6, "clipped": 0, "dropped": 0}}
    sample = ds.match({"image_id": "000004"}).first()
    assert _spans(sample) == [(4, 4, 15, 15), (19, 19, 30, 30), (69, 49, 80, 60)]  # shifted to 0-based, to the edge


def test_zero_based_files_clip_one_pixel_and_drop_the_rest(tmp_path, fo_dataset_name):
    import sardata

    ds = sardata.load("ssdd", _ssdd_root(tmp_path, ZERO_BASED), name=fo_dataset_name)
    assert ds.info["ingest_labels"] == {"ship": {"kept": 4, "clipped": 1, "dropped": 1}}
    assert ds.count("ground_truth.detections") == 5
    sample = ds.match({"image_id": "000013"}).first()
    assert _spans(sample) == [(0, 0, 6, 6), (55, 40, 64, 48)]
    assert [d.get_field("clipped") if d.has_field("clipped") else False for d in sample.ground_truth.detections] == [False, True]
    (problem,) = ds.info["ingest_problems"]
    assert problem["path"].endswith("000014.xml") and "outside" in problem["reason"]


def test_strict_fails_on_a_dropped_label_only(tmp_path, fo_dataset_name):
    import sardata

    root = _ssdd_root(tmp_path / "clip", {k: ZERO_BASED[k] for k in ("000012", "000013")})
    ds = sardata.load("ssdd", root, name=fo_dataset_name, strict=True)  # a clip is no reason to fail
    assert ds.info["ingest_labels"]["ship"]["clipped"] == 1
    root = _ssdd_root(tmp_path / "drop", {"000014": ZERO_BASED["000014"]})
    from sardata.datasets._base import IngestError

    with pytest.raises(IngestError, match="000014.xml.*outside"):
        sardata.load("ssdd", root, name=fo_dataset_name + "-2", strict=True)


def test_ingest_summary_prints_kept_clipped_dropped(tmp_path, fo_dataset_name):
    from typer.testing import CliRunner

    from sardata.cli import app

    result = CliRunner().invoke(app, ["ingest", "ssdd", str(_ssdd_root(tmp_path, ZERO_BASED)), "--name",
                                      fo_dataset_name], terminal_width=200)
    assert result.exit_code == 0, result.output
    rows = [line.replace("│", " ").replace("┃", " ").split() for line in result.output.splitlines()]
    assert ["class", "kept", "clipped", "dropped"] in rows
    row = next(r for r in rows if r[:1] == ["ship"] and len(r) == 4)
    assert [int(v) for v in row[1:]] == [4, 1, 1]


def test_real_samples_keep_every_box(real_data):
    """The real SSDD and SAR-AIRcraft samples are 0-based; nothing is clipped or dropped."""
    for name, folder in (("ssdd", "ssdd"), ("sar_aircraft", "sar_aircraft")):
        root = real_data / folder
        xmls = [p for p in root.rglob("*.xml") if "Annotations" in str(p.parent) and "BBox" in str(p) or
                (name == "sar_aircraft" and p.parent.name == "Annotations")]
        assert xmls, f"no annotations found under {root}"
        for xml in xmls:
            ann = _voc.parse_voc_xml(xml)
            convention, resolved = _voc.resolve_objects(ann.objects, (ann.width, ann.height),
                                                        {o.name for o in ann.objects})
            assert convention == "0-based", xml
            assert all(v.status == "kept" for _, v in resolved), xml

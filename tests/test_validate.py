"""``sardata validate``: planted problems of every kind are found (and only they), clean synthetic sets of every
dataset report no errors, the real samples validate, findings open as saved views, and runs list / load / delete."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from typer.testing import CliRunner

import sardata
import sardata.validate as sv
from sardata.synth import synthesize

runner = CliRunner()


@pytest.fixture(scope="module")
def ssdd_root(tmp_path_factory):
    return synthesize("ssdd", tmp_path_factory.mktemp("ssdd"), n=40, seed=3)


def _fresh(root, tmp_path, name):
    """A private copy of the synthetic SSDD (files are edited by the tests), ingested as ``name``."""
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    return sardata.load("ssdd", copy, name=name, overwrite=True, progress=False)


def _kinds(report):
    return {f.kind: f for f in report.findings}


def test_clean_synthetic_ssdd_has_no_errors_and_stores_a_run(ssdd_root, tmp_path, fo_dataset_name):
    ds = _fresh(ssdd_root, tmp_path, fo_dataset_name)
    report = sv.validate(ds, progress=False)
    assert report.counts()["error"] == 0, [f.message for f in report.findings if f.severity == "error"]
    assert not report.fails("error")
    assert sv.list_validation_runs(ds) == ["validate"]
    again = sv.load_validation_run(ds, "validate")
    assert again.to_dict() == report.to_dict()
    assert report.distribution["samples_per_split"] == dict(zip(*np.unique(ds.values("split"), return_counts=True)))
    assert sum(report.distribution["labels_per_split"][s]["ship"] for s in ("train", "test")) == \
        ds.count("ground_truth.detections")
    plots = [Path(p) for p in report.distribution["plots"]]
    assert [p.name for p in plots] == ["box_sizes.png", "box_aspect_ratios.png"] and all(p.stat().st_size for p in plots)
    sv.delete_validation_run(ds, "validate")
    assert sv.list_validation_runs(ds) == [] and not Path(report.report_dir).exists()
    assert not [v for v in ds.list_saved_views() if v.startswith("validate-")]


def _plant(ds, tmp_path):
    """Plants one problem of every kind; returns kind → the sample ids (or label ids) that carry it."""
    import fiftyone as fo

    train = ds.match({"split": "train"}).sort_by("image_id")
    test = ds.match({"split": "test"}).sort_by("image_id")
    t = [s for s in train.iter_samples(autosave=False)]
    planted = {}

    def boxes(sample, *dets):
        sample.ground_truth.detections.extend(dets)
        sample.save()
        return [d.id for d in dets]

    planted["degenerate_box"] = boxes(t[0], fo.Detection(label="ship", bounding_box=[0.2, 0.2, 0.0, 0.1]))
    planted["box_outside_image"] = boxes(t[1], fo.Detection(label="ship", bounding_box=[0.9, 0.5, 0.3, 0.1]))
    w, h = t[2].metadata.width, t[2].metadata.height
    planted["tiny_box"] = boxes(t[2], fo.Detection(label="ship", bounding_box=[0.5, 0.5, 2 / w, 2 / h]))
    planted["clipped_box"] = boxes(t[3], fo.Detection(label="ship", bounding_box=[0.0, 0.4, 0.1, 0.1], clipped=True))
    original = t[4].ground_truth.detections[0]
    planted["duplicate_box"] = boxes(t[4], fo.Detection(label="ship", bounding_box=list(original.bounding_box)))
    planted["classes_absent_test"] = boxes(t[5], fo.Detection(label="boat", bounding_box=[0.3, 0.3, 0.2, 0.2]))
    # rotated box whose corners no longer agree with cx, cy, w, h, theta; polygon far from every box
    line = t[6].rboxes.polylines[0]
    line.points = [[[x + 0.3, y] for x, y in line.points[0]]]
    t[6].save()
    planted["rbox_corner_mismatch"] = [line.id]
    poly = t[7].polygons.polylines[0]
    poly.points = [[[0.01 + 0.02 * (i % 2), 0.9 + 0.02 * (i // 2)] for i in range(4)]]
    t[7].save()
    planted["polygon_box_mismatch"] = [poly.id]
    t[8].ground_truth.detections = []
    t[8]["polygons"] = None  # (its polygons would otherwise rightly match no box)
    t[8]["rboxes"] = None
    t[8].save()
    planted["no_labels"] = [t[8].id]
    # leakage: a test image copied byte for byte over a train image; another re-encoded (near duplicate)
    shutil.copyfile(test.first().sar_path, t[9].sar_path)
    planted["exact_duplicate_across_splits"] = sorted([t[9].id, test.first().id])
    near_src = test.skip(1).first()
    pixels = np.asarray(Image.open(near_src.sar_path).convert("L"))
    Image.fromarray(pixels).convert("RGB").save(t[10].sar_path, quality=70)
    planted["near_duplicate_across_splits"] = sorted([t[10].id, near_src.id])
    # one MMSI on both sides of the split
    ds.add_sample_field("mmsi", fo.IntField)
    t[11]["mmsi"] = 412345678
    t[11].save()
    other = test.skip(2).first()
    other["mmsi"] = 412345678
    other.save()
    planted["shared_mmsi_across_splits"] = sorted([t[11].id, other.id])
    # pixels: NaN, constant, saturated, PNG bytes behind .jpg, truncated file
    files = tmp_path / "planted"
    files.mkdir()
    nan = np.random.default_rng(2).gamma(1.0, 1.0, (64, 64)).astype(np.float32)
    nan[3, 3] = np.nan
    tifffile.imwrite(files / "nan.tif", nan)
    Image.fromarray(np.full((64, 64), 17, np.uint8)).save(files / "flat.png")
    sat = np.random.default_rng(0).integers(0, 200, (64, 64)).astype(np.uint8)
    sat[:16] = 255
    Image.fromarray(sat).save(files / "sat.png")
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64)).astype(np.uint8)).save(files / "liar.jpg",
                                                                                                  format="PNG")
    (files / "cut.jpg").write_bytes(Path(t[12].sar_path).read_bytes()[:200])
    for sample, name, kind in ((t[13], "nan.tif", "nonfinite_pixels"), (t[14], "flat.png", "constant_image"),
                               (t[15], "sat.png", "saturated_pixels"), (t[16], "liar.jpg", "extension_lies"),
                               (t[17], "cut.jpg", "unreadable_image")):
        sample["sar_path"] = str(files / name)
        sample.save()
        planted[kind] = [sample.id]
    return planted


def _ids(finding):
    return set(finding.label_ids or finding.sample_ids) if finding is not None else set()


def test_planted_problems_of_every_kind_are_found(ssdd_root, tmp_path, fo_dataset_name):
    ds = _fresh(ssdd_root, tmp_path, fo_dataset_name)
    before = _kinds(sv.validate(ds, run_key="before", progress=False))  # what the synthetic set has by itself
    planted = _plant(ds, tmp_path)
    found = _kinds(sv.validate(ds, progress=False))
    for kind, ids in planted.items():
        assert kind in found, f"{kind} not found; found {sorted(found)}"
        if kind == "classes_absent_test":
            assert found[kind].details["classes"] == ["boat"]
        else:  # exactly the planted ones on top of what was there before
            assert _ids(found[kind]) == _ids(before.get(kind)) | set(ids), kind
    assert not {"degenerate_box", "box_outside_image", "duplicate_box", "rbox_corner_mismatch",
                "polygon_box_mismatch", "exact_duplicate_across_splits", "shared_mmsi_across_splits"} & set(before)
    severities = {k: found[k].severity for k in planted}
    assert {k for k, s in severities.items() if s == "error"} == {
        "degenerate_box", "box_outside_image", "exact_duplicate_across_splits", "shared_mmsi_across_splits",
        "nonfinite_pixels", "constant_image", "unreadable_image"}
    report = sv.load_validation_run(ds, "validate")
    assert report.fails("error") and report.fails("warning")
    assert "class_imbalance_train" in found  # one boat among the ships


def test_findings_open_as_saved_views(ssdd_root, tmp_path, fo_dataset_name):
    ds = _fresh(ssdd_root, tmp_path, fo_dataset_name)
    planted = _plant(ds, tmp_path)
    report = sv.validate(ds, progress=False)
    tiny = ds.load_saved_view(report.views["tiny_box"])
    shown = tiny.values("ground_truth.detections.id", unwind=True)
    assert sorted(shown) == sorted(report.by_kind()["tiny_box"].label_ids)  # only the offending labels are shown
    assert set(planted["tiny_box"]) <= set(shown)
    w, h = tiny.values("metadata.width"), tiny.values("metadata.height")
    sizes = [min(b[2] * wi, b[3] * hi) for bbs, wi, hi in
             zip(tiny.values("ground_truth.detections.bounding_box"), w, h) for b in bbs]
    assert max(sizes) < 4.0
    mmsi = ds.load_saved_view(report.views["shared_mmsi_across_splits"])
    assert sorted(mmsi.values("id")) == planted["shared_mmsi_across_splits"]
    # re-running the key replaces the views instead of piling them up
    sv.validate(ds, progress=False)
    assert len([v for v in ds.list_saved_views() if v.startswith("validate-")]) == len(report.views)


def test_labels_dropped_at_ingest_are_an_error(ssdd_root, tmp_path, fo_dataset_name):
    copy = tmp_path / "copy"
    shutil.copytree(ssdd_root, copy)
    xml = sorted((copy / "BBox_SSDD" / "voc_style" / "Annotations_train").glob("*.xml"))[0]
    text = xml.read_text()
    xml.write_text(text.replace("</annotation>", "<object><name>ship</name><bndbox><xmin>5000</xmin><ymin>5</ymin>"
                                "<xmax>5010</xmax><ymax>9</ymax></bndbox></object></annotation>"))
    ds = sardata.load("ssdd", copy, name=fo_dataset_name, overwrite=True, progress=False)
    found = _kinds(sv.validate(ds, progress=False))
    assert found["labels_dropped_at_ingest"].severity == "error"
    assert found["labels_dropped_at_ingest"].details["dropped"] == {"ship": 1}


@pytest.mark.parametrize("key", ["opensarship", "fusar", "whu_opt_sar", "sar_aircraft"])
def test_clean_synthetic_sets_of_every_dataset_have_no_errors(key, tmp_path, fo_dataset_name):
    root = synthesize(key, tmp_path / key, seed=1)
    ds = sardata.load(key, root, name=fo_dataset_name, overwrite=True, progress=False)
    report = sv.validate(ds, progress=False)
    assert report.counts()["error"] == 0, [f.message for f in report.findings if f.severity == "error"]
    assert report.params["samples"] == len(ds)


def test_merged_dataset_validates_and_finds_planted_mmsi_leak(tmp_path):
    from sardata.views.merge import merge

    from test_views_data import delete_datasets

    a = sardata.load("opensarship", synthesize("opensarship", tmp_path / "o", seed=2), name="val-merge-o",
                     overwrite=True, progress=False)
    b = sardata.load("fusar", synthesize("fusar", tmp_path / "f", seed=2), name="val-merge-f", overwrite=True,
                     progress=False)
    try:
        merged, _ = merge([a, b], taxonomy="ships3", name="val-merge", overwrite=True)
        report = sv.validate(merged, progress=False)
        assert report.params["samples"] == len(merged)
        labels = report.distribution["labels_per_split"]["(none)"]  # a merge has no split until one is made
        assert labels == merged.count_values("ground_truth.label")
        ids = merged.exists("mmsi").values("id")[:2]
        merged.select(ids[0]).set_values("split", ["train"])
        merged.select(ids[1]).set_values("split", ["test"])
        merged.select(ids[1]).set_values("mmsi", merged.select(ids[0]).values("mmsi"))
        found = _kinds(sv.validate(merged, progress=False))
        assert sorted(found["shared_mmsi_across_splits"].sample_ids) == sorted(ids)
    finally:
        delete_datasets("val-merge-o", "val-merge-f", "val-merge")


def test_real_samples_validate(real_data, fo_dataset_name):
    ds = sardata.load("ssdd", real_data / "ssdd", name=fo_dataset_name, overwrite=True, progress=False)
    report = sv.validate(ds, progress=False)
    assert report.counts()["error"] == 0, [f.message for f in report.findings if f.severity == "error"]
    assert report.params["samples"] == len(ds) == 4
    # real RBoxes agree with their centre form, real polygons with their boxes
    assert not {"rbox_corner_mismatch", "polygon_box_mismatch"} & set(_kinds(report))
    air = sardata.load("sar_aircraft", real_data / "sar_aircraft", name=fo_dataset_name + "-air", overwrite=True,
                       progress=False)
    try:
        report = sv.validate(air, progress=False)
        assert report.counts()["error"] == 0
        assert sum(sum(v.values()) for v in report.distribution["labels_per_split"].values()) == 26
    finally:
        air.delete()


def test_cli_fail_on_and_json(ssdd_root, tmp_path, fo_dataset_name):
    from sardata.cli import app

    ds = _fresh(ssdd_root, tmp_path, fo_dataset_name)
    out = tmp_path / "report.json"
    clean = runner.invoke(app, ["validate", ds.name, "--fail-on", "error", "--json", str(out)], terminal_width=200)
    assert clean.exit_code == 0, clean.output
    assert json.loads(out.read_text())["counts"]["error"] == 0
    _plant(ds, tmp_path)
    bad = runner.invoke(app, ["validate", ds.name, "--fail-on", "error"], terminal_width=200)
    assert bad.exit_code == 1
    assert "degenerate" in bad.output and "validate-degenerate-box" in bad.output
    assert runner.invoke(app, ["validate", ds.name]).exit_code == 0  # default: report only
    assert runner.invoke(app, ["validate", ds.name, "--fail-on", "fatal"]).exit_code == 1

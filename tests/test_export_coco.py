"""COCO export: pycocotools round trip, replication as hardlinks, FiftyOne re-import, atomicity, overwrite rule."""

import json
import os

import pytest

from test_views_data import make_detection_dataset


@pytest.fixture
def bslm(tmp_path, fo_dataset_name):
    from sardata.views.balance import balance

    ds = make_detection_dataset(tmp_path / "src", fo_dataset_name, inshore=2, offshore=5, test=3, classes=("ship", "boat"))
    balance(ds, by="scene", run_key="bslm")
    return ds


def test_coco_replicated_export_reads_in_pycocotools(bslm, tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from exporters import export_view
    from sardata.views.balance import replication_counts

    out = tmp_path / "coco"
    manifest = export_view(bslm, out, "coco", balance_run="bslm")
    counts = replication_counts(bslm, "bslm")
    gt = COCO(str(out / "annotations" / "train.json"))
    train_ids = bslm.select_by("split", ["train"]).values("id")
    assert len(gt.imgs) == sum(counts[i] for i in train_ids) == 10
    # every replica of one sample carries that sample's id and the same annotations
    by_sample = {}
    for img in gt.imgs.values():
        by_sample.setdefault(img["sample_id"], []).append(img)
    for sid, imgs in by_sample.items():
        assert sorted(i["replica"] for i in imgs) == list(range(counts[sid]))
        boxes = [sorted(tuple(a["bbox"]) for a in gt.imgToAnns[i["id"]]) for i in imgs]
        assert all(b == boxes[0] for b in boxes)
        inodes = {os.stat(out / "images" / "train" / i["file_name"]).st_ino for i in imgs}
        assert len(inodes) == 1  # replicas are hardlinks of the first copy
    rep = [i for i in gt.imgs.values() if i["replica"] == 1][0]
    assert "__rep1." in rep["file_name"]
    # GT evaluated against itself is perfect
    dets = [{**a, "score": 1.0} for a in gt.anns.values()]
    ev = COCOeval(gt, gt.loadRes(dets), "bbox")
    ev.evaluate(); ev.accumulate(); ev.summarize()
    assert ev.stats[1] == pytest.approx(1.0)
    # the test split is untouched: one image per sample
    test = json.loads((out / "annotations" / "test.json").read_text())
    assert [i["replica"] for i in test["images"]] == [0, 0, 0]
    # categories 1-based and shared; rbox and polygon kept
    assert [c["id"] for c in test["categories"]] == [1, 2]
    ann = test["annotations"][0]
    assert len(ann["rbox"]) == 5 and len(ann["segmentation"][0]) == 8
    x, y, w, h = ann["bbox"]
    assert w == pytest.approx(0.25 * 32) and h == pytest.approx(0.3 * 24)
    assert manifest["counts"]["images"] == {"test": 3, "train": 10}
    assert manifest["balance_run"] == "bslm" and len(manifest["checksums"]) == 13 + 2


def test_coco_reimports_in_fiftyone(bslm, tmp_path):
    import fiftyone as fo

    from exporters import export_view

    out = tmp_path / "coco"
    export_view(bslm, out, "coco")
    name = bslm.name + "-re"
    back = fo.Dataset.from_dir(
        dataset_type=fo.types.COCODetectionDataset, data_path=str(out / "images" / "test"),
        labels_path=str(out / "annotations" / "test.json"), name=name, label_types="detections", label_field="gt",
    )
    try:
        orig = bslm.select_by("split", ["test"])
        assert len(back) == len(orig)
        assert back.count("gt.detections") == orig.count("ground_truth.detections")
        b = sorted(tuple(round(v, 4) for v in d.bounding_box) for s in back for d in s.gt.detections)
        o = sorted(tuple(round(v, 4) for v in d.bounding_box) for s in orig for d in s.ground_truth.detections)
        assert b == o
    finally:
        back.delete()


def test_failure_mid_export_leaves_nothing(bslm, tmp_path, monkeypatch):
    import exporters._common as common
    from exporters import export_view

    real = common.shutil.copyfile
    calls = {"n": 0}

    def flaky(src, dst, *a, **k):
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError("disk full (simulated)")
        return real(src, dst, *a, **k)

    monkeypatch.setattr(common.shutil, "copyfile", flaky)
    out = tmp_path / "exp" / "coco"
    with pytest.raises(OSError, match="simulated"):
        export_view(bslm, out, "coco", balance_run="bslm")
    assert not out.exists()
    assert list((tmp_path / "exp").iterdir()) == []


def test_overwrite_rules(bslm, tmp_path):
    from exporters import export_view

    out = tmp_path / "coco"
    first = export_view(bslm, out, "coco")
    again = export_view(bslm, out, "coco")
    assert again["skipped_existing"] and again["fingerprint"] == first["fingerprint"]
    with pytest.raises(FileExistsError, match="overwrite"):
        export_view(bslm, out, "coco", balance_run="bslm")
    replaced = export_view(bslm, out, "coco", balance_run="bslm", overwrite=True)
    assert not replaced["skipped_existing"] and replaced["counts"]["images"]["train"] == 10
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    with pytest.raises(FileExistsError, match="no sardata manifest"):
        export_view(bslm, precious, "coco", overwrite=True)
    assert (precious / "thesis.tex").read_text() == "do not delete"


def test_classification_labels_are_refused(tmp_path, fo_dataset_name):
    from exporters import export_view
    from test_views_data import make_classification_dataset

    ds = make_classification_dataset(tmp_path, fo_dataset_name, ["Cargo", "Tanker"], tiff=False)
    with pytest.raises(ValueError, match="Detections"):
        export_view(ds, tmp_path / "c", "coco")
    assert not (tmp_path / "c").exists()

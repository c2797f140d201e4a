"""YOLO export read back by Ultralytics' own dataset code (detection and OBB)."""

import os

import pytest
import yaml

from test_views_data import make_detection_dataset

os.environ.setdefault("YOLO_OFFLINE", "1")


def _ultra_dataset(yaml_path, split, task):
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    data = check_det_dataset(str(yaml_path))
    cfg = get_cfg(overrides={"task": task, "imgsz": 32, "cache": False})
    return data, build_yolo_dataset(cfg, data[split], batch=2, data=data, mode="val", rect=False)


def test_yolo_export_reads_in_ultralytics_with_replicas(tmp_path, fo_dataset_name):
    from exporters import export_view
    from sardata.views.balance import balance, replication_counts

    ds = make_detection_dataset(tmp_path / "src", fo_dataset_name, inshore=2, offshore=5, test=3, classes=("ship", "boat"))
    balance(ds, by="scene", run_key="bslm")
    out = tmp_path / "yolo"
    export_view(ds, out, "yolo", balance_run="bslm")
    meta = yaml.safe_load((out / "data.yaml").read_text())
    assert meta["path"] == str(out) and meta["names"] == {0: "boat", 1: "ship"}
    assert meta["train"] == "images/train" and meta["val"] == "images/test"
    data, train = _ultra_dataset(out / "data.yaml", "train", "detect")
    counts = replication_counts(ds, "bslm")
    train_ids = ds.select_by("split", ["train"]).values("id")
    assert len(train) == sum(counts[i] for i in train_ids) == 10
    n_boxes = sum(len(lbl["cls"]) for lbl in train.labels)
    assert n_boxes == sum(counts[s.id] * len(s.ground_truth.detections) for s in ds.select(train_ids))
    first = train.labels[0]
    assert first["bboxes"][0].tolist() == pytest.approx([0.225, 0.35, 0.25, 0.3], abs=1e-5)
    reps = sorted((out / "labels" / "train").glob("*__rep1.txt"))
    assert reps and reps[0].stat().st_ino == (out / "labels" / "train" / reps[0].name.replace("__rep1", "")).stat().st_ino


def test_yolo_obb_export(tmp_path, fo_dataset_name):
    from exporters import export_view

    ds = make_detection_dataset(tmp_path / "src", fo_dataset_name, inshore=1, offshore=2, test=1)
    out = tmp_path / "obb"
    export_view(ds, out, "yolo-obb")
    line = (out / "labels" / "test" / "000003.txt").read_text().splitlines()[0].split()
    assert line[0] == "0" and len(line) == 9
    assert [float(v) for v in line[1:3]] == pytest.approx([0.1, 0.2])
    data, test = _ultra_dataset(out / "data.yaml", "val", "obb")
    import numpy as np

    assert len(test) == 1 and np.asarray(test.labels[0]["segments"]).shape == (2, 4, 2)


def test_class_ids_agree_between_exports_of_different_views(tmp_path, fo_dataset_name):
    from exporters import export_view

    ds = make_detection_dataset(tmp_path / "src", fo_dataset_name, inshore=0, offshore=1, test=2, classes=("ship", "boat"))
    # the train split holds one image with one "ship" box only; the dataset also has "boat"
    export_view(ds.select_by("split", ["train"]), tmp_path / "train", "yolo")
    export_view(ds.select_by("split", ["test"]), tmp_path / "test", "yolo")
    names = [yaml.safe_load((tmp_path / d / "data.yaml").read_text())["names"] for d in ("train", "test")]
    assert names[0] == names[1] == {0: "boat", 1: "ship"}
    assert (tmp_path / "train" / "labels" / "train" / "000000.txt").read_text().startswith("1 ")

"""Predictions go back to the right FiftyOne sample, by id, for every kind — replicated exports included."""

import json
import os
import random

import numpy as np
import pytest
from PIL import Image

from exporters.contract import SampleIdMap, parse_replica
from sardata.predictions import add_detections, add_file_classifications, add_segmentations, set_labels
from test_views_data import make_classification_dataset, make_detection_dataset, make_segmentation_dataset


def _stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def test_detections_go_to_their_samples_once_per_replicated_sample(tmp_path, fo_dataset_name):
    from exporters import export_view
    from sardata.views.balance import balance

    ds = make_detection_dataset(tmp_path / "src", fo_dataset_name)
    balance(ds, by="scene", run_key="bslm")  # inshore training images exported 3 times
    out = tmp_path / "coco"
    export_view(ds, out, "coco", balance_run="bslm")
    coco = json.loads((out / "annotations" / "train.json").read_text())
    assert len(coco["images"]) > len({im["sample_id"] for im in coco["images"]})  # replicas present
    # a "perfect detector" on every exported image, replicas included, each box tagged with its image's file
    by_image = {im["id"]: im for im in coco["images"]}
    results = [{"image_id": a["image_id"], "sample_id": by_image[a["image_id"]]["sample_id"],
                "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9,
                "file": by_image[a["image_id"]]["file_name"]} for a in coco["annotations"]]
    random.Random(0).shuffle(results)
    view = add_detections(ds, results, coco["categories"])
    assert len(view) == len({im["sample_id"] for im in coco["images"]})
    for sample in view:
        gt = sample.ground_truth.detections
        pred = sample.predictions.detections
        assert len(pred) == len(gt)  # one image's boxes, not one set per replica
        np.testing.assert_allclose(sorted(d.bounding_box for d in pred), sorted(d.bounding_box for d in gt),
                                   atol=1e-2)
        assert {d.label for d in pred} == {d.label for d in gt}


def test_unknown_sample_ids_are_refused(tmp_path, fo_dataset_name):
    import fiftyone as fo

    ds = make_detection_dataset(tmp_path / "src", fo_dataset_name)
    with pytest.raises(ValueError, match="not in dataset"):
        set_labels(ds, "predictions", {"0" * 24: fo.Classification(label="x")})
    with pytest.raises(ValueError, match="sample_id"):
        add_detections(ds, [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1.0}])


def test_classifications_and_heatmaps_follow_the_manifest(tmp_path, fo_dataset_name):
    import fiftyone as fo

    from exporters import export_view
    from sardata.views.balance import balance

    ds = make_classification_dataset(tmp_path / "src", fo_dataset_name, ["Cargo", "Tanker", "Cargo", "Cargo", "Tanker"],
                                     splits=["train", "train", "train", "train", "test"])
    balance(ds, by="ground_truth.label", run_key="rep")  # the single training Tanker exported 3 times
    out = tmp_path / "if"
    export_view(ds, out, "imagefolder", balance_run="rep")
    files = sorted(str(p) for p in out.rglob("*.png"))
    assert any(parse_replica(f)[1] for f in files)
    # each file "predicts" the stem of its original file (a replica says "replica"), with a unique confidence
    preds = [("replica" if parse_replica(f)[1] else _stem(f), 0.5 + i / 100) for i, f in enumerate(files)]
    cams = []
    for i, f in enumerate(files):
        cam = tmp_path / "cams" / f"{i}_cam.png"
        cam.parent.mkdir(exist_ok=True)
        Image.fromarray(np.full((4, 4), i, np.uint8)).save(cam)
        cams.append(cam if i % 2 == 0 else None)
    written = add_file_classifications(ds, out, files, preds, heatmaps=cams)
    assert written == len(ds)
    lookup = SampleIdMap(out)
    for sample in ds:
        assert sample.predictions.label == _stem(sample.filepath)  # the original's prediction, never a replica's
        index = next(i for i, f in enumerate(files) if lookup[f] == sample.id and not parse_replica(f)[1])
        assert sample.predictions.confidence == pytest.approx(0.5 + index / 100)
        if index % 2 == 0:
            assert isinstance(sample.gradcam, fo.Heatmap) and sample.gradcam.map_path.endswith(f"/{index}_cam.png")
        else:
            assert sample.gradcam is None


def test_segmentation_masks_come_back_by_id_through_the_masks_manifest(tmp_path, fo_dataset_name):
    from exporters import export_view
    from sardata.views.balance import balance

    ds = make_segmentation_dataset(tmp_path / "src", fo_dataset_name, n=4)
    balance(ds, by="tile_id", run_key="rep")  # p2 (tile1) is replicated to match tile0's two patches
    out = tmp_path / "masks"
    manifest = export_view(ds, out, "masks", balance_run="rep")
    train_masks = sorted((out / "train" / "masks").glob("*.png"))
    assert any(parse_replica(p.name)[1] for p in train_masks)
    pred_dir = tmp_path / "pred"
    pred_dir.mkdir()
    value_of = {}  # sample id -> the value predicted on its original mask
    for i, mask in enumerate(train_masks):
        replica = parse_replica(mask.name)[1]
        value = 200 if replica else 10 * (i + 1)  # a replica's prediction must not win
        Image.fromarray(np.full((16, 16), value, np.uint8)).save(pred_dir / mask.name)
        if not replica:
            value_of[manifest["sample_ids"][f"train/masks/{mask.name}"]] = value
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(pred_dir / "orphan.png")
    (pred_dir / "class_map.json").write_text(json.dumps({"0": "background", "10": "farmland", "40": "water"}))

    with pytest.warns(UserWarning, match="1 predicted masks have no sample id"):
        n = add_segmentations(ds.view(), pred_dir, out, "train")
    train = ds.select_by("split", ["train"])
    assert n == len(train) == 3
    for sample in train:
        mask = sample.predictions.get_mask()
        assert int(mask[0, 0]) == value_of[sample.id] != 200
        assert _stem(sample.predictions.mask_path) == _stem(sample.filepath)
    assert ds.select_by("split", ["test"]).first().predictions is None
    assert ds.mask_targets["predictions"][40] == "water"
    with pytest.raises(ValueError, match="manifest"):
        add_segmentations(ds, pred_dir, tmp_path / "not_an_export", "train")


def test_cli_train_segment_puts_the_predicted_masks_on_the_predicted_split(tmp_path, fo_dataset_name):
    import fiftyone as fo
    from typer.testing import CliRunner

    from exporters import export_view
    from sardata.cli import app

    rng = np.random.default_rng(0)
    samples = []
    for i in range(6):
        labels = np.where(np.arange(32)[None, :] < 16, 0, 10).astype(np.uint8).repeat(32, 0)
        sar = (labels * 10 + rng.normal(0, 5, labels.shape)).clip(0, 255).astype(np.uint8)
        for kind, array in (("sar", sar), ("lbl", labels)):
            (tmp_path / kind).mkdir(exist_ok=True)
            Image.fromarray(array).save(tmp_path / kind / f"t{i}.png")
        samples.append(fo.Sample(filepath=str(tmp_path / "sar" / f"t{i}.png"), split="train" if i < 4 else "val",
                                 ground_truth=fo.Segmentation(mask_path=str(tmp_path / "lbl" / f"t{i}.png"))))
    ds = fo.Dataset(fo_dataset_name)
    ds.add_samples(samples)
    ds.default_mask_targets = {0: "background", 10: "farmland"}
    ds.save()
    export_view(ds, tmp_path / "masks", "masks")
    result = CliRunner().invoke(app, ["train", "segment", "--data", str(tmp_path / "masks"), "--no-cc", "--epochs",
                                      "1", "--batch-size", "2", "--out", str(tmp_path / "run"), "--device", "cpu",
                                      "--dataset", ds.name, "--field", "lanet"])
    assert result.exit_code == 0, result.output
    assert "2 predicted masks loaded" in " ".join(result.output.split())
    with_masks = ds.exists("lanet")
    assert sorted(with_masks.values("split")) == ["val", "val"]
    for sample in with_masks:
        assert _stem(sample.lanet.mask_path) == _stem(sample.filepath)
        assert sample.lanet.get_mask().shape == (32, 32)

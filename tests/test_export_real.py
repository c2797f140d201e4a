"""Exports of the real dataset samples (../shared/data/real) ingested by sardata's own loaders."""

import json

import numpy as np
import pytest


def test_real_ssdd_to_coco_keeps_rboxes_and_polygons(real_data, tmp_path, fo_dataset_name):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    import sardata.datasets as sds
    from exporters import export_view

    ds = sds.load("ssdd", real_data / "ssdd", name=fo_dataset_name)
    out = tmp_path / "coco"
    manifest = export_view(ds, out, "coco")
    n_boxes = 0
    for split, n_images in manifest["counts"]["images"].items():
        gt = COCO(str(out / "annotations" / f"{split}.json"))
        assert len(gt.imgs) == n_images
        n_boxes += len(gt.anns)
        ev = COCOeval(gt, gt.loadRes([{**a, "score": 1.0} for a in gt.anns.values()]), "bbox")
        ev.evaluate(); ev.accumulate(); ev.summarize()
        assert ev.stats[1] == pytest.approx(1.0)
        anns = list(gt.anns.values())
        assert all(len(a["rbox"]) == 5 for a in anns) and all(a["segmentation"] for a in anns)
    assert n_boxes == ds.count("ground_truth.detections")
    assert set(manifest["checksums"]) >= {"annotations/train.json", "annotations/test.json"}


def test_real_opensarship_grouped_split_and_lossless_imagefolder(real_data, tmp_path, fo_dataset_name):
    import sardata.datasets as sds
    from exporters import export_view
    from sardata.views.split import leakage_check, split

    ds = sds.load("opensarship", real_data / "opensarship", name=fo_dataset_name)
    split(ds, method="group", group_field="mmsi", ratios=(0.8, 0.2), seed=0)
    assert leakage_check(ds, "mmsi").ok
    out = tmp_path / "if"
    manifest = export_view(ds, out, "imagefolder", image_source="original", original_format="npy")
    assert sum(manifest["counts"]["images"].values()) == len(ds)
    sample = ds.first()
    stem = sample.sar_path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    found = list(out.glob(f"{sample.split}/*/{stem}.npy"))
    assert len(found) == 1
    from sardata.sarimage import read_image

    assert np.array_equal(np.load(found[0]), read_image(sample.sar_path))
    assert json.loads((out / "manifest.json").read_text())["image_source"] == "original"

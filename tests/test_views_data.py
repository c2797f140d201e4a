"""Tiny FiftyOne datasets with the fields the loaders write, for the views and exporter tests (imported by them)."""

from __future__ import annotations

import numpy as np
from PIL import Image


def fresh_dataset(name):
    """A new empty dataset called ``name``, replacing a leftover of an earlier run (FiftyOne may share one database
    service between processes, so leftovers can outlive their session)."""
    import fiftyone as fo

    if fo.dataset_exists(name):
        fo.delete_dataset(name)
    return fo.Dataset(name)


def delete_datasets(*names):
    import fiftyone as fo

    for name in names:
        if fo.dataset_exists(name):
            fo.delete_dataset(name)


def _png(path, seed, size=(32, 24)):
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, size=(size[1], size[0]), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return str(path)


def _tiff(path, seed, size=(32, 24)):
    import tifffile

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, rng.gamma(1.0, 1.0, size=(size[1], size[0])).astype(np.float32))
    return str(path)


def make_detection_dataset(tmp_path, name, inshore=2, offshore=6, test=3, classes=("ship",), seed=0):
    """SSDD-like: train images split into inshore/offshore scenes, test images, 1-2 boxes each, rboxes + polygons."""
    import fiftyone as fo

    ds = fresh_dataset(name)
    samples = []
    specs = [("train", "inshore")] * inshore + [("train", "offshore")] * offshore + [("test", "offshore")] * test
    for i, (split, scene) in enumerate(specs):
        filepath = _png(tmp_path / name / f"{i:06d}.png", seed + i)
        dets, rboxes, polys = [], [], []
        for j in range(1 + i % 2):
            x, y, w, h = 0.1 + 0.4 * j, 0.2, 0.25, 0.3
            label = classes[(i + j) % len(classes)]
            dets.append(fo.Detection(label=label, bounding_box=[x, y, w, h]))
            corners = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
            rboxes.append(fo.Polyline(label=label, points=[corners], closed=True, filled=False,
                                      cx=(x + w / 2) * 32, cy=(y + h / 2) * 24, w=w * 32, h=h * 24, theta=0.0))
            polys.append(fo.Polyline(label=label, points=[corners], closed=True, filled=True))
        samples.append(fo.Sample(
            filepath=filepath, sar_path=filepath, split=split, source="ssdd",
            scene=fo.Classification(label=scene), ground_truth=fo.Detections(detections=dets),
            rboxes=fo.Polylines(polylines=rboxes), polygons=fo.Polylines(polylines=polys),
        ))
    ds.add_samples(samples)
    ds.compute_metadata()
    return ds


def make_classification_dataset(tmp_path, name, labels, mmsis=None, splits=None, source=None, seed=0, tiff=True):
    """OpenSARShip/FUSAR-like chips: float TIFF sar_path, PNG filepath, Classification, mmsi."""
    import fiftyone as fo

    ds = fresh_dataset(name)
    samples = []
    for i, label in enumerate(labels):
        png = _png(tmp_path / name / "display" / f"chip{i:04d}.png", seed + i)
        sar = _tiff(tmp_path / name / "sar" / f"chip{i:04d}.tif", seed + i) if tiff else png
        sample = fo.Sample(filepath=png, sar_path=sar, source=source or name, ground_truth=fo.Classification(label=label))
        if mmsis is not None:
            sample["mmsi"] = int(mmsis[i])
        if splits is not None:
            sample["split"] = splits[i]
        samples.append(sample)
    ds.add_samples(samples)
    return ds


def make_segmentation_dataset(tmp_path, name, n=4, seed=0):
    """WHU-OPT-SAR-like patches: SAR PNG, optical PNG, uint8 mask with values 0/10/40, tile_id, split."""
    import fiftyone as fo

    ds = fresh_dataset(name)
    samples = []
    rng = np.random.default_rng(seed)
    for i in range(n):
        sar = _png(tmp_path / name / "sar" / f"p{i}.png", seed + i, size=(16, 16))
        opt = _png(tmp_path / name / "opt" / f"p{i}.png", seed + 100 + i, size=(16, 16))
        mask = rng.choice(np.array([0, 10, 40], dtype=np.uint8), size=(16, 16))
        mask_path = tmp_path / name / "lbl" / f"p{i}.png"
        mask_path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask).save(mask_path)
        samples.append(fo.Sample(
            filepath=sar, sar_path=sar, optical_path=opt, tile_id=f"tile{i // 2}", split="train" if i < n - 1 else "test",
            source="whu_opt_sar", ground_truth=fo.Segmentation(mask_path=str(mask_path)),
        ))
    ds.add_samples(samples)
    ds.default_mask_targets = {0: "background", 10: "farmland", 40: "water"}
    ds.save()
    return ds


def test_builders_make_the_fields_the_views_rely_on(tmp_path, fo_dataset_name):
    ds = make_detection_dataset(tmp_path, fo_dataset_name)
    assert len(ds) == 11
    assert ds.count_values("scene.label") == {"inshore": 2, "offshore": 9}
    assert ds.count("ground_truth.detections") == sum(1 + i % 2 for i in range(11))
    assert ds.first().metadata.width == 32

"""ImageFolder, masks and HF exports read back by torchvision, PIL and datasets.load_from_disk."""

import json
import os

import numpy as np
import pytest

from test_views_data import make_classification_dataset, make_detection_dataset, make_segmentation_dataset

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def ships(tmp_path, fo_dataset_name):
    return make_classification_dataset(
        tmp_path / "src", fo_dataset_name, ["Cargo", "Tanker", "Cargo", "Fishing", "Cargo"],
        mmsis=[1, 2, 3, 4, 5], splits=["train", "train", "train", "train", "test"],
    )


def test_imagefolder_display_with_replicas_reads_in_torchvision(ships, tmp_path):
    from torchvision.datasets import ImageFolder

    from exporters import export_view
    from sardata.views.balance import balance

    balance(ships, by="ground_truth.label", run_key="cls")  # Cargo 2 → Tanker, Fishing ×2
    out = tmp_path / "if"
    export_view(ships, out, "imagefolder", balance_run="cls")
    train = ImageFolder(str(out / "train"))
    assert train.classes == ["Cargo", "Fishing", "Tanker"]
    assert sorted(np.bincount(train.targets).tolist()) == [2, 2, 2]
    rep = next((out / "train" / "Tanker").glob("*__rep1.png"))
    assert rep.stat().st_ino == (out / "train" / "Tanker" / rep.name.replace("__rep1", "")).stat().st_ino
    assert len(ImageFolder(str(out / "test"))) == 1


@pytest.mark.parametrize("fmt", ["tiff", "npy"])
def test_imagefolder_original_is_lossless(ships, tmp_path, fmt):
    import tifffile

    from exporters import export_view

    out = tmp_path / fmt
    export_view(ships, out, "imagefolder", image_source="original", original_format=fmt)
    sample = ships.select_by("split", ["test"]).first()
    original = tifffile.imread(sample.sar_path)
    path = out / "test" / "Cargo" / f"chip0004.{'tif' if fmt == 'tiff' else 'npy'}"
    back = tifffile.imread(path) if fmt == "tiff" else np.load(path)
    assert back.dtype == np.float32 and np.array_equal(back, original)


def test_masks_export_layout_and_values(tmp_path, fo_dataset_name):
    from PIL import Image

    from exporters import export_view

    ds = make_segmentation_dataset(tmp_path / "src", fo_dataset_name, n=4)
    out = tmp_path / "masks"
    manifest = export_view(ds, out, "masks")
    assert json.loads((out / "class_map.json").read_text()) == {"0": "background", "10": "farmland", "40": "water"}
    for sample in ds:
        split = sample.split
        stem = os.path.splitext(os.path.basename(sample.filepath))[0]
        mask = np.asarray(Image.open(out / split / "masks" / f"{stem}.png"))
        assert mask.dtype == np.uint8 and np.array_equal(mask, np.asarray(Image.open(sample.ground_truth.mask_path)))
        assert (out / split / "images" / f"{stem}.png").is_file()
        assert (out / split / "optical" / f"{stem}.png").is_file()
    assert manifest["mask_values"] == [0, 10, 40]


def test_hf_classification_and_detection_round_trip(ships, tmp_path, fo_dataset_name):
    import datasets

    from exporters import export_view

    out = tmp_path / "hf"
    export_view(ships, out, "hf")
    dd = datasets.load_from_disk(str(out))
    assert set(dd) == {"train", "test"} and dd["train"].num_rows == 4
    names = dd["train"].features["label"].names
    assert [names[i] for i in dd["train"]["label"]] == ships.select_by("split", ["train"]).values("ground_truth.label")
    assert dd["train"]["sample_id"] == ships.select_by("split", ["train"]).values("id")
    assert dd["test"][0]["image"].size == (32, 24) and dd["test"][0]["mmsi"] == 5

    from sardata.views.balance import balance

    balance(ships, by="ground_truth.label", run_key="cls")  # Cargo 2, Tanker 1 → 2, Fishing 1 → 2
    export_view(ships, tmp_path / "hfrep", "hf", balance_run="cls")
    train = datasets.load_from_disk(str(tmp_path / "hfrep"))["train"]
    assert train.num_rows == 6 and sorted(train["replica"]) == [0, 0, 0, 0, 1, 1]
    assert datasets.load_from_disk(str(tmp_path / "hfrep"))["test"].num_rows == 1

    det = make_detection_dataset(tmp_path / "src2", fo_dataset_name + "-det", inshore=1, offshore=2, test=1)
    try:
        export_view(det, tmp_path / "hfdet", "hf")
        dd = datasets.load_from_disk(str(tmp_path / "hfdet"))
        row = dd["test"][0]
        assert row["objects"]["bbox"][0] == pytest.approx([0.1 * 32, 0.2 * 24, 0.25 * 32, 0.3 * 24], abs=1e-4)
        assert row["scene"] == "offshore"
    finally:
        det.delete()


def test_masks_export_replicates_image_optical_and_mask_together(tmp_path, fo_dataset_name):
    from exporters import export_view
    from sardata.views.balance import balance

    ds = make_segmentation_dataset(tmp_path / "src", fo_dataset_name, n=4)  # train: tile0 ×2, tile1 ×1
    balance(ds, by="tile_id", run_key="tiles")
    out = tmp_path / "masks"
    manifest = export_view(ds, out, "masks", balance_run="tiles")
    assert manifest["counts"]["images"] == {"test": 1, "train": 4}
    for sub in ("images", "optical", "masks"):
        rep = out / "train" / sub / "p2__rep1.png"
        assert rep.stat().st_ino == (out / "train" / sub / "p2.png").stat().st_ino
    assert not list((out / "test").rglob("*__rep*"))

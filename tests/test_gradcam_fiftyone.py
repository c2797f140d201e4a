"""Test predictions and Grad-CAM maps of a classifier trained on sardata's ImageFolder export land on the FiftyOne
samples they were exported from."""

import fiftyone as fo
import numpy as np
import torch
from PIL import Image

from exporters import export_view
from sardata.train.classifier import ClassifierConfig, train


def test_gradcam_heatmaps_added_to_the_exported_samples(tmp_path, fo_dataset_name):
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    samples = []
    for i in range(16):
        label = ["Cargo", "Tanker"][i % 2]
        chip = rng.gamma(1.0, 40.0, (32, 32))
        chip[14:18, 4:28 if label == "Cargo" else 12:20] = 250
        path = tmp_path / "chips" / f"chip_{i:02d}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(np.clip(chip, 0, 255).astype(np.uint8)).save(path)
        samples.append(fo.Sample(filepath=str(path), ground_truth=fo.Classification(label=label),
                                 split="test" if i >= 12 else "train"))
    dataset = fo.Dataset(fo_dataset_name)
    dataset.add_samples(samples)
    export_dir = tmp_path / "export"
    export_view(dataset, export_dir, "imagefolder")

    result = train(ClassifierConfig(data=export_dir, model="cnn", out_dir=tmp_path / "run", image_size=32, epochs=1,
                                    batch_size=8, workers=0, progress=False, gradcam=3, patience=0,
                                    fiftyone_dataset=dataset.name))
    assert result["fiftyone_samples"] == 4
    predicted = dataset.exists("predictions")
    assert set(predicted.distinct("split")) == {"test"} and len(predicted) == 4
    correct = sum(p.label == g.label for p, g in zip(predicted.values("predictions"), predicted.values("ground_truth")))
    assert correct == round(result["test"]["accuracy"] * 4)
    with_maps = dataset.exists("gradcam")
    assert len(with_maps) == 3
    assert set(with_maps.distinct("split")) == {"test"}
    for heatmap in with_maps.values("gradcam"):
        assert isinstance(heatmap, fo.Heatmap)
        assert np.asarray(Image.open(heatmap.map_path)).shape == (32, 32)

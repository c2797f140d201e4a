"""Classifier trainer: models, frozen fine-tuning, metrics beside the majority baseline, Grad-CAM, train/resume."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sardata.train.classifier import (
    ChipTransform,
    ClassifierConfig,
    FineTuned,
    build_classifier,
    classification_metrics,
    format_report,
    load_classifier,
    train,
)
from sardata.train.gradcam import GradCAM, save_overlays


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def make_imagefolder(root: Path, size: int = 32, per_class=(("Cargo", 10, 3), ("Tanker", 6, 2), ("Fishing", 4, 2))):
    """Ships whose length depends on the class, on speckle; 8-bit PNG for Cargo/Tanker, float .npy for Fishing."""
    rng = np.random.default_rng(0)
    lengths = {"Cargo": 20, "Tanker": 12, "Fishing": 5}
    for name, n_train, n_test in per_class:
        for split, n in (("train", n_train), ("test", n_test)):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                chip = rng.gamma(1.0, 0.1, (size, size)).astype(np.float32)
                c = size // 2
                half = lengths[name] // 2
                chip[c - 2:c + 2, c - half:c + half] = 1.5
                if name == "Fishing":
                    np.save(folder / f"{i}.npy", chip)  # float amplitude chip
                else:
                    Image.fromarray((np.clip(chip, 0, 1) * 255).astype(np.uint8)).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_imagefolder(tmp_path_factory.mktemp("imagefolder"))


@pytest.mark.parametrize("name", ["cnn", "vgg16", "resnet50", "f-vgg16", "f-resnet50"])
def test_models_output_one_logit_per_class(name):
    with pytest.warns(UserWarning, match="random") if name.startswith("f-") else _no_warning():
        model = build_classifier(name, 3)
    model.eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 64, 64)).shape == (2, 3)


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("name", ["f-resnet50", "f-vgg16"])
def test_fine_tuning_trains_the_head_only(name):
    torch.manual_seed(0)
    with pytest.warns(UserWarning):
        model = build_classifier(name, 3)
    assert isinstance(model, FineTuned)
    backbone_before = {k: v.clone() for k, v in model.backbone.state_dict().items()}  # weights and BN statistics
    head_before = {k: v.clone() for k, v in model.head.state_dict().items()}
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    assert not model.backbone.training and model.head.training
    for _ in range(2):
        loss = torch.nn.functional.cross_entropy(model(torch.rand(4, 3, 64, 64)), torch.tensor([0, 1, 2, 0]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(torch.equal(v, model.backbone.state_dict()[k]) for k, v in backbone_before.items())
    assert all(not torch.equal(v, model.head.state_dict()[k]) for k, v in head_before.items())


def test_metrics_put_majority_baseline_beside_and_flag_collapse():
    names = ["Cargo", "Tanker", "Fishing"]
    y_true = [0, 0, 0, 1, 2]
    collapsed = classification_metrics(y_true, [0, 0, 0, 0, 0], names)
    assert collapsed["collapsed"] and collapsed["accuracy"] == pytest.approx(0.6)
    assert collapsed["majority_accuracy"] == pytest.approx(0.6) and collapsed["majority_class"] == "Cargo"
    assert collapsed["per_class"]["Tanker"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    report = format_report(collapsed)
    assert "majority" in report and "WARNING" in report and "single class" in report
    good = classification_metrics(y_true, [0, 0, 1, 1, 2], names, train_labels=[1, 1, 1, 0])
    assert not good["collapsed"] and good["accuracy"] == pytest.approx(0.8)
    assert good["majority_class"] == "Tanker" and good["majority_accuracy"] == pytest.approx(0.2)
    assert good["per_class"]["Cargo"]["recall"] == pytest.approx(2 / 3)
    assert good["confusion_matrix"][0] == [2, 1, 0]
    # by hand: F1 per class 0.8 (P 1, R 2/3), 2/3 (P 1/2, R 1), 1.0; supports 3, 1, 1
    assert good["f1_macro"] == pytest.approx((0.8 + 2 / 3 + 1.0) / 3)
    assert good["f1_weighted"] == pytest.approx((3 * 0.8 + 2 / 3 + 1.0) / 5)
    assert "WARNING" not in format_report(good)


@pytest.mark.parametrize("name", ["cnn", "f-resnet50"])
def test_gradcam_shape_and_range(name, tmp_path):
    torch.manual_seed(0)
    with pytest.warns(UserWarning) if name.startswith("f-") else _no_warning():
        model = build_classifier(name, 3)
    images = torch.rand(2, 3, 64, 64)
    with GradCAM(model) as cam:
        maps = cam(images)
        fixed = cam(images, class_idx=1)
    assert maps.shape == (2, 64, 64) and fixed.shape == (2, 64, 64)
    assert maps.dtype == np.float32 and maps.min() >= 0.0 and maps.max() <= 1.0
    assert np.allclose(maps.reshape(2, -1).max(axis=1), 1.0)
    paths = save_overlays(images, maps, tmp_path, ["a", "b"])
    cam_png = np.asarray(Image.open(paths[0][0]))
    assert cam_png.shape == (64, 64) and cam_png.max() == 255
    assert np.asarray(Image.open(paths[0][1])).shape == (64, 64, 3)


def test_gradcam_heatmaps_into_fiftyone(tmp_path, fo_dataset_name):
    import fiftyone as fo

    from sardata.predictions import add_heatmaps

    image = tmp_path / "chip.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(image)
    dataset = fo.Dataset(fo_dataset_name)
    dataset.add_samples([fo.Sample(filepath=str(image)) for _ in range(2)])
    paths = save_overlays(np.zeros((2, 16, 16)), np.random.rand(2, 16, 16).astype(np.float32), tmp_path, ["x", "y"])
    ids = dataset.values("id")
    add_heatmaps(dataset, {ids[1]: paths[1][0], ids[0]: paths[0][0]})
    heatmaps = dataset.values("gradcam")
    assert all(isinstance(h, fo.Heatmap) for h in heatmaps)
    assert heatmaps[1].map_path == str(paths[1][0].resolve()) and heatmaps[0].map_path == str(paths[0][0].resolve())
    with pytest.raises(FileNotFoundError, match="nothing.png"):
        add_heatmaps(dataset, {ids[0]: tmp_path / "nothing.png"})


def test_validation_carve_out_keeps_replicas_with_their_original():
    from exporters.contract import parse_replica
    from sardata.train.classifier import _stratified_split

    def original_name(path):
        return parse_replica(path)[0]
    paths, targets = [], []
    for cls in range(2):
        for i in range(10):
            for rep in range(3 if cls == 1 else 1):  # class 1 replicated ×3, as a balance run writes it
                paths.append(f"/d/train/c{cls}/{i}" + (f"__rep{rep}" if rep else "") + ".png")
                targets.append(cls)
    train_idx, val_idx = _stratified_split(paths, targets, 0.2, seed=0)
    assert not set(train_idx) & set(val_idx)
    train_names = {original_name(paths[i]) + str(targets[i]) for i in train_idx}
    val_names = [original_name(paths[i]) + str(targets[i]) for i in val_idx]
    assert not train_names & set(val_names) and len(val_names) == len(set(val_names)) == 4
    assert all("__rep" not in paths[i] for i in val_idx)
    assert len(train_idx) + len(val_idx) + 2 * 2 == len(paths)  # the validation originals' 2×2 copies are dropped


def test_test_transform_has_no_augmentation():
    pixels = np.random.default_rng(1).random((40, 30)).astype(np.float32)
    test_tf = ChipTransform(32, [0.5] * 3, [0.25] * 3, train=False)
    assert torch.equal(test_tf(pixels), test_tf(pixels))
    train_tf = ChipTransform(32, [0.5] * 3, [0.25] * 3, train=True)
    torch.manual_seed(0)
    assert any(not torch.equal(train_tf(pixels), train_tf(pixels)) for _ in range(5))


def test_train_resume_and_reload(folder, tmp_path):
    out = tmp_path / "cnn"
    cfg = dict(data=folder, model="cnn", out_dir=out, image_size=32, batch_size=8, workers=0, progress=False,
               balance="sampler", gradcam=2, patience=0)
    first = train(ClassifierConfig(epochs=2, **cfg))
    for name in ("model_0.pth", "model_1.pth", "checkpoint.pth", "best.pth", "metrics.csv", "metrics.png",
                 "test_metrics.json", "confusion_matrix_test.png", "report_test.txt"):
        assert (out / name).is_file(), name
    assert [r["epoch"] for r in first["history"]] == [0, 1]
    assert {"loss", "val_f1_macro", "val_accuracy"} <= set(first["history"][0])
    test = first["test"]
    assert test["n"] == 7 and set(test["per_class"]) == {"Cargo", "Tanker", "Fishing"}
    assert "majority_accuracy" in test and "majority" in first["report"]
    assert len(list((out / "gradcam").glob("*_overlay.png"))) == 2
    saved = json.loads((out / "config.json").read_text())
    assert saved["model_kwargs"]["classes"] == ["Cargo", "Fishing", "Tanker"]

    second = train(ClassifierConfig(epochs=3, resume=out / "checkpoint.pth", **cfg))
    assert [r["epoch"] for r in second["history"]] == [0, 1, 2] and (out / "model_2.pth").is_file()

    model, args = load_classifier(out / "best.pth", device="cpu")
    assert args["model_kwargs"]["name"] == "cnn" and not model.training
    with pytest.raises(ValueError, match="resume"):
        ClassifierConfig(data=folder, test_only=True).validate()
    with pytest.raises(ValueError, match="unknown model"):
        ClassifierConfig(data=folder, model="alexnet").validate()


def test_cli_classifier(folder, tmp_path):
    from typer.testing import CliRunner

    from sardata.cli import app

    result = CliRunner().invoke(app, ["train", "classifier", "--data", str(folder), "--model", "cnn", "--epochs", "1",
                                      "--image-size", "32", "--batch-size", "16", "--workers", "0", "--gradcam", "0",
                                      "--balance", "weights", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "majority" in result.output and "macro F1" in result.output
    bad = CliRunner().invoke(app, ["train", "classifier", "--data", str(tmp_path / "none")])
    assert bad.exit_code == 1 and "train/" in bad.output


def test_fine_tuned_backbone_loads_weights_file(tmp_path):
    import torchvision

    torch.manual_seed(1)
    reference = torchvision.models.resnet50(weights=None)
    path = tmp_path / "resnet50-imagenet.pth"
    torch.save(reference.state_dict(), path)
    model = build_classifier("f-resnet50", 4, weights=str(path))
    assert torch.equal(model.backbone.conv1.weight, reference.conv1.weight)
    assert torch.equal(model.backbone.layer4[2].bn3.running_var, reference.layer4[2].bn3.running_var)
    assert model.head.out_features == 4 and not model.backbone.conv1.weight.requires_grad
    with pytest.raises(ValueError, match="torchvision weights name"):
        build_classifier("f-vgg16", 4, weights=str(tmp_path / "missing.pth"))


# --------------------------------------------------------------------------------------------- Grad-CAM target


@pytest.mark.parametrize("name", ["resnet50", "f-resnet50", "vgg16", "f-vgg16", "cnn"])
def test_gradcam_targets_the_block_output(name):
    """pytorch-grad-cam's convention: ResNet layer4[-1] (residual + shortcut, after ReLU), VGG the last ReLU."""
    import torchvision

    from sardata.train.gradcam import find_target_layer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_classifier(name, 3).eval()
    net = getattr(model, "backbone", model)
    target = find_target_layer(model)
    if isinstance(net, torchvision.models.ResNet):
        assert target is net.layer4[-1]
    else:
        assert target is net.features[-2] and isinstance(target, torch.nn.ReLU)  # the ReLU before the last pool
    x = torch.rand(1, 3, 64, 64)
    with GradCAM(model) as cam:
        cam(x)
        hooked = cam._activations
    with torch.no_grad():
        if isinstance(net, torchvision.models.ResNet):
            expected = net.layer4(net.layer3(net.layer2(net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(x))))))))
        else:
            expected = net.features[:-1](x)
    assert torch.allclose(hooked, expected, atol=1e-5) and hooked.min() >= 0  # the activated block output


# --------------------------------------------------------------------------------------------- frozen / unfrozen


def test_frozen_and_unfrozen_fine_tuning():
    from sardata.train.classifier import head_of, keep_frozen_in_eval, set_trainable

    torch.manual_seed(0)
    model = set_trainable(build_classifier("cnn", 3), "head")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"classifier.3.weight", "classifier.3.bias"} and head_of(model) is model.classifier
    before = {k: v.clone() for k, v in model.features.state_dict().items()}  # weights and BN statistics
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    keep_frozen_in_eval(model)
    assert not model.features[1].training and model.classifier[2].training  # BN frozen, head dropout on
    for _ in range(2):
        loss = torch.nn.functional.cross_entropy(model(torch.rand(4, 3, 32, 32)), torch.tensor([0, 1, 2, 0]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(torch.equal(v, model.features.state_dict()[k]) for k, v in before.items())
    with pytest.warns(UserWarning, match="random"):
        unfrozen = set_trainable(build_classifier("f-resnet50", 3), "all")
    assert all(p.requires_grad for p in unfrozen.parameters())
    unfrozen.train()
    assert unfrozen.backbone.training and unfrozen.backbone.layer1[0].bn1.training
    with pytest.raises(ValueError, match="trainable"):
        set_trainable(model, "some")


def test_init_from_an_earlier_stage_keeps_its_frozen_layers(folder, tmp_path):
    cfg = dict(model="cnn", image_size=32, batch_size=8, workers=0, progress=False, gradcam=0, patience=0)
    first = train(ClassifierConfig(data=folder, out_dir=tmp_path / "base", epochs=1, **cfg))
    other = make_imagefolder(tmp_path / "other", size=40)
    second = train(ClassifierConfig(data=other, out_dir=tmp_path / "ft", epochs=1, init_from=first["best"],
                                    trainable="head", **cfg))
    base = torch.load(first["best"], weights_only=True)["model"]
    tuned = torch.load(second["best"], weights_only=True)["model"]
    assert all(torch.equal(base[k], tuned[k]) for k in base if k.startswith("features."))
    assert not torch.equal(base["classifier.3.weight"], tuned["classifier.3.weight"])
    saved = json.loads((tmp_path / "ft" / "config.json").read_text())["model_kwargs"]
    assert saved["image_size"] == 32 and saved["image_mean"] == json.loads(
        (tmp_path / "base" / "config.json").read_text())["model_kwargs"]["image_mean"]
    with pytest.raises(ValueError, match="not a vgg16"):
        train(ClassifierConfig(data=other, out_dir=tmp_path / "x", epochs=1, init_from=first["best"],
                               **{**cfg, "model": "vgg16"}))


def test_sequential_protocol_reports_every_stage(tmp_path):
    from sardata.train.transfer import sequential_protocol

    exports = {name: make_imagefolder(tmp_path / name, size=32, per_class=(("Cargo", 6, 2), ("Tanker", 4, 2),
                                                                            ("Fishing", 4, 2)))
               for name in ("fusar", "opensarship", "mix")}
    config = ClassifierConfig(data=exports["fusar"], model="cnn", image_size=32, epochs=1, batch_size=8, workers=0,
                              progress=False, gradcam=0, patience=0)
    result = sequential_protocol(exports, "fusar", config, tmp_path / "seq")
    assert [(s["variant"], s["stage"], s["trained_on"]) for s in result["stages"]] == [
        ("base", 0, "fusar"), ("frozen", 1, "opensarship"), ("frozen", 2, "mix"),
        ("unfrozen", 1, "opensarship"), ("unfrozen", 2, "mix")]
    assert result["stages"][2]["path"] == ["fusar", "opensarship", "mix"]
    for stage in result["stages"]:
        assert set(stage["test"]) == {"fusar", "opensarship", "mix"}
        assert stage["test"]["mix"]["n"] == 6 and "majority_f1_macro" in stage["test"]["mix"]
    assert json.loads(result["json"].read_text())["order"] == ["opensarship", "mix"]
    with pytest.raises(ValueError, match="base"):
        sequential_protocol(exports, "ssdd", config, tmp_path / "bad")


# --------------------------------------------------------------------------------------------- learning


def test_classifier_learns_easy_ships(tmp_path):
    """Ship length depends on the class: the small CNN must beat the majority baseline on macro F1 by far."""
    data = make_imagefolder(tmp_path / "easy", size=32, per_class=(("Cargo", 40, 12), ("Tanker", 40, 12),
                                                                   ("Fishing", 40, 12)))
    result = train(ClassifierConfig(data=data, model="cnn", out_dir=tmp_path / "run", image_size=32, epochs=8,
                                    batch_size=16, workers=0, progress=False, gradcam=0, patience=0, seed=0))
    test = result["test"]
    assert test["f1_macro"] > 0.8 and test["majority_f1_macro"] < 0.2, format_report(test)


def test_cli_sequential_protocol(folder, tmp_path):
    from typer.testing import CliRunner

    from sardata.cli import app

    other = make_imagefolder(tmp_path / "opensarship", size=32)
    result = CliRunner().invoke(app, ["train", "classifier", "--data", str(folder), "--model", "cnn", "--epochs", "1",
                                      "--image-size", "32", "--batch-size", "16", "--workers", "0", "--gradcam", "0",
                                      "--out", str(tmp_path / "run"), "--then", f"opensarship={other}",
                                      "--variants", "frozen"])
    assert result.exit_code == 0, result.output
    stages = json.loads((tmp_path / "run" / "sequential" / "sequential.json").read_text())["stages"]
    assert [(s["variant"], s["trained_on"]) for s in stages] == [("base", folder.name), ("frozen", "opensarship")]
    bad = CliRunner().invoke(app, ["train", "classifier", "--data", str(folder), "--then", "nonsense"])
    assert bad.exit_code == 1 and "NAME=EXPORT_DIR" in bad.output

"""``sardata train detector``, ``sardata train classifier`` and ``sardata evaluate``: options → config → library."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from sardata.cli._app import RESUME_HELP, app, train_app

console = Console()


@train_app.command("detector")
def detector(
    data: Path = typer.Option(..., "--data", help="COCO export root (annotations/<split>.json, images/<split>/)"),
    arch: str = typer.Option("faster_rcnn", help="faster_rcnn | cascade_rcnn | retinanet | fcos | ssd | cfar "
                                                 "(CA-CFAR: no training, evaluated like a model)"),
    preset: str = typer.Option("paper", help="paper (BSLM: 512², 12 epochs, SGD 0.02) | cpu (from scratch in CPU "
                                             "minutes: tiny backbone, native-resolution crops, AdamW + cosine)"),
    backbone: Optional[str] = typer.Option(None, help="resnet50 | resnet18 | mobilenet_v2 | mobilenet_v3 | tiny "
                                                      "(ssd: vgg16 or tiny); default: the preset's"),
    out: Optional[Path] = typer.Option(None, "--out", help="output dir (default $SARDATA_HOME/<data>/detector_...)"),
    epochs: Optional[int] = typer.Option(None, help="default: the preset's (paper 12)"),
    iterations: Optional[int] = typer.Option(None, help="exact number of optimizer steps (cpu preset: 800)"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    crop_size: Optional[int] = typer.Option(None, "--crop-size", help="native-resolution training crops (0: resize "
                                                                      "whole images to --image-size)"),
    optimizer: Optional[str] = typer.Option(None, help="sgd | adamw"),
    lr: Optional[float] = typer.Option(None, help="paper: 0.02 × batch/16 (SSD 0.002 × batch/16)"),
    momentum: Optional[float] = typer.Option(None),
    weight_decay: Optional[float] = typer.Option(None, "--weight-decay"),
    schedule: Optional[str] = typer.Option(None, help="step | cosine"),
    lr_steps: Optional[str] = typer.Option(None, "--lr-steps", help="epochs at which lr is multiplied by --lr-gamma"),
    lr_gamma: Optional[float] = typer.Option(None, "--lr-gamma"),
    warmup_iters: Optional[int] = typer.Option(None, "--warmup-iters"),
    image_size: Optional[int] = typer.Option(None, "--image-size"),
    anchors: Optional[str] = typer.Option(None, help="auto (k-means of the training boxes) | default (COCO's)"),
    backbone_weights: Optional[str] = typer.Option(None, "--backbone-weights",
                                                   help="ImageNet weights: file or torchvision name"),
    trainable_layers: int = typer.Option(3, "--trainable-layers"),
    normalization: Optional[str] = typer.Option(None, help="auto | db | data | sar | imagenet"),
    train_split: str = typer.Option("train", "--train-split"),
    test_split: str = typer.Option("test", "--test-split"),
    workers: int = typer.Option(2),
    device: Optional[str] = typer.Option(None, help="cpu, cuda, cuda:1 (default: cuda when available)"),
    amp: bool = typer.Option(True, "--amp/--no-amp", help="mixed precision: fp16 on CUDA, bf16 on CPUs with native bf16"),
    resume: Optional[Path] = typer.Option(None, help=RESUME_HELP),
    test_only: bool = typer.Option(False, "--test-only", help="evaluate --resume on the test split only"),
    eval_every: Optional[int] = typer.Option(None, "--eval-every"),
    max_images: Optional[int] = typer.Option(None, "--max-images", help="read only N images per split"),
    model_option: Optional[List[str]] = typer.Option(
        None, "--model-option", help="KEY=VALUE passed to the torchvision model (repeat), e.g. detections_per_img=300"),
    seed: int = typer.Option(0),
) -> None:
    """Train a detector on a COCO export (presets: paper, cpu); checkpoints, metrics curves and predictions."""
    from sardata.train.detector import DetectorConfig, train

    try:
        steps = None if lr_steps is None else tuple(int(s) for s in lr_steps.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"--lr-steps {lr_steps!r}: expected comma-separated epochs, e.g. 8,11") from None
    options = {}
    for item in model_option or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--model-option {item!r}: expected KEY=VALUE")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    cfg = DetectorConfig(
        data=data, arch=arch, preset=preset, backbone=backbone, out_dir=out, epochs=epochs, iterations=iterations,
        batch_size=batch_size, crop_size=crop_size, optimizer=optimizer, lr=lr, momentum=momentum,
        weight_decay=weight_decay, schedule=schedule, lr_steps=steps, lr_gamma=lr_gamma,
        warmup_iters=warmup_iters, image_size=image_size, anchors=anchors, backbone_weights=backbone_weights,
        trainable_layers=trainable_layers, normalization=normalization, train_split=train_split,
        test_split=test_split, workers=workers, device=device, amp=amp, resume=resume, test_only=test_only,
        eval_every=eval_every, max_images=max_images, model_options=options or None, seed=seed,
    )
    result = train(cfg)
    table = Table(title=f"{cfg.arch} / {cfg.backbone}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("mAP", "AP50", "AP75"):
        if key in result["metrics"]:
            table.add_row(key, f"{100 * result['metrics'][key]:.2f}")
    console.print(table)
    console.print(f"outputs in [bold]{result['out_dir']}[/bold]", soft_wrap=True)
    if result["predictions"]:
        console.print(f"predictions: {result['predictions']}  (→ sardata evaluate DATASET --predictions ...)",
                      soft_wrap=True)


@train_app.command("classifier")
def classifier(
    data: Path = typer.Option(..., "--data", help="ImageFolder export root (<split>/<class>/<file>)"),
    model: str = typer.Option("cnn", "--model", help="cnn | vgg16 | resnet50 | f-vgg16 | f-resnet50"),
    out: Optional[Path] = typer.Option(None, "--out", help="output dir (default $SARDATA_HOME/<data>/classifier_...)"),
    weights: Optional[str] = typer.Option(None, help="backbone ImageNet weights: file or torchvision name"),
    epochs: int = typer.Option(10),
    batch_size: int = typer.Option(64, "--batch-size"),
    lr: float = typer.Option(1e-3),
    weight_decay: float = typer.Option(0.0, "--weight-decay"),
    image_size: int = typer.Option(224, "--image-size"),
    val_fraction: float = typer.Option(0.15, "--val-fraction", help="held out of train/ when there is no val/"),
    balance: str = typer.Option("none", help="none | sampler (WeightedRandomSampler) | weights (loss weights)"),
    monitor: str = typer.Option("f1_macro", help="f1_macro | f1_weighted: early stopping and best model"),
    patience: int = typer.Option(3, help="epochs without improvement before stopping (0: off)"),
    normalization: str = typer.Option("auto", help="auto | data | sar | imagenet"),
    gradcam: int = typer.Option(8, help="Grad-CAM overlays for the first N test images"),
    fiftyone_dataset: Optional[str] = typer.Option(None, "--dataset",
                                                   help="FiftyOne dataset of the export: test predictions go to "
                                                        "its samples (field predictions), Grad-CAM maps as "
                                                        "heatmaps (field gradcam)"),
    workers: int = typer.Option(2),
    device: Optional[str] = typer.Option(None),
    amp: bool = typer.Option(True, "--amp/--no-amp"),
    resume: Optional[Path] = typer.Option(None, help=RESUME_HELP),
    test_only: bool = typer.Option(False, "--test-only"),
    max_images: Optional[int] = typer.Option(None, "--max-images"),
    init_from: Optional[Path] = typer.Option(None, "--init-from",
                                             help="start from an earlier stage's checkpoint (fine-tuning)"),
    trainable: str = typer.Option("default", "--trainable",
                                  help="default | head (frozen fine-tuning) | all (unfrozen)"),
    then: Optional[List[str]] = typer.Option(None, "--then", help="seed-002 sequential protocol: NAME=EXPORT to "
                                             "fine-tune on after --data, in turn (repeat)"),
    variants: str = typer.Option("frozen,unfrozen", "--variants", help="sequential protocol variants"),
    seed: int = typer.Option(0),
) -> None:
    """Train a ship classifier; prints accuracy/F1 beside the majority-class baseline. With ``--then``: seed 002's
    protocol (train on --data, then fine-tune on each --then export in turn, frozen and unfrozen)."""
    from sardata.train.classifier import ClassifierConfig, train

    cfg = ClassifierConfig(
        data=data, model=model, out_dir=out, weights=weights, epochs=epochs, batch_size=batch_size, lr=lr,
        weight_decay=weight_decay, image_size=image_size, val_fraction=val_fraction, balance=balance,
        monitor=monitor, patience=patience, normalization=normalization, gradcam=gradcam,
        fiftyone_dataset=fiftyone_dataset, workers=workers, device=device, amp=amp, resume=resume,
        test_only=test_only, max_images=max_images, seed=seed, init_from=init_from, trainable=trainable,
    )
    if then:
        _sequential(cfg, then, [v.strip() for v in variants.split(",") if v.strip()])
        return
    result = train(cfg)
    if result["report"]:
        console.print(result["report"], markup=False, highlight=False)
    console.print(f"outputs in [bold]{result['out_dir']}[/bold]", soft_wrap=True)


def _sequential(cfg, then: list[str], variants: list[str]) -> None:
    """``train classifier --then``: the seed-002 protocol and its table (stage × test split)."""
    from sardata.train.transfer import sequential_protocol

    pairs = [t.split("=", 1) for t in then]
    if any(len(p) != 2 or not p[0] or not p[1] for p in pairs):
        raise ValueError(f"--then expects NAME=EXPORT_DIR, got {then}")
    base = Path(cfg.data).resolve().name
    exports = {base: Path(cfg.data), **{name: Path(path) for name, path in pairs}}
    cfg.validate()
    result = sequential_protocol(exports, base, cfg, Path(cfg.out_dir) / "sequential",
                                 order=[name for name, _ in pairs], variants=tuple(variants))
    table = Table(title=f"seed-002 protocol, {cfg.model}: macro F1 (majority) on each test split")
    for column in ["variant", "stage", "trained on"] + list(exports):
        table.add_column(column)
    for st in result["stages"]:
        table.add_row(st["variant"], str(st["stage"]), " → ".join(st["path"]),
                      *[f"{st['test'][n]['f1_macro']:.3f} ({st['test'][n]['majority_f1_macro']:.3f})"
                        for n in exports])
    console.print(table)
    console.print(f"stages in [bold]{result['json']}[/bold]", soft_wrap=True)


def _model_name(path: Path) -> str:
    """``.../detector_faster_rcnn_resnet50/predictions_test.json`` → ``detector_faster_rcnn_resnet50``."""
    return path.parent.name if path.stem.startswith("predictions") else path.stem


def _read_categories(path: Path) -> list:
    try:
        return json.loads(path.read_text())["categories"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"--annotations {path}: not a COCO JSON with 'categories' ({type(e).__name__}: {e})") from e


@app.command("evaluate")
def evaluate(
    dataset: str = typer.Argument(..., help="FiftyOne dataset name"),
    predictions: List[Path] = typer.Option(..., "--predictions", help="COCO results JSON with sample_id (repeat)"),
    gt_field: str = typer.Option("ground_truth", "--gt-field"),
    split: Optional[str] = typer.Option(None, help="evaluate the samples of this split (default: those predicted)"),
    annotations: Optional[Path] = typer.Option(None, help="COCO JSON whose categories the results use"),
    scene_field: str = typer.Option("scene", "--scene-field"),
    iou: float = typer.Option(0.5),
    out: Optional[Path] = typer.Option(None, "--out", help="table dir (default $SARDATA_HOME/<dataset>/evaluate)"),
) -> None:
    """Detection metrics by scene (all / inshore / offshore / scene_i) and class; predictions into FiftyOne."""
    from sardata.evaluate import evaluate_dataset, read_results, scene_table_markdown

    runs = {}
    for path in predictions:
        name = _model_name(path)
        runs[name if name not in runs else f"{name}_{len(runs)}"] = read_results(path)
    categories = _read_categories(annotations) if annotations else None
    result = evaluate_dataset(dataset, runs, categories, gt_field=gt_field, split=split,
                              scene_field=scene_field, iou=iou, out_dir=out)
    console.print(scene_table_markdown(result["rows"], "AP50"), markup=False, highlight=False)
    console.print(f"tables: {result['markdown']}  {result['json']}", soft_wrap=True)

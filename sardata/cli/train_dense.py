"""``sardata train distill`` (IFKD detector distillation) and ``sardata train segment`` (LANet ± contrastive
clustering): options → config → library."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from sardata.cli._app import RESUME_HELP, app, embed_app, train_app  # noqa: F401

console = Console()


def _pct(value: float) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f}"


@train_app.command("distill")
def distill(
    data: Path = typer.Option(..., "--data", help="COCO export root (annotations/<split>.json, images/<split>/)"),
    teacher: Path = typer.Option(..., "--teacher", help="teacher checkpoint from `sardata train detector`"),
    student: str = typer.Option("resnet18", help="resnet18 | mobilenet_v2"),
    arch: Optional[str] = typer.Option(None, help="faster_rcnn | retinanet (default: the teacher's)"),
    out: Optional[Path] = typer.Option(None, "--out", help="output dir (default $SARDATA_HOME/<data>/distill)"),
    frs: bool = typer.Option(True, "--frs/--no-frs", help="FRS feature loss"),
    ede: bool = typer.Option(False, "--ede/--no-ede", help="foreground embedding into teacher features"),
    fdr: bool = typer.Option(False, "--fdr/--no-fdr", help="frequency-decoupled feature loss"),
    hsm: bool = typer.Option(False, "--hsm/--no-hsm", help="hyperbolic similarity mask loss"),
    head: bool = typer.Option(True, "--head/--no-head", help="head (classification) distillation"),
    alpha: float = typer.Option(0.06, help="weight of the feature loss"),
    beta: float = typer.Option(0.5, help="weight of the head loss"),
    ede_strength: float = typer.Option(1.0, "--ede-strength", help="λ in T' = T + λ·mask·T"),
    fdr_ratio: float = typer.Option(0.5, "--fdr-ratio", help="low-frequency square side / map side"),
    hsm_curvature: float = typer.Option(1.0, "--hsm-curvature", help="Poincaré ball curvature c"),
    mask_source: str = typer.Option("box", "--mask-source", help="EDE masks: box | soft_box | mobilesam"),
    mask_checkpoint: Optional[Path] = typer.Option(None, "--mask-checkpoint", help="MobileSAM weights (mobile_sam.pt)"),
    student_weights: Optional[str] = typer.Option(None, "--student-weights",
                                                  help="ImageNet backbone weights for the student: file or name"),
    ablation: bool = typer.Option(False, "--ablation",
                                  help="train baseline, FRS, +EDE, +FDR, +HSM and full; write ablation.md/json"),
    epochs: int = typer.Option(12),
    batch_size: int = typer.Option(4, "--batch-size"),
    lr: float = typer.Option(0.01),
    image_size: Optional[int] = typer.Option(None, "--image-size", help="default: the teacher's"),
    train_split: str = typer.Option("train", "--train-split"),
    val_split: str = typer.Option("test", "--val-split"),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="stop after N steps (smoke runs)"),
    max_eval_images: Optional[int] = typer.Option(None, "--max-eval-images"),
    workers: int = typer.Option(0),
    device: Optional[str] = typer.Option(None, help="cpu, cuda, cuda:1 (default: cuda when available)"),
    seed: int = typer.Option(0),
    resume: Optional[Path] = typer.Option(None, help=RESUME_HELP),
) -> None:
    """Distil a detector checkpoint into a ResNet-18 / MobileNetV2 FPN student (IFKD: FRS, EDE, FDR, HSM)."""
    from sardata.train.distill import DistillConfig, distill as run_distill, run_ablation

    cfg = DistillConfig(
        data=data, teacher=teacher, student=student, arch=arch, out_dir=out,
        frs=frs, ede=ede, fdr=fdr, hsm=hsm, head=head, alpha=alpha, beta=beta, ede_strength=ede_strength,
        fdr_ratio=fdr_ratio, hsm_curvature=hsm_curvature, mask_source=mask_source,
        mask_checkpoint=mask_checkpoint, student_weights=student_weights,
        epochs=epochs, batch_size=batch_size, lr=lr, image_size=image_size, train_split=train_split,
        val_split=val_split, max_steps=max_steps, max_eval_images=max_eval_images, seed=seed, device=device,
        workers=workers, resume=resume,
    )
    if ablation:
        result = run_ablation(cfg)
        summaries = result["variants"]
    else:
        summaries = [run_distill(cfg)]
    table = Table(title=f"IFKD {student} student")
    for column in ("variant", "AP50", "mAP", "steps"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for s in summaries:
        table.add_row(s["variant"], _pct(s["AP50"]), _pct(s["mAP"]), str(s["steps"]))
    console.print(table)
    if ablation:
        console.print(f"ablation table: [bold]{result['table_md']}[/bold] ({result['table_json']})")
    else:
        console.print(f"student checkpoint: [bold]{summaries[0]['checkpoint']}[/bold]")


@train_app.command("segment")
def segment(
    data: Path = typer.Option(..., "--data", help="masks export root (class_map.json, <split>/{images,optical,masks})"),
    input: str = typer.Option("sar", "--input", help="sar | optical | both"),
    cc: bool = typer.Option(True, "--cc/--no-cc", help="auxiliary contrastive clustering (off: LANet alone)"),
    cc_weight: float = typer.Option(0.1, "--cc-weight", help="weight of the contrastive-clustering losses"),
    knn: int = typer.Option(3, help="nearest neighbours used as positives"),
    num_clusters: int = typer.Option(10, "--num-clusters"),
    out: Optional[Path] = typer.Option(None, "--out", help="output dir (default $SARDATA_HOME/<data>/segment)"),
    epochs: int = typer.Option(30),
    batch_size: int = typer.Option(32, "--batch-size"),
    lr: float = typer.Option(1e-3),
    train_split: str = typer.Option("train", "--train-split"),
    val_split: str = typer.Option("val", "--val-split", help="falls back to test"),
    encoder_weights: Optional[Path] = typer.Option(None, "--encoder-weights", help="ResNet-18 state_dict file"),
    augment: bool = typer.Option(True, "--augment/--no-augment"),
    resume: Optional[Path] = typer.Option(None, help=RESUME_HELP),
    max_samples: Optional[int] = typer.Option(None, "--max-samples", help="read only N tiles per split"),
    dataset: Optional[str] = typer.Option(None, "--dataset",
                                          help="FiftyOne dataset to load the predicted masks into"),
    field: str = typer.Option("predictions", "--field", help="sample field for the predicted masks"),
    stem_field: str = typer.Option("filepath", "--stem-field", help="sample field whose file stem matches the tiles"),
    workers: int = typer.Option(0),
    device: Optional[str] = typer.Option(None, help="cpu, cuda, cuda:1 (default: cuda when available)"),
    seed: int = typer.Option(0),
) -> None:
    """Train LANet (ResNet-18, PAM + AEM) ± contrastive clustering on a masks export; metrics without 'others'."""
    from sardata.train.segment import SegmentConfig, load_segmentation_predictions, train

    cfg = SegmentConfig(
        data=data, input=input, cc=cc, cc_weight=cc_weight, knn=knn, num_clusters=num_clusters,
        epochs=epochs, batch_size=batch_size, lr=lr, train_split=train_split, val_split=val_split,
        out_dir=out, resume=resume, encoder_weights=encoder_weights, augment=augment,
        max_samples=max_samples, seed=seed, device=device, workers=workers,
    )
    result = train(cfg)
    loaded = None
    if dataset and result["predictions"]:
        import fiftyone as fo

        loaded = load_segmentation_predictions(fo.load_dataset(dataset), result["predictions"], field=field,
                                               stem_field=stem_field)
    metrics = result["metrics"]
    table = Table(title=f"LANet{' + CC' if cc else ''} ({input})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("pixel_accuracy", "mean_f1", "mean_iou"):
        if key in metrics:
            table.add_row(key, f"{metrics[key]:.4f}")
    for name, scores in metrics.get("per_class", {}).items():
        table.add_row(f"F1 {name}", "n/a" if scores["f1"] is None else f"{scores['f1']:.4f}")
    console.print(table)
    console.print(f"outputs in [bold]{result['out_dir']}[/bold]")
    if loaded is not None:
        console.print(f"{loaded} predicted masks loaded into {dataset}.{field}")

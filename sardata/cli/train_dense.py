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
    teacher: Path = typer.Option(..., "--teacher", help="teacher detector checkpoint (RetinaNet or Faster R-CNN)"),
    student: str = typer.Option("mobilenet_v2", help="mobilenet_v2 | resnet18"),
    variant: Optional[str] = typer.Option(None, "--variant",
                                          help="a Table 4 row: baseline | frs | ede | fdr | hsm | ifkd "
                                               "(overrides --kd/--ede/--fdr/--hsm)"),
    out: Optional[Path] = typer.Option(None, "--out", help="output dir (default $SARDATA_HOME/<data>/distill)"),
    kd: bool = typer.Option(True, "--kd/--no-kd", help="distil at all (--no-kd: the undistilled student)"),
    ede: bool = typer.Option(True, "--ede/--no-ede", help="EDE: foreground embedding into the teacher features"),
    fdr: bool = typer.Option(True, "--fdr/--no-fdr", help="FDR: frequency-decoupled rebuild of the teacher features"),
    hsm: bool = typer.Option(True, "--hsm/--no-hsm", help="HSM: hyperbolic similarity mask (else the FRS mask)"),
    head: bool = typer.Option(True, "--head/--no-head", help="head distillation β·L_head (Eq. 13)"),
    alpha: float = typer.Option(0.06, help="weight α of the feature loss (the paper's 0.06)"),
    beta: float = typer.Option(0.5, help="weight β of the head loss (the paper's 0.5)"),
    fdr_ratio: str = typer.Option("0.25,0.75", "--fdr-ratio", help="range LOW,HIGH of FDR's random window ratio r"),
    hsm_curvature: float = typer.Option(1.0, "--hsm-curvature", help="Poincaré ball curvature c"),
    mask_source: str = typer.Option("box", "--mask-source", help="EDE masks: box | soft_box | mobilesam"),
    mask_checkpoint: Optional[Path] = typer.Option(None, "--mask-checkpoint", help="MobileSAM weights (mobile_sam.pt)"),
    student_weights: Optional[str] = typer.Option(None, "--student-weights",
                                                  help="ImageNet backbone weights for the student: file or name"),
    ablation: bool = typer.Option(False, "--ablation", help="train every Table 4 row; write ablation.md/json"),
    seeds: str = typer.Option("0", "--seeds", help="comma-separated seeds (with --ablation: mean ± std over them)"),
    epochs: int = typer.Option(12),
    batch_size: int = typer.Option(4, "--batch-size"),
    lr: Optional[float] = typer.Option(None, help="SGD lr (default 0.02 × batch / 16)"),
    min_teacher_ap50: float = typer.Option(0.5, "--min-teacher-ap50",
                                           help="refuse a teacher whose validation AP50 is lower"),
    allow_weak_teacher: bool = typer.Option(False, "--allow-weak-teacher",
                                            help="distil from a weak teacher anyway (loud warning)"),
    train_split: str = typer.Option("train", "--train-split"),
    eval_split: str = typer.Option("test", "--eval-split", help="split the AP50 is reported on"),
    val_split: str = typer.Option("val", "--val-split", help="split the teacher is checked on"),
    max_images: Optional[int] = typer.Option(None, "--max-images", help="at most N images per split (smoke runs)"),
    workers: int = typer.Option(0),
    device: Optional[str] = typer.Option(None, help="cpu, cuda, cuda:1 (default: cuda when available)"),
    amp: bool = typer.Option(True, "--amp/--no-amp", help="mixed precision: fp16 on CUDA, bf16 on CPUs with native "
                                                           "bf16 (the distillation terms stay fp32)"),
    processes: Optional[int] = typer.Option(None, "--processes",
                                            help="with --ablation on a CPU: runs trained at once, one thread each "
                                                 "(default: one per core)"),
) -> None:
    """Distil a detector checkpoint into a MobileNetV2 / ResNet-18 FPN student (IFKD: FRS + EDE + FDR + HSM)."""
    from dataclasses import replace

    from sardata.train.distill import VARIANTS, DistillConfig, distill as run_distill, run_ablation

    ratio = tuple(float(v) for v in fdr_ratio.split(","))
    if len(ratio) == 1:
        ratio = (ratio[0], ratio[0])
    seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    if variant is not None and variant not in VARIANTS:
        raise ValueError(f"--variant {variant!r}: expected one of {', '.join(VARIANTS)}")
    cfg = DistillConfig(
        data=str(data), teacher=str(teacher), student=student, out_dir=str(out) if out else None, kd=kd,
        ede=ede and kd, fdr=fdr and kd, hsm=hsm and kd, head=head, alpha=alpha, beta=beta, fdr_ratio=ratio,
        hsm_curvature=hsm_curvature, mask_source=mask_source,
        mask_checkpoint=str(mask_checkpoint) if mask_checkpoint else None, student_weights=student_weights,
        epochs=epochs, batch_size=batch_size, lr=lr, min_teacher_ap50=min_teacher_ap50,
        allow_weak_teacher=allow_weak_teacher, train_split=train_split, eval_split=eval_split,
        val_split=val_split, max_images=max_images, seed=seed_list[0], device=device, workers=workers, amp=amp,
    )
    if variant is not None:
        cfg = replace(cfg, **VARIANTS[variant])
    if ablation:
        result = run_ablation(cfg, seeds=seed_list, processes=processes)
    else:
        summary = run_distill(cfg, variant=variant)
    if ablation:
        table = Table(title=f"IFKD ablation, {student} student (AP50 %)")
        for column in ("variant", "AP50 mean", "± std", "seeds"):
            table.add_column(column, justify="left" if column == "variant" else "right")
        for row in result["rows"]:
            table.add_row(row["variant"], _pct(row["ap50_mean"]), _pct(row["ap50_std"]), str(row["seeds"]))
        console.print(table)
        console.print(f"ablation table: [bold]{result['markdown']}[/bold] ({result['json']})")
    else:
        console.print(f"{summary['variant']}: AP50 {_pct(summary['AP50'])}, mAP {_pct(summary['mAP'])} "
                      f"after {summary['steps']} steps")
        console.print(f"student checkpoint: [bold]{summary['checkpoint']}[/bold]")


@train_app.command("segment")
def segment(
    data: Path = typer.Option(..., "--data", help="masks export root (class_map.json, <split>/{images,optical,masks})"),
    input: str = typer.Option("sar", "--input", help="sar | optical | both"),
    cc: bool = typer.Option(True, "--cc/--no-cc", help="auxiliary contrastive clustering (off: LANet alone)"),
    cc_weight: float = typer.Option(1.0, "--cc-weight",
                                    help="weight of the contrastive-clustering losses (the paper: 1)"),
    knn: int = typer.Option(3, help="nearest neighbours used as positives (besides the augmented view)"),
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
    workers: int = typer.Option(0),
    device: Optional[str] = typer.Option(None, help="cpu, cuda, cuda:1 (default: cuda when available)"),
    seed: int = typer.Option(0),
) -> None:
    """Train LANet (ResNet-18, PAM + AEM) ± contrastive clustering on a masks export; metrics without 'others'."""
    from sardata.predictions import add_segmentations
    from sardata.train.segment import SegmentConfig, train

    cfg = SegmentConfig(
        data=str(data), input=input, cc=cc, cc_weight=cc_weight, knn=knn, num_clusters=num_clusters,
        epochs=epochs, batch_size=batch_size, lr=lr, train_split=train_split, val_split=val_split,
        out_dir=str(out) if out else None, resume=str(resume) if resume else None,
        encoder_weights=str(encoder_weights) if encoder_weights else None, augment=augment,
        max_samples=max_samples, seed=seed, device=device, workers=workers,
    )
    result = train(cfg)
    loaded = None
    if dataset and result["predictions"]:
        loaded = add_segmentations(dataset, result["predictions"], data, result["split"], field=field)
    metrics = result["metrics"]
    table = Table(title=f"LANet{' + CC' if cc else ''} ({input})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("pixel_accuracy", "mean_precision", "mean_recall", "mean_f1", "mean_iou"):
        if key in metrics:
            table.add_row(key, f"{metrics[key]:.4f}")
    for name, scores in metrics.get("per_class", {}).items():
        table.add_row(f"F1 {name}", "n/a" if scores["f1"] is None else f"{scores['f1']:.4f}")
    console.print(table)
    console.print(f"outputs in [bold]{result['out_dir']}[/bold]")
    if loaded is not None:
        console.print(f"{loaded} predicted masks loaded into {dataset}.{field}")

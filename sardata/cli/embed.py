"""``sardata embed train-gan | train-cc | extract``: thin wrappers over :mod:`sardata.embed`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from sardata.cli._app import app, embed_app, train_app  # noqa: F401
from sardata.cli._app import load_dataset_or_exit as _load

console = Console()


@embed_app.command("train-gan")
def train_gan_cmd(
    dataset: str = typer.Argument(..., help="FiftyOne dataset name"),
    steps: Optional[int] = typer.Option(None, "--steps", help="budget in optimiser steps (default preset: 60)"),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="budget in epochs instead (paper preset: 25)"),
    preset: str = typer.Option("default", "--preset", help="default (steps, 128 px) | paper (25 epochs, 256 px)"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="default: the preset's (16; paper 32)"),
    lr: Optional[float] = typer.Option(None, "--lr", help="default 2e-4"),
    image_size: Optional[int] = typer.Option(None, "--image-size", help="power of two, 32..256 (preset 128, BSLM 256)"),
    input_norm: str = typer.Option("db_zscore", "--input-norm", help="db_zscore (per image, in dB) | none"),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1 (default: CUDA if available)"),
    out: Optional[Path] = typer.Option(None, "--out", help="run directory (default: work_dir(DATASET, 'dcgan'))"),
    num_workers: Optional[int] = typer.Option(None, "--num-workers"),
    seed: int = typer.Option(0, "--seed"),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="continue from the run directory's checkpoint"),
) -> None:
    """Train the BSLM DCGAN (checkpoint, sample grids and loss curves every epoch; resumable)."""
    from sardata.embed.dcgan import train_gan

    path = train_gan(
        _load(dataset), out, steps=steps, epochs=epochs, preset=preset, batch_size=batch_size, lr=lr,
        image_size=image_size, input_norm=input_norm, device=device, num_workers=num_workers, seed=seed,
        resume=resume,
    )
    console.print(f"DCGAN checkpoint: [bold]{path}[/bold] (curves: {path.parent / 'losses.png'})")


@embed_app.command("train-cc")
def train_cc_cmd(
    dataset: str = typer.Argument(..., help="FiftyOne dataset name"),
    steps: Optional[int] = typer.Option(None, "--steps", help="budget in optimiser steps (default 60)"),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="budget in epochs instead"),
    batch_size: int = typer.Option(32, "--batch-size"),
    clusters: int = typer.Option(10, "--clusters", help="M, clusters of the cluster head"),
    knn: int = typer.Option(3, "--knn", help="K nearest-neighbour positives (seed 003: 3); 0 = two views"),
    lr: float = typer.Option(3e-4, "--lr"),
    image_size: int = typer.Option(224, "--image-size"),
    input_norm: str = typer.Option("db_zscore", "--input-norm", help="db_zscore (per image, in dB) | none"),
    weights: Optional[Path] = typer.Option(None, "--weights", help="ResNet18 state_dict file for the encoder"),
    device: Optional[str] = typer.Option(None, "--device"),
    out: Optional[Path] = typer.Option(None, "--out", help="run directory (default: work_dir(DATASET, 'cc'))"),
    num_workers: Optional[int] = typer.Option(None, "--num-workers"),
    seed: int = typer.Option(0, "--seed"),
    resume: bool = typer.Option(True, "--resume/--no-resume"),
) -> None:
    """Train contrastive clustering (ResNet18, instance + cluster heads, K-NN positives; resumable)."""
    from sardata.embed.contrastive import train_cc

    path = train_cc(
        _load(dataset), out, steps=steps, epochs=epochs, batch_size=batch_size, clusters=clusters,
        knn_positives=knn, lr=lr, image_size=image_size, input_norm=input_norm, weights=weights, device=device,
        num_workers=num_workers, seed=seed, resume=resume,
    )
    console.print(f"contrastive-clustering checkpoint: [bold]{path}[/bold]")


@embed_app.command("extract")
def extract_cmd(
    dataset: str = typer.Argument(..., help="FiftyOne dataset name"),
    model: str = typer.Option("dcgan", "--model", help="dcgan | cc"),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="default: latest of `embed train-*`"),
    random_init: bool = typer.Option(False, "--random-init", help="allow an untrained model when no checkpoint"),
    pca_dim: Optional[int] = typer.Option(
        None, "--pca-dim", help="PCA dimensions written to the field (default: none, the full feature, which "
                                "scene clustering can pool over its 4x4 positions; 0 = none)"
    ),
    field: Optional[str] = typer.Option(None, "--field", help="sample field (default: <model>_embedding)"),
    cluster_field: Optional[str] = typer.Option(None, "--cluster-field", help="cc: field for the argmax cluster"),
    batch_size: int = typer.Option(32, "--batch-size"),
    num_workers: Optional[int] = typer.Option(None, "--num-workers"),
    device: Optional[str] = typer.Option(None, "--device"),
) -> None:
    """Extract features for every sample (cached and resumable) and write them to a sample field."""
    from sardata.embed.extract import MODELS, extract_features

    if model not in MODELS:
        raise ValueError(f"--model {model!r}: expected one of {MODELS}")
    field = field or f"{model}_embedding"
    result = extract_features(
        _load(dataset), model=model, checkpoint=checkpoint, allow_random_init=random_init, batch_size=batch_size,
        num_workers=num_workers, device=device, pca_dim=pca_dim or None, embedding_field=field,
        cluster_field=cluster_field,
    )
    console.print(
        f"{len(result.sample_ids)} samples, {result.features.shape[1]}-d {model} features "
        f"(checkpoint {result.checkpoint_hash}, input {result.input_norm}) → field [bold]{field}[/bold]"
        + (f"; {len(result.failed_ids)} unreadable" if result.failed_ids else "")
    )

"""``sardata synth`` and ``sardata ingest``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from sardata.cli._app import app
from sardata.registry import DATASETS

console = Console()
_KEYS = " | ".join(DATASETS)


@app.command()
def synth(
    name: str = typer.Argument(..., help=_KEYS),
    out: Path = typer.Argument(..., help="output directory"),
    n: Optional[int] = typer.Option(None, "--n", help="number of images/chips/tiles (small default)"),
    seed: int = typer.Option(0, "--seed"),
    full: bool = typer.Option(False, "--full", help="full-size dataset (e.g. SSDD 1160 images)"),
    preset: Optional[str] = typer.Option(None, "--preset", help="ssdd difficulty: default | easy | coast_hard"),
    land_masks: Optional[Path] = typer.Option(None, "--land-masks", help="ssdd: directory of real land/sea mask PNGs"),
) -> None:
    """Write a synthetic copy of a dataset in its real on-disk layout, with synth_truth.json."""
    from sardata.synth import synthesize

    options = {k: v for k, v in (("preset", preset), ("land_masks", land_masks)) if v is not None}
    if options and name != "ssdd":
        raise ValueError(f"--preset/--land-masks apply to ssdd only, not {name!r}")
    root = synthesize(name, out, n=n, seed=seed, full=full, **options)
    console.print(f"wrote synthetic {name} to [bold]{root}[/bold]")


def print_summary(summary: dict, title: str) -> None:
    table = Table(title=title)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("samples", str(summary["samples"]))
    for split, count in summary["splits"].items():
        table.add_row(f"split {split}", str(count))
    for label, count in summary["classes"].items():
        table.add_row(f"class {label}", str(count))
    table.add_row("skipped files", str(len(summary["skipped"])))
    console.print(table)
    labels = summary.get("labels") or {}
    if labels:
        counts = Table(title="annotated labels")
        for column in ("class", "kept", "clipped", "dropped"):
            counts.add_column(column, justify="left" if column == "class" else "right")
        for label, c in labels.items():
            dropped = f"[red]{c['dropped']}[/red]" if c["dropped"] else "0"
            counts.add_row(label, str(c["kept"]), str(c["clipped"]), dropped)
        console.print(counts)
    for problem in summary["skipped"][:50]:
        console.print(f"  [yellow]skipped[/yellow] {problem['path']}: {problem['reason']}")
    if len(summary["skipped"]) > 50:
        console.print(f"  ... and {len(summary['skipped']) - 50} more (dataset.info['ingest_problems'])")


@app.command()
def ingest(
    name: str = typer.Argument(..., help=_KEYS),
    root: Path = typer.Argument(..., help="dataset root directory, or its zip/tar archive (or a folder holding it)"),
    dataset_name: Optional[str] = typer.Option(None, "--name", help="FiftyOne dataset name (default: NAME)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing dataset of that name"),
    strict: bool = typer.Option(False, "--strict", help="fail on the first bad file or dropped label instead of reporting it"),
) -> None:
    """Ingest a dataset from its on-disk layout into a persistent FiftyOne dataset and print a summary."""
    import sardata.datasets as sds

    dataset = sds.load(name, root, name=dataset_name, overwrite=overwrite, strict=strict)
    print_summary(sds.summarize(dataset), title=f"{dataset.name} ({name} from {root})")

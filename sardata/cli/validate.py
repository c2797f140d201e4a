"""``sardata validate``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sardata.cli._app import app, fail, load_dataset_or_exit

console = Console()
_STYLE = {"error": "red", "warning": "yellow", "info": "cyan"}


@app.command()
def validate(
    dataset_name: str = typer.Argument(..., help="FiftyOne dataset"),
    label_field: str = typer.Option("ground_truth", "--label-field"),
    run_key: str = typer.Option("validate", "--run-key", help="name of the run (re-running replaces it)"),
    min_box_px: float = typer.Option(4.0, "--min-box-px", help="boxes with a shorter side below this are tiny"),
    near_threshold: float = typer.Option(0.98, "--near-threshold", help="cosine similarity of near duplicates"),
    embeddings: Optional[str] = typer.Option(None, "--embeddings", help="vector field for near duplicates"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write the report as JSON here"),
    fail_on: str = typer.Option("never", "--fail-on", help="exit 1 when a finding is at least this severe: "
                                "error | warning | info | never"),
) -> None:
    """Find label problems, imbalance, leakage and bad pixels before training; one saved view per finding."""
    import sardata.validate as sv
    from sardata._io import write_json

    if fail_on not in sv.SEVERITIES + ("never",):
        fail(ValueError(f"--fail-on {fail_on!r} is not one of {sv.SEVERITIES + ('never',)}"))
    dataset = load_dataset_or_exit(dataset_name)
    try:
        report = sv.validate(dataset, label_field=label_field, run_key=run_key, min_box_px=min_box_px,
                             near_threshold=near_threshold, embeddings=embeddings)
    except (ValueError, OSError) as e:
        fail(e)
    table = Table(title=f"validate {dataset.name} ({report.params['samples']} samples, {label_field})")
    for column in ("severity", "finding", "count", "saved view"):
        table.add_column(column, justify="right" if column == "count" else "left")
    for f in report.findings:
        style = _STYLE[f.severity]
        table.add_row(f"[{style}]{f.severity}[/{style}]", escape(f.message), str(f.count), report.views.get(f.kind, ""))
    if report.findings:
        console.print(table)
    else:
        console.print(f"[green]no problems found[/green] in {dataset.name} ({report.params['samples']} samples)")
    counts = report.counts()
    console.print(f"{counts['error']} error, {counts['warning']} warning, {counts['info']} info kinds; "
                  f"report and plots in {report.report_dir}")
    per_split = report.distribution.get("labels_per_split") or {}
    if per_split:
        dist = Table(title="labels per class and split")
        classes = sorted({c for v in per_split.values() for c in v})
        dist.add_column("split")
        for c in classes:
            dist.add_column(c, justify="right")
        for split, row in per_split.items():
            dist.add_row(str(split), *(str(row.get(c, 0)) for c in classes))
        console.print(dist)
    if json_out is not None:
        write_json(json_out, report.to_dict())
    if report.fails(fail_on):
        raise typer.Exit(code=1)

"""``sardata balance``, ``merge``, ``split``, ``report`` and ``export``: thin wrappers over sardata.views / exporters."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from sardata.cli._app import app
from sardata.cli._app import load_dataset_or_exit as _load

console = Console()


@app.command()
def balance(
    dataset: str = typer.Argument(..., help="FiftyOne dataset name"),
    by: str = typer.Option("scene", "--by", help="field or label path to balance (scene, ground_truth.label, source)"),
    mode: str = typer.Option("replicate", "--mode", help="replicate | undersample"),
    target: float = typer.Option(1.0, "--target", help="wanted minority/majority ratio in (0, 1]"),
    run_key: str = typer.Option("balance", "--run-key", help="name of the balance run"),
    splits: List[str] = typer.Option(["train"], "--split", help="splits to balance (repeatable); others stay at 1"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Balance a dataset by replication (BSLM) or undersampling; stores a named run and prints the report."""
    from sardata.views.balance import balance as run_balance
    from sardata.views.report import balance_report

    ds = _load(dataset)
    run = run_balance(ds, by=by, mode=mode, target=target, splits=splits, seed=seed, run_key=run_key)
    report = balance_report(ds, run.run_key, console=console)
    console.print(f"balance run [bold]{run.run_key}[/bold]: {run.before} → {run.after}; "
                  f"counts in field [bold]{run.count_field}[/bold]; report {report.paths.get('html')}")


@app.command()
def merge(
    datasets: List[str] = typer.Argument(..., help="datasets to merge, in priority order"),
    name: str = typer.Option(..., "--name", help="name of the merged dataset"),
    taxonomy: str = typer.Option("ships3", "--taxonomy", help="ships3 | ships4 | mapping file (JSON/YAML) | none"),
    dedup: str = typer.Option("exact", "--dedup", help="exact | near | both | none"),
    policy: str = typer.Option("keep_first", "--policy", help="keep_first | drop_all | report_only"),
    near_threshold: float = typer.Option(0.95, "--near-threshold"),
    embedding_field: Optional[str] = typer.Option(None, "--embedding-field", help="embeddings for near dedup"),
    overwrite: bool = typer.Option(False, "--overwrite"),
) -> None:
    """Merge datasets with a label taxonomy, finding and resolving duplicates."""
    from sardata.views.merge import merge as run_merge

    inputs = [_load(d) for d in datasets]
    merged, report = run_merge(
        inputs, name, taxonomy=None if taxonomy.lower() == "none" else taxonomy, dedup=dedup, policy=policy,
        near_threshold=near_threshold, embedding_field=embedding_field, overwrite=overwrite,
    )
    console.print(str(report))
    if report.shared_groups:
        console.print(f"[yellow]{len(report.shared_groups)} MMSIs appear in several sources[/yellow]: split with "
                      f"`sardata split {name} --method group --group-field mmsi`")


@app.command("split")
def split_cmd(
    dataset: str = typer.Argument(..., help="FiftyOne dataset name"),
    method: str = typer.Option("stratified", "--method", help="official | stratified | group"),
    ratios: List[float] = typer.Option([0.8, 0.2], "--ratio", help="(train test) or (train val test), repeatable"),
    by: List[str] = typer.Option(["ground_truth.label"], "--by", help="stratify by (repeatable; 'none' for no strata)"),
    group_field: str = typer.Option("id", "--group-field", help="mmsi | tile_id | id"),
    seed: int = typer.Option(0, "--seed"),
    field: str = typer.Option("split", "--field", help="the field written"),
) -> None:
    """Write a split (official, stratified, or grouped by MMSI/tile) and check it for leakage."""
    from sardata.views.split import leakage_check, split

    ds = _load(dataset)
    strata = None if [b.lower() for b in by] == ["none"] else (by[0] if len(by) == 1 else tuple(by))
    counts = split(ds, method=method, ratios=tuple(ratios), by=strata, group_field=group_field, seed=seed,
                   field=field)
    console.print(f"{field}: {counts}")
    # check the groups that matter for SAR even when they were not used to split (a stratified split leaks MMSIs)
    schema = ds.get_field_schema()
    checks = [group_field] if group_field != "id" else [f for f in ("mmsi", "tile_id") if f in schema] or ["id"]
    for check_field in checks:
        console.print(str(leakage_check(ds, check_field, split_field=field)))


@app.command()
def report(
    dataset: str = typer.Argument(..., help="FiftyOne dataset name"),
    run: Optional[str] = typer.Option(None, "--run", help="balance run key (default: no replication)"),
    fields: List[str] = typer.Option(["ground_truth.label", "split", "scene", "source"], "--field"),
) -> None:
    """Counts and imbalance ratios (class × split × scene × source), before and after a balance run."""
    from sardata.views.report import balance_report

    ds = _load(dataset)
    rep = balance_report(ds, run, fields=tuple(fields), console=console)
    console.print(f"wrote {rep.paths['png']} and {rep.paths['html']}")


@app.command()
def export(
    dataset: str = typer.Argument(..., help="FiftyOne dataset name"),
    format: str = typer.Option(..., "--format", help="coco | yolo | yolo-obb | imagefolder | masks | hf"),
    out: Path = typer.Option(..., "--out", help="export directory"),
    view_split: List[str] = typer.Option([], "--view-split", help="export only these splits (repeatable)"),
    balance_run: Optional[str] = typer.Option(None, "--balance-run", help="honour this run's replication counts"),
    label_field: str = typer.Option("ground_truth", "--label-field"),
    split_field: str = typer.Option("split", "--split-field"),
    original: bool = typer.Option(False, "--original", help="export the original SAR files (sar_path)"),
    original_format: str = typer.Option("tiff", "--original-format", help="imagefolder --original: tiff | npy"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace a different existing export"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Export a dataset (or some splits) for external trainers, honouring a balance run; atomic, with manifest."""
    from exporters import export_view

    ds = _load(dataset)
    view = ds.select_by(split_field, view_split) if view_split else ds.view()
    options = {"original_format": original_format} if format == "imagefolder" and original else {}
    manifest = export_view(
        view, out, format, label_field=label_field, balance_run=balance_run, split_field=split_field,
        image_source="original" if original else "display", overwrite=overwrite, seed=seed, **options,
    )
    if manifest.get("skipped_existing"):
        console.print(f"{out} already holds this export (same manifest); nothing to do")
    else:
        console.print(f"exported {manifest['counts']['replicas']} images ({manifest['counts']['samples']} samples) "
                      f"to [bold]{out}[/bold]: {manifest['counts']['images']}")

"""The end-to-end demo on built-in synthetic data (``sardata demo``).

Each stage is a call into the library, so the demo doubles as the shortest example of how the pieces fit.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console()

#: dataset key → synthetic size for the ingest tour (small: the point is the layouts, not the volume)
TOUR_SIZES = {"ssdd": 12, "opensarship": None, "fusar": 12, "whu_opt_sar": 2, "sar_aircraft": 6}


def _stage(title: str):
    console.rule(f"[bold cyan]{title}")
    return time.perf_counter()


def ingest_tour(out: Path, seed: int = 0, prefix: str = "demo") -> dict:
    """Writes every dataset's synthetic layout and ingests it; returns the per-dataset summaries."""
    import sardata
    from sardata.datasets import summarize
    from sardata.synth import synthesize

    summaries = {}
    for key, n in TOUR_SIZES.items():
        root = synthesize(key, out / "synth" / key, n=n, seed=seed)
        dataset = sardata.load(key, root, name=f"{prefix}-{key}", overwrite=True)
        summaries[key] = summarize(dataset)
    table = Table(title="synthetic datasets ingested")
    for col in ("dataset", "samples", "splits", "classes", "skipped"):
        table.add_column(col)
    for key, s in summaries.items():
        classes = ", ".join(f"{k}:{v}" for k, v in list(s["classes"].items())[:8])
        splits = ", ".join(f"{k}:{v}" for k, v in s["splits"].items())
        table.add_row(key, str(s["samples"]), splits, classes, str(len(s["skipped"])))
    console.print(table)
    return summaries


def run_demo(out: Path, quick: bool = False, seed: int = 0, device: str | None = None) -> dict:
    """Runs the demo under ``out`` and returns a summary dict (also written to ``out/summary.json``)."""
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {}
    t0 = _stage("1. synthesize and ingest the five datasets")
    summary["ingest"] = {k: {"samples": v["samples"], "skipped": len(v["skipped"])} for k, v in ingest_tour(out, seed).items()}
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    console.print(f"summary written to {out / 'summary.json'}")
    return summary

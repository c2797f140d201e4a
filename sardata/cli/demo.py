"""``sardata demo``: the whole loop on built-in synthetic data."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from sardata.cli._app import app


@app.command()
def demo(
    out: Path = typer.Option(Path("sardata-demo"), "--out", help="working directory for synthetic data and outputs"),
    quick: bool = typer.Option(False, "--quick", help="smallest sizes (a smoke run)"),
    seed: int = typer.Option(0, "--seed"),
    device: Optional[str] = typer.Option(None, "--device", help="cpu | cuda (default: cuda when available)"),
) -> None:
    """Run the whole loop on synthetic data: synth → ingest → embeddings → FAISS → scenes → balance → export → train → evaluate."""
    from sardata.demo import run_demo

    run_demo(out, quick=quick, seed=seed, device=device)

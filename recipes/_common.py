"""Shared parts of the recipes: command-line options, the synthetic-or-real data root, results tables, the
published numbers of the seed papers (from DESIGN.md, for reference only).

Every recipe takes ``--data ROOT`` (the real release; absent → a synthetic copy written with :mod:`sardata.synth`),
``--quick`` (a minutes-long CPU run), ``--out DIR``, ``--seed`` and ``--device``. ``--smoke`` (hidden) shrinks
everything further so the tests can run all four recipes in a few minutes; its numbers mean nothing.

Results go to ``<out>/results.md`` and ``<out>/results.json`` in the paper's layout: measured rows (baseline vs
method), with the published numbers in separate columns whose names start with ``published`` so nobody mistakes
them for a measurement.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Iterable

from rich.console import Console

from sardata._io import write_json, write_text
from sardata.stages import Stages  # noqa: F401  re-exported for the recipes

console = Console()

#: Prefix of every column holding a number copied from a paper rather than measured here.
PUBLISHED_PREFIX = "published"

#: BSLM (seed 000) Table I, AP50 % on SSDD: model → {"baseline"|"replication": (all, inshore, offshore)}.
PUBLISHED_BSLM = {
    "faster_rcnn": {"baseline": (88.26, 66.22, 97.68), "replication": (91.13, 74.82, 98.18)},
    "cascade_rcnn": {"baseline": (88.67, 68.00, 98.00), "replication": (91.53, 76.32, 98.25)},
    "ssd": {"baseline": (68.93, 46.52, 79.38), "replication": (76.59, 64.67, 82.44)},
    "retinanet": {"baseline": (71.51, 45.66, 83.35), "replication": (77.85, 58.06, 87.50)},
}

#: Seeds 001/002, best reported model per dataset: dataset → (model, accuracy %, weighted F1 %).
PUBLISHED_SHIPS = {
    "fusar": ("f-vgg16", 73.05, 70.54),
    "opensarship": ("f-vgg16", 74.56, 67.47),
    "mix": ("f-vgg16", 79.08, 76.76),
}

#: Seed 003 on WHU-OPT-SAR ("others" excluded): method → (pixel accuracy, mean class F1), fractions.
PUBLISHED_WHU = {
    "lanet": (0.7347, 0.6034),
    "lanet+cc": (0.7714, 0.6527),
}

#: Seed 004 on SAR-AIRcraft-1.0, MobileNetV2 students, AP50 %: arch → {"baseline"|"ifkd": AP50}.
PUBLISHED_IFKD = {
    "retinanet": {"baseline": 76.7, "ifkd": 78.5},
    "faster_rcnn": {"baseline": 80.0, "ifkd": 81.4},
}


# --------------------------------------------------------------------------------------------- options


def build_parser(name: str, description: str) -> argparse.ArgumentParser:
    """The options every recipe shares: ``--data``, ``--quick``, ``--out``, ``--seed``, ``--device`` (+ hidden
    ``--smoke``)."""
    parser = argparse.ArgumentParser(prog=f"python recipes/{name}.py", description=description)
    parser.add_argument("--data", type=Path, default=None,
                        help="root of the real dataset release (default: write a synthetic copy with sardata.synth)")
    parser.add_argument("--quick", action="store_true",
                        help="a minutes-long CPU run: tiny sizes, few epochs, small images (numbers are not comparable)")
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # tests: smallest sizes of all
    parser.add_argument("--out", type=Path, default=None,
                        help=f"output directory (default $SARDATA_HOME/recipes/{name})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--device", default=None, help="cpu | cuda | cuda:1 (default: cuda when available)")
    return parser


def csv_list(text: str | None) -> list[str] | None:
    """``"a,b"`` → ``["a", "b"]`` (None stays None)."""
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def check_choices(values: Iterable[str], allowed: Iterable[str], option: str) -> list[str]:
    """Rejects unknown values of a list option up front, naming the option and the allowed set."""
    values, allowed = list(values), list(allowed)
    unknown = [v for v in values if v not in allowed]
    if unknown or not values:
        raise SystemExit(f"error: {option} {','.join(values) or '(empty)'}: expected a comma-separated subset of "
                         f"{','.join(allowed)}")
    return values


def size_level(args) -> str:
    """``full``, ``quick`` or ``smoke`` (smoke implies quick)."""
    return "smoke" if args.smoke else "quick" if args.quick else "full"


def output_dir(args, name: str) -> Path:
    """``--out`` or ``$SARDATA_HOME/recipes/<name>``, created and absolute."""
    from sardata.paths import work_dir

    out = Path(args.out) if args.out else work_dir("recipes", name)
    out = out.expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    return out


def dataset_root(args, key: str, out: Path, n: int | None, data: Path | None = None, **synth_options) -> tuple[Path, bool]:
    """The dataset root to ingest and whether it is synthetic.

    Args:
        args: parsed options (``--data``, ``--seed``).
        key: dataset key (``ssdd``, ``opensarship``, ``fusar``, ``whu_opt_sar``, ``sar_aircraft``).
        out: the recipe's output directory; a synthetic copy goes to ``<out>/synth/<key>``.
        n: synthetic size (images/chips/tiles; None: the generator's default).
        data (None): the real root (default ``args.data``).
        **synth_options: extra options of the generator's ``generate`` (e.g. ``tile_size`` for WHU-OPT-SAR).
    """
    data = data if data is not None else args.data
    if data is not None:
        root = Path(data).expanduser()
        if not root.exists():
            raise SystemExit(f"error: --data {root}: no such directory")
        return root, False
    console.print(f"no --data given: writing a synthetic {key} under {out / 'synth'}")
    if synth_options:  # options beyond synthesize()'s signature live on the generator module
        from sardata import registry

        return registry.get(key).generator_module().generate(out / "synth" / key, n=n, seed=args.seed, **synth_options), True
    from sardata.synth import synthesize

    return synthesize(key, out / "synth" / key, n=n, seed=args.seed), True


def setup_environment() -> None:
    """Offline, untracked, headless: the environment every recipe runs in."""
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")


# --------------------------------------------------------------------------------------------- results


def pct(value) -> float | None:
    """A 0–1 fraction as a percentage rounded to 2 decimals (None/NaN → None)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(100.0 * float(value), 2)


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) >= 1 or value == 0 else f"{value:.4f}"
    return str(value)


def markdown_table(columns: list[str], rows: list[dict]) -> str:
    """A Markdown table of ``rows`` (dicts) over ``columns``; missing values show as ``–``."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(columns))) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def write_results(out: Path, title: str, columns: list[str], rows: list[dict], settings: dict,
                  notes: Iterable[str] = (), extra_tables: dict[str, tuple[list[str], list[dict]]] | None = None,
                  artifacts: dict | None = None) -> dict:
    """Writes ``<out>/results.md`` and ``<out>/results.json`` (atomically) and prints the table.

    Args:
        out: output directory.
        title: heading of the Markdown file.
        columns: column names of the main table, in order; published columns start with :data:`PUBLISHED_PREFIX`.
        rows: one dict per row (keys = columns; extra keys are kept in the JSON only).
        settings: how the numbers were made (sizes, synthetic or real, seed); shown above the table.
        notes (()): sentences shown under the table.
        extra_tables (None): ``{heading: (columns, rows)}`` further tables (per-class scores, ...).
        artifacts (None): ``{what: path}`` plots and files the library wrote.

    Returns:
        ``{"markdown": path, "json": path}``.
    """
    out = Path(out)
    lines = [f"# {title}", ""]
    if settings.get("synthetic"):
        lines.append("**Synthetic data**: these numbers test the pipeline, they say nothing about the method.")
    if settings.get("size") in ("quick", "smoke"):
        epochs = settings.get("epochs")
        lines.append(f"**{settings['size']} run**: tiny sizes and {epochs if epochs is not None else 'few'} "
                     f"epoch(s); not comparable with the paper.")
    lines += ["", "Settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()), "",
              markdown_table(columns, rows), ""]
    published = [c for c in columns if c.startswith(PUBLISHED_PREFIX)]
    if published:
        lines.append(f"Columns starting with “{PUBLISHED_PREFIX}” are the seed paper's reported numbers, copied for "
                     "reference; they were not measured here.")
        lines.append("")
    lines += [f"- {n}" for n in notes]
    for heading, (cols, table_rows) in (extra_tables or {}).items():
        lines += ["", f"## {heading}", "", markdown_table(cols, table_rows)]
    if artifacts:
        lines += ["", "## Artifacts", ""] + [f"- {k}: `{v}`" for k, v in artifacts.items()]
    md = write_text(out / "results.md", "\n".join(lines) + "\n")
    payload = {"title": title, "settings": settings, "columns": columns, "rows": rows, "notes": list(notes),
               "extra_tables": {h: {"columns": c, "rows": r} for h, (c, r) in (extra_tables or {}).items()},
               "artifacts": {k: str(v) for k, v in (artifacts or {}).items()}}
    js = write_json(out / "results.json", payload, default=str)
    console.print(markdown_table(columns, rows))
    console.print(f"results: {md}  {js}")
    return {"markdown": md, "json": js}


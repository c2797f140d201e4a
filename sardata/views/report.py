"""Balance report: counts and imbalance ratios over class × split × scene × source, before and after a balance run.

The count unit is the image (sample), since that is what balancing replicates or drops; an image counts once in
every class it contains. For list labels (detections) the object counts are given too: an image with three ships
adds three objects to its (class, split, scene, source) cell. "After" weighs each sample by its replication count
in the run; imbalance ratios are over image counts. Output: a rich table on the terminal, and ``balance_<run>.png`` (bar charts), ``balance_<run>.html``
(self-contained tables) and ``balance_<run>.json`` under ``work_dir(dataset.name, "reports")``.
"""

from __future__ import annotations

import html
import itertools
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from sardata._io import save_figure, write_json, write_text
from sardata.views.balance import replication_counts, resolve_label_path

DEFAULT_FIELDS = ("ground_truth.label", "split", "scene", "source")


@dataclass
class BalanceReport:
    """Counts before/after a balance run.

    Attributes:
        dataset: dataset name.
        run_key: the balance run (None: counts without replication).
        fields: the fields counted (those missing from the dataset are left out).
        rows: ``[(values tuple, before, after)]`` image counts per combination of field values.
        object_rows: ``{values tuple: (before, after)}`` object counts, when a field is a list label (detections).
        marginals: ``{field: {value: (before, after)}}``.
        by_split: ``{field: {split: {value: (before, after)}}}`` (when ``split`` is one of the fields).
        imbalance: ``{field: {"all" | split: (before ratio, after ratio)}}``, ratio = max / min count.
        paths: written files (``png``, ``html``, ``json``).
    """

    dataset: str
    run_key: str | None
    fields: list
    rows: list = field(default_factory=list)
    object_rows: dict = field(default_factory=dict)
    marginals: dict = field(default_factory=dict)
    by_split: dict = field(default_factory=dict)
    imbalance: dict = field(default_factory=dict)
    paths: dict = field(default_factory=dict)

    @property
    def html_path(self) -> str | None:
        return self.paths.get("html")

    @property
    def png_path(self) -> str | None:
        return self.paths.get("png")

    def __str__(self) -> str:
        parts = [f"{name} {scopes.get('train', scopes['all'])[0]} → {scopes.get('train', scopes['all'])[1]}"
                 for name, scopes in self.imbalance.items()]
        return f"{self.dataset} balance run {self.run_key!r}: max/min image count " + ", ".join(parts)

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "run_key": self.run_key,
            "fields": self.fields,
            "rows": [{"values": [str(v) for v in values], "before": b, "after": a,
                      **({"objects_before": self.object_rows[values][0], "objects_after": self.object_rows[values][1]}
                         if values in self.object_rows else {})} for values, b, a in self.rows],
            "marginals": {f: {str(v): list(c) for v, c in m.items()} for f, m in self.marginals.items()},
            "imbalance": {f: {s: list(r) for s, r in m.items()} for f, m in self.imbalance.items()},
        }


def _ratio(counts) -> float | None:
    positive = [c for c in counts if c > 0]
    return round(max(positive) / min(positive), 3) if positive else None


def _columns(samples, fields) -> tuple[list, list]:
    schema = samples.get_field_schema()
    kept, columns = [], []
    for name in fields:
        if name.split(".")[0] not in schema:
            continue
        values = samples.values(resolve_label_path(samples, name))
        kept.append(name)
        columns.append([v if isinstance(v, list) else [v] for v in values])
    return kept, columns


def balance_report(
    samples,
    run_key: str | None = None,
    fields=DEFAULT_FIELDS,
    write: bool = True,
    console=None,
    out_dir=None,
) -> BalanceReport:
    """Counts and imbalance ratios before and after balancing; prints a table and writes PNG/HTML/JSON.

    Args:
        samples: FiftyOne dataset or view.
        run_key (None): balance run whose replication counts give the "after" column (None: after = before).
        fields (``("ground_truth.label", "split", "scene", "source")``): fields/label paths to cross.
        write (True): write ``balance_<run>.{png,html,json}``.
        console (None): a ``rich.console.Console`` to print to (None: a new one; False: don't print).
        out_dir (None): where to write (default ``work_dir(dataset.name, "reports")``).
    """
    counts = replication_counts(samples, run_key)
    ids = samples.values("id")
    kept, columns = _columns(samples, fields)
    if not kept:
        raise ValueError(f"none of the fields {list(fields)} exist on {samples._dataset.name!r}")
    has_objects = any(len(v) > 1 for col in columns for v in col)
    cells: dict = defaultdict(lambda: [0, 0])
    object_cells: dict = defaultdict(lambda: [0, 0])
    for i, sid in enumerate(ids):
        for combo in itertools.product(*(list(dict.fromkeys(col[i])) or [None] for col in columns)):
            cells[combo][0] += 1
            cells[combo][1] += counts[sid]
        if has_objects:
            for combo in itertools.product(*(col[i] or [None] for col in columns)):
                object_cells[combo][0] += 1
                object_cells[combo][1] += counts[sid]
    rows = sorted(((k, v[0], v[1]) for k, v in cells.items()), key=lambda r: [str(x) for x in r[0]])
    report = BalanceReport(dataset=samples._dataset.name, run_key=run_key, fields=kept, rows=rows,
                           object_rows={k: tuple(v) for k, v in object_cells.items()})
    split_pos = kept.index("split") if "split" in kept else None
    for pos, name in enumerate(kept):
        marg: dict = defaultdict(lambda: [0, 0])
        per_split: dict = defaultdict(lambda: defaultdict(lambda: [0, 0]))
        for values, before, after in rows:
            marg[values[pos]][0] += before
            marg[values[pos]][1] += after
            if split_pos is not None and pos != split_pos:
                per_split[values[split_pos]][values[pos]][0] += before
                per_split[values[split_pos]][values[pos]][1] += after
        report.marginals[name] = {v: tuple(c) for v, c in sorted(marg.items(), key=lambda kv: str(kv[0]))}
        if per_split:
            report.by_split[name] = {
                str(sp): {v: tuple(c) for v, c in sorted(m.items(), key=lambda kv: str(kv[0]))}
                for sp, m in sorted(per_split.items(), key=lambda kv: str(kv[0]))
            }
        present = {v: c for v, c in marg.items() if v is not None}
        if name != "split":
            imb = {"all": (_ratio(c[0] for c in present.values()), _ratio(c[1] for c in present.values()))}
            for split, m in sorted(per_split.items(), key=lambda kv: str(kv[0])):
                vals = [c for v, c in m.items() if v is not None]
                imb[str(split)] = (_ratio(c[0] for c in vals), _ratio(c[1] for c in vals))
            report.imbalance[name] = imb
    if console is not False:
        _print(report, console)
    if write:
        from sardata.paths import work_dir

        target = Path(out_dir) if out_dir else work_dir(report.dataset, "reports")
        target.mkdir(parents=True, exist_ok=True)
        stem = f"balance_{run_key or 'none'}"
        report.paths = {"png": str(_plot(report, target / f"{stem}.png")),
                        "html": str(_html(report, target / f"{stem}.html")),
                        "json": str(target / f"{stem}.json")}
        write_json(target / f"{stem}.json", report.to_dict(), indent=1)
    return report


def _print(report: BalanceReport, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"{report.dataset}: counts before/after balance run {report.run_key!r}")
    for name in report.fields:
        table.add_column(name)
    table.add_column("images before", justify="right")
    table.add_column("images after", justify="right")
    if report.object_rows:
        table.add_column("objects before", justify="right")
        table.add_column("objects after", justify="right")
    for values, before, after in report.rows:
        objects = [str(c) for c in report.object_rows.get(values, ("", ""))] if report.object_rows else []
        table.add_row(*[str(v) for v in values], str(before), str(after), *objects)
    console.print(table)
    imb = Table(title="imbalance ratio (max / min image count)")
    imb.add_column("field")
    imb.add_column("scope")
    imb.add_column("before", justify="right")
    imb.add_column("after", justify="right")
    for name, scopes in report.imbalance.items():
        for scope, (before, after) in scopes.items():
            imb.add_row(name, scope, str(before), str(after))
    console.print(imb)


def _plot(report: BalanceReport, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(report.marginals)
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.8), squeeze=False)
    for ax, name in zip(axes[0], names):
        if name in report.by_split:  # one bar pair per (value, split): balancing acts within a split
            pairs = [(f"{v}\n{sp}", c) for sp, m in report.by_split[name].items() for v, c in m.items()]
        else:
            pairs = [(str(v), c) for v, c in report.marginals[name].items()]
        labels = [label for label, _ in pairs]
        before = [c[0] for _, c in pairs]
        after = [c[1] for _, c in pairs]
        x = np.arange(len(labels))
        ax.bar(x - 0.2, before, 0.4, label="before")
        ax.bar(x + 0.2, after, 0.4, label="after")
        ax.set_xticks(x, labels, rotation=30 if len(labels) > 4 else 0, ha="right" if len(labels) > 4 else "center",
                      fontsize=8)
        scopes = report.imbalance.get(name, {})
        scope = "train" if "train" in scopes else "all"
        ratio = scopes.get(scope)
        ax.set_title(name if not ratio else f"{name}\nmax/min ({scope}) {ratio[0]} → {ratio[1]}", fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle(f"{report.dataset} — balance run {report.run_key!r}")
    fig.tight_layout()
    save_figure(path, fig, dpi=100)
    plt.close(fig)
    return path


def _html(report: BalanceReport, path: Path) -> Path:
    esc = html.escape

    def table(header, rows):
        head = "".join(f"<th>{esc(str(h))}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in r) + "</tr>" for r in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    obj_header = ["objects before", "objects after"] if report.object_rows else []
    count_rows = [(*v, b, a, *(report.object_rows.get(v, ("", "")) if obj_header else ())) for v, b, a in report.rows]
    imb_rows = [(n, s, b, a) for n, scopes in report.imbalance.items() for s, (b, a) in scopes.items()]
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{esc(report.dataset)} balance report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin-bottom:2em}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}th{{background:#eee}}</style></head><body>
<h1>{esc(report.dataset)}: balance run {esc(repr(report.run_key))}</h1>
<h2>Imbalance ratio (max / min image count)</h2>{table(["field", "scope", "before", "after"], imb_rows)}
<h2>Counts</h2>{table([*report.fields, "images before", "images after", *obj_header], count_rows)}
</body></html>"""
    return write_text(path, page)

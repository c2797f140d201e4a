"""``sardata index``, ``scenes``, ``visualize`` and ``app``: thin wrappers over sardata.index / sardata.scenes."""

from __future__ import annotations

import os
import signal
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from sardata.cli._app import app
from sardata.cli._app import load_dataset_or_exit as _load

console = Console()


@app.command()
def index(
    dataset: str = typer.Argument(..., help="FiftyOne dataset name"),
    field: str = typer.Option("dcgan_embedding", "--field", help="sample field holding the embeddings"),
    brain_key: str = typer.Option("faiss_dcgan", "--brain-key", help="brain key of the similarity run"),
    metric: str = typer.Option("cosine", "--metric", help="cosine | euclidean"),
    kind: str = typer.Option("auto", "--kind", help="FAISS: auto | flat | hnsw | ivf | ivfpq (IVF-PQ + refine)"),
    recall_target: float = typer.Option(0.95, "--recall-target",
                                        help="FAISS: recall@10 the index must reach on held-out queries"),
    backend: str = typer.Option("faiss", "--backend",
                                help="any fiftyone-brain similarity backend: faiss | sklearn | lancedb | milvus | ..."),
    option: list[str] = typer.Option([], "--option", help="backend config KEY=VALUE (repeatable), e.g. uri=..."),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing run with the same brain key"),
) -> None:
    """Build the similarity index (a FiftyOne brain run answering "sort by similarity" in the App)."""
    from sardata.index import compute_index

    ds = _load(dataset)
    kwargs = dict(_parse_option(o) for o in option)
    if backend == "faiss":
        kwargs["recall_target"] = recall_target
    result = compute_index(ds, embedding_field=field, brain_key=brain_key, metric=metric, kind=kind,
                           overwrite=overwrite, backend=backend, **kwargs)
    tuning = getattr(result.config, "tuning", None)
    if tuning is None:
        console.print(f"indexed {result.total_index_size} samples of {dataset!r} ({backend}, {metric}) as brain key "
                      f"[bold]{brain_key}[/bold]")
        return
    console.print(
        f"indexed {result.total_index_size} samples of {dataset!r} ({result.index_kind}, {metric}) as brain key "
        f"[bold]{brain_key}[/bold] → {result.config.index_path}"
    )
    console.print(describe_tuning(tuning), highlight=False)


def describe_tuning(tuning: dict) -> str:
    """One line: chosen kind, its search parameters and the recall measured at build time."""
    params = ", ".join(f"{k}={v}" for k, v in tuning.get("params", {}).items()) or "exact"
    if not tuning.get("measured"):
        how = "exact search: recall 1 by construction"
    else:
        how = (f"recall@{tuning['k']} {tuning['recall_at_k']:.3f} on {tuning['queries']} held-out queries "
               f"(target {tuning['target']:.2f}{'' if tuning.get('reached') else ', NOT reached'})")
    tried = "; ".join(f"{t['kind']} {t['params']} {t['recall_at_k']:.3f}" for t in tuning.get("tried", []))
    return f"{tuning['kind']} ({params}): {how}" + (f"; tried {tried}" if tried else "")


def _parse_option(text: str):
    import json

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--option {text!r}: expected KEY=VALUE")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


@app.command()
def scenes(
    dataset: str = typer.Argument(..., help="FiftyOne dataset name"),
    model: str = typer.Option("dcgan", "--model", help="embedding model: reads the field <model>_embedding"),
    k: int = typer.Option(2, "--k", help="clusters (2 = BSLM inshore/offshore)"),
    seed: int = typer.Option(0, "--seed"),
    run_key: str = typer.Option("scenes", "--run-key", help="name of the scene run"),
    field: Optional[str] = typer.Option(None, "--field", help="embedding field (default: <model>_embedding)"),
    n_init: int = typer.Option(5, "--n-init", help="k-means restarts"),
    viz: str = typer.Option("pca", "--viz", help="2-D map for the App: pca | umap | tsne | none"),
    normalize: str = typer.Option("auto", "--normalize",
                                  help="features before k-means: auto (chosen without labels) | l2 | standardize | "
                                       "none"),
    variant: str = typer.Option("auto", "--variant",
                                help="auto (= spread when the layout is known) | spread (std of F over its 4x4 grid) | "
                                     "trimmed (std without each channel's extreme cells) | pooled (mean) | flat "
                                     "(paper's F)"),
    deflate: Optional[int] = typer.Option(None, "--deflate",
                                          help="k=2: at most this many near-even split directions projected out "
                                               "before re-clustering (default: the library's; 0 = plain k-means, "
                                               "with --variant flat --normalize none the paper's)"),
    guard: Optional[str] = typer.Option(None, "--guard",
                                        help="k=2: what a split must pass to be named by size: tail (smaller cluster "
                                             "<= 40 % and the long tail along the centroid direction) | size (the "
                                             "40 % alone); default: the library's"),
) -> None:
    """Cluster scene embeddings into scene labels and tags; print the report; compute the 2-D map."""
    from sardata import scenes as sc

    ds = _load(dataset)
    field = field or f"{model}_embedding"
    run = sc.assign_scenes(ds, embedding_field=field, k=k, seed=seed, run_key=run_key, n_init=n_init,
                           normalize=normalize, variant=variant,
                           **({} if deflate is None else {"deflate": deflate}),
                           **({} if guard is None else {"guard": guard}))
    table = Table(title=f"{dataset}: scene run {run_key!r} (k={k}, {field})")
    table.add_column("scene")
    table.add_column("samples", justify="right")
    table.add_column("montage (typical | boundary)")
    for name in run.labels:
        table.add_row(name, str(run.sizes[name]), os.path.join(run.report_dir, f"montage_{name}.png"))
    console.print(table)
    silhouette = "n/a" if run.silhouette is None else f"{run.silhouette:.3f}"
    score = "" if run.score is None else f", stability {run.score:.3f}"
    deflated = f", {run.deflated} near-even split direction(s) removed" if run.deflated else ""
    console.print(f"feature space {run.variant}/{run.normalize} ({run.criterion}{score}{deflated}); "
                  f"silhouette {silhouette}; "
                  f"report {os.path.join(run.report_dir, 'report.json')}")
    cells = [f"{key} {c.get('stability')} / {c.get('silhouette')} / {c.get('minority')} / {c.get('tail')}"
             for key, c in run.candidates.items()]
    console.print(f"candidates (stability / silhouette / smaller-cluster share / tail skewness; guard {run.guard}): "
                  + "; ".join(cells))
    if run.uncertain_view:
        console.print(f"least certain: saved view [bold]{run.uncertain_view}[/bold] ({run.uncertain_count} samples; "
                      f"App: view bar, or `ds.load_saved_view({run.uncertain_view!r})`)")
    if viz != "none":
        _visualize(ds, field, viz, f"{run_key}_viz", run_key)


def _visualize(ds, field: str, method: str, brain_key: str, run_key: Optional[str] = None) -> None:
    from sardata import scenes as sc

    _, png = sc.compute_visualization(ds, embedding_field=field, method=method, brain_key=brain_key,
                                      run_key=run_key)
    console.print(f"2-D map ({method}) as brain key [bold]{brain_key}[/bold] (App embeddings panel); scatter {png}")


@app.command()
def visualize(
    dataset: str = typer.Argument(..., help="FiftyOne dataset name"),
    model: str = typer.Option("dcgan", "--model", help="embedding model: reads the field <model>_embedding"),
    field: Optional[str] = typer.Option(None, "--field", help="embedding field (default: <model>_embedding)"),
    method: str = typer.Option("pca", "--method", help="pca | umap | tsne"),
    brain_key: Optional[str] = typer.Option(None, "--brain-key", help="default: <model>_viz"),
) -> None:
    """Compute a 2-D map of the embeddings for the App's embeddings panel, plus a scatter PNG coloured by scene."""
    ds = _load(dataset)
    _visualize(ds, field or f"{model}_embedding", method, brain_key or f"{model}_viz")


def launch(dataset: str, port: int = 5151, address: Optional[str] = None, remote: bool = False,
           browser: bool = True, spaces=None):
    """Launches the FiftyOne App on ``dataset`` with the FAISS backend importable in its server process.

    The App server is a child process started from ``os.environ``; the brain-config variables of
    :func:`sardata.index.backend_env` make ``"faiss"`` a registered backend there (stored runs reload through their
    config class path anyway, since sardata is installed). Dynamic attributes (``sar_stats.*``) are declared in the
    schema first, so the sidebar shows them.

    Args:
        dataset: FiftyOne dataset name.
        port (5151): App port.
        address (None): bind address; default ``127.0.0.1``, or ``0.0.0.0`` with ``remote``.
        remote (False): serve for a remote browser (binds all interfaces unless ``address`` is given).
        browser (True): open a local browser tab (never with ``remote``).
        spaces (None): an ``fo.Space`` layout of the App's panels.

    Returns:
        the ``fo.Session``.
    """
    import sardata.index as sindex

    os.environ.update(sindex.backend_env())
    import fiftyone as fo

    ds = fo.load_dataset(dataset)
    # ``sar_stats`` is a dynamic embedded document: declare its attributes so the App's sidebar lists them
    ds.add_dynamic_sample_fields()
    address = address or ("0.0.0.0" if remote else "127.0.0.1")
    return fo.launch_app(ds, port=port, address=address, remote=remote or not browser, auto=False, spaces=spaces)


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


@app.command("app")
def app_cmd(
    dataset: str = typer.Argument(..., help="FiftyOne dataset name"),
    port: int = typer.Option(5151, "--port"),
    remote: bool = typer.Option(False, "--remote", help="serve for a remote browser (binds 0.0.0.0)"),
    address: Optional[str] = typer.Option(None, "--address", help="bind address (default 127.0.0.1)"),
    browser: bool = typer.Option(True, "--browser/--no-browser", help="open a local browser tab"),
) -> None:
    """Launch the FiftyOne App on a dataset (scene tags, embeddings panel, FAISS similarity); Ctrl-C stops it."""
    _load(dataset)
    session = launch(dataset, port=port, address=address, remote=remote, browser=browser)
    bound = address or ("0.0.0.0" if remote else "127.0.0.1")
    host = "localhost" if bound == "0.0.0.0" else bound
    console.print(f"FiftyOne App on [bold]http://{host}:{port}/[/bold] (bound to {bound}); Ctrl-C to stop",
                  highlight=False)
    if remote and not address:
        console.print("[yellow]bound to all interfaces; use --address 127.0.0.1 and an SSH tunnel to keep it private")
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)  # `kill PID` also closes the session and its server
    try:
        session.wait(-1)
    except KeyboardInterrupt:
        console.print("stopping the App")
    finally:
        session.close()

"""The typer application objects shared by the command modules."""

import typer

app = typer.Typer(
    name="sardata",
    help="Data engine for SAR computer vision: ingest, embed, index, scene tags, balance, export, train.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
embed_app = typer.Typer(help="GAN (BSLM) and contrastive-clustering embeddings.", no_args_is_help=True)
train_app = typer.Typer(help="Trainers that read sardata (or any) exports.", no_args_is_help=True)
app.add_typer(embed_app, name="embed")
app.add_typer(train_app, name="train")


def load_dataset_or_exit(name: str):
    """The FiftyOne dataset ``name``, or a one-line error listing the existing ones and exit code 1."""
    import fiftyone as fo
    from rich.console import Console

    if not fo.dataset_exists(name):
        Console(stderr=True).print(f"[red]error:[/red] no FiftyOne dataset {name!r}; datasets: {fo.list_datasets()}")
        raise typer.Exit(code=1)
    return fo.load_dataset(name)


def fail(error: Exception):
    """Prints ``error`` as a one-line error and exits with code 1 (no traceback for expected failures)."""
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True).print(f"[red]error:[/red] {escape(str(error))}")
    raise typer.Exit(code=1)

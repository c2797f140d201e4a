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

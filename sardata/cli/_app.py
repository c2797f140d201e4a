"""The typer application objects shared by the command modules, and the one way a command fails.

Every command registered on these apps runs inside :func:`failing`: an expected failure (:data:`CLI_ERRORS`) becomes
one line ``error: <message>`` on stderr and exit code 1, never a traceback. The message is the exception's, and
sardata's exceptions name the file or value at fault. Set ``SARDATA_DEBUG=1`` to get the traceback instead.
"""

from __future__ import annotations

import functools
import os
from typing import NoReturn

import typer

#: What a command reports as a one-line error (exit 1). Every exception sardata defines subclasses one of these:
#: ``SarReadError``, ``IngestError``, ``UnsafePathError``, ``UnsafeArchiveError``, ``VOCParseError`` are
#: ``ValueError``; ``DatasetNotFoundError`` and ``CheckpointNotFoundError`` are ``FileNotFoundError`` (``OSError``).
#: ``FloatingPointError`` is a diverged training (non-finite loss); ``ImportError`` a missing optional dependency.
CLI_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, FloatingPointError, ImportError)


#: ``--resume`` of every trainer (see :class:`sardata.config.TrainConfig`).
RESUME_HELP = "checkpoint file or run directory to continue from, or 'latest' (the newest in --out, if any)"


def fail(error: BaseException | str) -> NoReturn:
    """Prints ``error`` as a one-line error on stderr and exits with code 1 (no traceback for expected failures)."""
    from rich.console import Console
    from rich.markup import escape

    message = " ".join(str(error).split()) or type(error).__name__
    Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(code=1)


def failing(func):
    """Wraps a command so that :data:`CLI_ERRORS` end in :func:`fail` (typer still sees the signature)."""

    @functools.wraps(func)
    def command(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except CLI_ERRORS as e:
            if os.environ.get("SARDATA_DEBUG"):
                raise
            fail(e)

    return command


class _Typer(typer.Typer):
    """A typer app whose commands all fail the same way (:func:`failing`)."""

    def command(self, *args, **kwargs):
        register = super().command(*args, **kwargs)

        def decorator(func):
            register(failing(func))
            return func

        return decorator


app = _Typer(
    name="sardata",
    help="Data engine for SAR computer vision: ingest, embed, index, scene tags, balance, export, train.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
embed_app = _Typer(help="GAN (BSLM) and contrastive-clustering embeddings.", no_args_is_help=True)
train_app = _Typer(help="Trainers that read sardata (or any) exports.", no_args_is_help=True)
app.add_typer(embed_app, name="embed")
app.add_typer(train_app, name="train")


def load_dataset_or_exit(name: str):
    """The FiftyOne dataset ``name``, or a one-line error listing the existing ones and exit code 1."""
    import fiftyone as fo

    if not fo.dataset_exists(name):
        fail(f"no FiftyOne dataset {name!r}; datasets: {fo.list_datasets()}")
    return fo.load_dataset(name)

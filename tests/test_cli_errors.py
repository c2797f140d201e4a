"""Every command family fails the same way on bad input: exit code 1, one line ``error: …`` naming the bad file/value.

Each case is the cheapest bad input that reaches the library (no training runs: the errors come before the first
step). A traceback, exit code 2, a message split over several lines or one that does not name the culprit fails.
"""

import importlib
import inspect
import pkgutil
import warnings

import pytest
from typer.testing import CliRunner

from test_views_data import make_detection_dataset

runner = CliRunner()


def _fails(args, *named):
    from sardata.cli import app

    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 1, f"{args}: exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # no traceback
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for name in named:
        assert str(name) in lines[0], f"{name!r} not named in {lines[0]!r}"
    return lines[0]


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    import fiftyone as fo

    name = "test-cli-errors"
    ds = make_detection_dataset(tmp_path_factory.mktemp("cli"), name, inshore=2, offshore=2, test=1)
    yield ds
    if fo.dataset_exists(name):
        fo.delete_dataset(name)


def test_data_commands(tmp_path):
    _fails(["synth", "ssd", tmp_path / "x"], "'ssd'", "ssdd")
    missing = tmp_path / "no-such-root"
    _fails(["ingest", "ssdd", missing], str(missing))
    _fails(["ingest", "nope", tmp_path], "'nope'")
    (tmp_path / "file").write_text("x")
    _fails(["demo", "--out", tmp_path / "file", "--quick"], str(tmp_path / "file"))


def test_embed_commands(small_dataset, tmp_path):
    _fails(["embed", "train-gan", small_dataset.name, "--image-size", "100", "--out", tmp_path / "g"], "100")
    _fails(["embed", "train-cc", small_dataset.name, "--clusters", "1", "--out", tmp_path / "c", "--epochs", "1"],
           "clusters", "1")
    _fails(["embed", "extract", small_dataset.name, "--model", "vgg"], "'vgg'")
    _fails(["embed", "extract", "no-such-dataset"], "'no-such-dataset'")
    bad_ckpt = tmp_path / "nothing.pth"
    _fails(["embed", "extract", small_dataset.name, "--checkpoint", bad_ckpt], str(bad_ckpt))


def test_index_and_scene_commands(small_dataset):
    _fails(["index", small_dataset.name, "--field", "no_such_field"], "no_such_field")
    _fails(["scenes", small_dataset.name, "--field", "no_such_field"], "no_such_field")
    _fails(["visualize", small_dataset.name, "--field", "no_such_field"], "no_such_field")
    _fails(["app", "no-such-dataset"], "'no-such-dataset'")


def test_view_commands(small_dataset, tmp_path):
    _fails(["balance", small_dataset.name, "--mode", "triple"], "'triple'")
    _fails(["merge", small_dataset.name, "--name", small_dataset.name + "-m", "--dedup", "fuzzy"], "fuzzy")
    _fails(["split", small_dataset.name, "--method", "random"], "random")
    _fails(["report", small_dataset.name, "--run", "no_such_run"], "no_such_run")
    _fails(["export", small_dataset.name, "--format", "voc", "--out", tmp_path / "e"], "'voc'")


def test_train_commands(tmp_path):
    missing = tmp_path / "no-export"
    _fails(["train", "detector", "--data", missing, "--epochs", "1"], str(missing))
    _fails(["train", "detector", "--data", missing, "--lr-steps", "8,x"], "--lr-steps", "8,x")
    _fails(["train", "classifier", "--data", missing], str(missing))
    teacher = tmp_path / "teacher.pth"
    _fails(["train", "distill", "--data", tmp_path, "--teacher", teacher], str(teacher))
    _fails(["train", "segment", "--data", missing], str(missing))
    predictions = tmp_path / "predictions.json"
    _fails(["evaluate", "whatever", "--predictions", predictions], str(predictions))
    predictions.write_text("[]")
    annotations = tmp_path / "annotations.json"
    annotations.write_text("{}")
    _fails(["evaluate", "whatever", "--predictions", predictions, "--annotations", annotations], str(annotations))


def test_every_sardata_exception_is_one_the_cli_reports():
    import exporters
    import sardata
    from sardata.cli._app import CLI_ERRORS

    found, broken = [], []
    for package in (sardata, exporters):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name.startswith("sardata.cli"):
                continue
            try:
                module = importlib.import_module(info.name)
            except ImportError as e:  # a module broken on its own is another test's failure, not this one's
                broken.append(f"{info.name}: {e}")
                continue
            for _, obj in inspect.getmembers(module, inspect.isclass):
                if issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                    found.append(obj)
                    assert issubclass(obj, CLI_ERRORS), f"{obj.__module__}.{obj.__name__} escapes the CLI"
    names = {cls.__name__ for cls in found}
    assert {"SarReadError", "IngestError", "DatasetNotFoundError", "UnsafeArchiveError",
            "CheckpointNotFoundError"} <= names
    if broken:
        warnings.warn(f"modules that do not import: {broken}")

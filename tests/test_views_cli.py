"""The views/export CLI commands on a small dataset (typer's CliRunner, same process and database)."""

import json

from typer.testing import CliRunner

from test_views_data import make_classification_dataset, make_detection_dataset

runner = CliRunner()


def _run(args):
    from sardata.cli import app

    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_balance_report_export_cli(tmp_path, fo_dataset_name):
    ds = make_detection_dataset(tmp_path / "src", fo_dataset_name, inshore=2, offshore=4, test=2)
    out = _run(["balance", ds.name, "--by", "scene", "--mode", "replicate", "--run-key", "bslm"])
    assert "inshore" in out and "balance_bslm" in out
    assert "imbalance" in _run(["report", ds.name, "--run", "bslm"])
    out_dir = tmp_path / "yolo"
    _run(["export", ds.name, "--format", "yolo", "--out", str(out_dir), "--balance-run", "bslm",
          "--view-split", "train"])
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["counts"]["images"] == {"train": 8} and "SelectBy" in manifest["view_stages"]
    assert "nothing to do" in _run(["export", ds.name, "--format", "yolo", "--out", str(out_dir),
                                    "--balance-run", "bslm", "--view-split", "train"])
    from sardata.cli import app

    refused = runner.invoke(app, ["export", ds.name, "--format", "coco", "--out", str(out_dir)])
    assert refused.exit_code == 1 and "overwrite" in refused.output


def test_merge_and_split_cli(tmp_path, fo_dataset_name):
    import fiftyone as fo

    a = make_classification_dataset(tmp_path, fo_dataset_name + "-a", ["Cargo", "Tanker", "Tug"], mmsis=[1, 2, 3],
                                    source="opensarship", tiff=False)
    b = make_classification_dataset(tmp_path, fo_dataset_name + "-b", ["Cargo", "Fishing"], mmsis=[2, 9],
                                    source="fusar", seed=7, tiff=False)
    name = fo_dataset_name + "-mix"
    try:
        out = _run(["merge", a.name, b.name, "--taxonomy", "ships3", "--name", name, "--dedup", "exact"])
        assert "1 groups shared" in out
        out = _run(["split", name, "--method", "group", "--group-field", "mmsi", "--ratio", "0.5", "--ratio", "0.5"])
        assert "no leakage" in out
        # a stratified split is checked for MMSI leakage too
        out = _run(["split", name, "--method", "stratified", "--ratio", "0.5", "--ratio", "0.5", "--by", "none"])
        assert "mmsi" in out
        assert len(fo.load_dataset(name)) == 4
    finally:
        for n in (name, a.name, b.name):
            if fo.dataset_exists(n):
                fo.delete_dataset(n)

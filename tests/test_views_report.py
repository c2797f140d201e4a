"""Balance report: counts and imbalance before/after replication, files written."""

import json

from test_views_data import make_detection_dataset


def test_report_counts_and_files(tmp_path, fo_dataset_name):
    from rich.console import Console

    from sardata.views.balance import balance
    from sardata.views.report import balance_report

    ds = make_detection_dataset(tmp_path, fo_dataset_name, inshore=2, offshore=6, test=3)
    balance(ds, by="scene", run_key="bslm")
    console = Console(record=True, width=200)
    report = balance_report(ds, "bslm", fields=("split", "scene", "source"), console=console, out_dir=tmp_path / "r")
    assert report.marginals["scene"] == {"inshore": (2, 6), "offshore": (9, 9)}
    assert report.imbalance["scene"]["train"] == (3.0, 1.0)
    assert report.imbalance["scene"]["all"] == (4.5, 1.5)
    text = console.export_text()
    assert "inshore" in text and "imbalance" in text
    png = open(report.paths["png"], "rb").read(8)
    assert png.startswith(b"\x89PNG")
    assert "<table>" in open(report.paths["html"]).read()
    assert json.load(open(report.paths["json"]))["run_key"] == "bslm"
    assert report.html_path == report.paths["html"] and "scene 3.0 → 1.0" in str(report)


def test_report_counts_objects_for_detections_and_defaults_to_reports_dir(tmp_path, fo_dataset_name):
    from sardata.paths import work_dir
    from sardata.views.report import balance_report

    ds = make_detection_dataset(tmp_path, fo_dataset_name, inshore=1, offshore=2, test=1, classes=("ship", "boat"))
    report = balance_report(ds, console=False)
    objects = ds.count("ground_truth.detections")
    assert sum(b for b, _ in report.object_rows.values()) == objects
    # images count once per class they contain: 4 images, the 2 with two boxes hold both classes (boat, ship)
    assert report.marginals["ground_truth.label"] == {"boat": (2, 2), "ship": (4, 4)}
    assert sum(b for _, b, _ in report.rows) == 6
    assert report.paths["png"].startswith(str(work_dir(ds.name, "reports")))
    assert "missing" not in report.fields

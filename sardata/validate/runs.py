"""Validation runs stored like every sardata run: a FiftyOne custom run (``list / load / delete``), its full report
in ``report.json`` beside the PNG histograms, and one saved view per finding kind so that a person opens the samples
(for label problems: only the offending labels) in the App.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sardata._io import write_json
from sardata.paths import work_dir
from sardata.validate.findings import ValidationReport

RUN_METHOD = "sardata.validate"


def view_name(run_key: str, kind: str) -> str:
    return f"{run_key}-{kind}".replace("_", "-")


def report_dir(dataset_name: str, run_key: str) -> Path:
    return work_dir(dataset_name, "validate") / run_key


def save_run(dataset, report: ValidationReport) -> ValidationReport:
    """Saves the views of ``report``'s findings, ``report.json``, and registers the run (replacing one of that key)."""
    if report.run_key in list_validation_runs(dataset):
        delete_validation_run(dataset, report.run_key, delete_report=False)
    report.views = {}
    for finding in report.findings:
        if finding.label_ids:
            view = dataset.select_labels(ids=finding.label_ids, fields=finding.label_field)
        else:
            view = dataset.select(finding.sample_ids, ordered=True)
        name = view_name(report.run_key, finding.kind)
        dataset.save_view(name, view, description=finding.message, overwrite=True)
        report.views[finding.kind] = name
    write_json(Path(report.report_dir) / "report.json", report.to_dict())
    config = dataset.init_run(method=RUN_METHOD, run_key_name=report.run_key, label_field=report.label_field,
                              report_dir=report.report_dir, counts=report.counts(), views=report.views,
                              params=report.params)
    dataset.register_run(report.run_key, config, overwrite=True)
    return report


def list_validation_runs(samples) -> list[str]:
    """Keys of the validation runs on the dataset."""
    dataset = samples._dataset
    return [key for key in dataset.list_runs() if getattr(dataset.get_run_info(key).config, "method", None) == RUN_METHOD]


def load_validation_run(samples, run_key: str = "validate") -> ValidationReport:
    """The stored :class:`ValidationReport` named ``run_key``."""
    import json

    dataset = samples._dataset
    if run_key not in list_validation_runs(dataset):
        raise ValueError(f"no validation run {run_key!r} on {dataset.name!r}; runs: {list_validation_runs(dataset)}")
    config = dataset.get_run_info(run_key).config
    path = Path(config.report_dir) / "report.json"
    try:
        return ValidationReport.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError) as e:
        raise ValueError(f"validation run {run_key!r}: cannot read {path} ({e})") from e


def delete_validation_run(samples, run_key: str, delete_report: bool = True) -> None:
    """Deletes a validation run, its saved views and (unless ``delete_report=False``) its report directory."""
    dataset = samples._dataset
    config = dataset.get_run_info(run_key).config
    for name in (getattr(config, "views", None) or {}).values():
        if dataset.has_saved_view(name):
            dataset.delete_saved_view(name)
    if delete_report:
        shutil.rmtree(config.report_dir, ignore_errors=True)
    dataset.delete_run(run_key)

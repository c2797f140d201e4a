"""Scene-aware detection evaluation: scene breakdown, predictions back into FiftyOne (the COCO metrics themselves
are tested against hand-computed AP in test_metrics.py)."""

import json

import numpy as np
import pytest
from PIL import Image

from sardata.evaluate import (
    evaluate_dataset,
    load_predictions,
    scene_groups,
    scene_table_markdown,
)

W, H = 100, 80


@pytest.fixture
def scene_dataset(tmp_path, fo_dataset_name):
    """Four images: two inshore (``scene`` label), two offshore (one via the ``scene`` label, one via a tag)."""
    import fiftyone as fo

    dataset = fo.Dataset(fo_dataset_name)
    samples = []
    for i in range(4):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(np.zeros((H, W), np.uint8)).save(path)
        box = [0.1 + 0.1 * i, 0.2, 0.2, 0.25]
        sample = fo.Sample(filepath=str(path), metadata=fo.ImageMetadata(width=W, height=H),
                           ground_truth=fo.Detections(detections=[fo.Detection(label="ship", bounding_box=box)]),
                           split="test")
        if i < 3:
            sample["scene"] = fo.Classification(label="inshore" if i < 2 else "offshore")
        else:
            sample.tags.append("offshore")
        sample.tags.append("test_inshore" if i < 2 else "test_offshore")  # SSDD's official subsets
        samples.append(sample)
    dataset.add_samples(samples)
    return dataset


def _results(dataset, inshore_shift: float):
    """Perfect offshore predictions (score 0.8); inshore ones (score 0.5) shifted by ``inshore_shift`` of the image
    width."""
    results = []
    for sample in dataset:
        for det in sample.ground_truth.detections:
            x, y, w, h = det.bounding_box
            inshore = sample.scene is not None and sample.scene.label == "inshore"
            if inshore:
                x += inshore_shift
            results.append({"sample_id": sample.id, "image_id": 0, "category_id": 1, "category_name": "ship",
                            "bbox": [x * W, y * H, w * W, h * H], "score": 0.5 if inshore else 0.8})
    return results


def test_scene_groups_read_field_and_tags(scene_dataset):
    import fiftyone as fo

    from sardata.evaluate import scene_of

    assert scene_of("offshore") == "offshore" and scene_of(fo.Classification(label="inshore")) == "inshore"
    assert scene_of(None) is None
    groups = scene_groups(scene_dataset)
    assert list(groups) == ["all", "inshore", "offshore", "test_inshore", "test_offshore"]
    assert len(groups["all"]) == 4 and len(groups["inshore"]) == 2 and len(groups["offshore"]) == 2
    assert groups["test_inshore"] == groups["inshore"]


def test_scene_breakdown_on_planted_example(scene_dataset, tmp_path):
    results = _results(scene_dataset, inshore_shift=0.15)  # inshore boxes miss their ships entirely
    out = evaluate_dataset(scene_dataset, {"faster_rcnn": results}, split="test", out_dir=tmp_path / "eval")
    row = out["rows"]["faster_rcnn"]
    assert row["offshore"]["AP50"] == pytest.approx(1.0)
    assert row["inshore"]["AP50"] == pytest.approx(0.0)
    # all: the two offshore hits rank first (recall 0.5 at precision 1), the two inshore misses add nothing:
    # 51 of COCO's 101 recall points read precision 1
    assert row["all"]["AP50"] == pytest.approx(51 / 101)
    markdown = out["markdown"].read_text()
    assert "| model | all | inshore | offshore | test_inshore | test_offshore |" in markdown
    assert "| faster_rcnn |" in markdown and "100.00" in markdown
    saved = json.loads(out["json"].read_text())
    assert saved["faster_rcnn"]["offshore"]["per_class"]["ship"]["AP50"] == pytest.approx(1.0)
    # Predictions are in FiftyOne beside the ground truth, with an evaluation run the App can filter.
    assert "eval_predictions" in scene_dataset.list_evaluations()
    sample = scene_dataset.first()
    assert len(sample.predictions.detections) == 1 and sample.predictions.detections[0].label == "ship"
    assert scene_dataset.count_values("predictions.detections.eval_predictions")["tp"] == 2


def test_load_predictions_matches_sample_ids_and_fills_empty(scene_dataset):
    results = _results(scene_dataset, 0.0)
    ids = scene_dataset.values("id")
    view = load_predictions(scene_dataset, [r for r in results if r["sample_id"] != ids[3]], sample_ids=ids,
                            eval_key=None)
    assert len(view) == 4
    counts = [len(d.detections) for d in scene_dataset.values("predictions")]
    assert counts == [1, 1, 1, 0]
    np.testing.assert_allclose(scene_dataset.first().predictions.detections[0].bounding_box,
                               scene_dataset.first().ground_truth.detections[0].bounding_box, atol=1e-6)
    with pytest.raises(ValueError, match="sample_id"):
        load_predictions(scene_dataset, [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1.0}])


def test_faint_detections_stay_out_of_fiftyone_but_count_in_the_metrics(scene_dataset, tmp_path):
    from sardata.evaluate import APP_MIN_SCORE

    results = _results(scene_dataset, 0.0)
    # an extra, near-zero-score hit on the last sample's ship: loaded nowhere, but it is a true positive for AP
    last = scene_dataset.last()
    x, y, w, h = last.ground_truth.detections[0].bounding_box
    faint = {"sample_id": last.id, "image_id": 0, "category_id": 1, "category_name": "ship",
             "bbox": [x * W, y * H, w * W, h * H], "score": APP_MIN_SCORE / 10}
    kept = [r for r in results if r["sample_id"] != last.id]
    out = evaluate_dataset(scene_dataset, {"m": kept + [faint]}, split="test", out_dir=tmp_path / "eval")
    assert scene_dataset.last().predictions.detections == []  # the App is not handed the 0.005 box
    assert out["rows"]["m"]["all"]["AP50"] == pytest.approx(1.0)  # 4 of 4 ships found, ranked above no false alarm
    view = load_predictions(scene_dataset, kept + [faint], field="everything", eval_key=None, min_score=0)
    assert len(view.last().everything.detections) == 1


def test_table_layout_rows_models_columns_scenes():
    rows = {"faster": {"all": {"AP50": 0.8826}, "inshore": {"AP50": 0.6622}, "offshore": {"AP50": 0.9768}},
            "ssd": {"all": {"AP50": 0.6893}, "inshore": {"AP50": float("nan")}}}
    lines = scene_table_markdown(rows).splitlines()
    assert lines[0] == "| model | all | inshore | offshore |"
    assert lines[2] == "| faster | 88.26 | 66.22 | 97.68 |"
    assert lines[3] == "| ssd | 68.93 | – | – |"


def test_cli_evaluate(scene_dataset, tmp_path):
    from typer.testing import CliRunner

    from sardata.cli import app

    run_dir = tmp_path / "detector_faster_rcnn_resnet50"
    run_dir.mkdir()
    (run_dir / "predictions_test.json").write_text(json.dumps(_results(scene_dataset, 0.0)))
    result = CliRunner().invoke(app, ["evaluate", scene_dataset.name, "--predictions",
                                      str(run_dir / "predictions_test.json"), "--out", str(tmp_path / "tables")])
    assert result.exit_code == 0, result.output
    assert "detector_faster_rcnn_resnet50" in result.output
    assert (tmp_path / "tables" / "scene_eval.md").is_file()
    bad = CliRunner().invoke(app, ["evaluate", "no-such-dataset", "--predictions", str(run_dir / "predictions_test.json")])
    assert bad.exit_code == 1 and "not found" in bad.output

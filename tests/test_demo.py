"""`sardata demo --quick` runs the whole loop end to end (the README's main job, at smoke size)."""

import json
from collections import Counter

import fiftyone as fo
import torch
from fiftyone import ViewField as F

from sardata.views.balance import load_run, replication_counts


def test_quick_demo_runs_every_stage(tmp_path):
    from sardata.demo import run_demo

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        summary = run_demo(tmp_path, quick=True, name="test-demo-ssdd")
    finally:
        torch.set_num_threads(previous)
    assert json.loads((tmp_path / "summary.json").read_text())["samples"] == summary["samples"] == 24
    assert summary["similarity_query_ok"] is True
    assert set(summary["scene_counts"]) == {"inshore", "offshore"}
    assert set(summary["ap50_by_scene"]) >= {"all", "inshore", "offshore"}
    assert (tmp_path / "export" / "yolo" / "data.yaml").is_file()
    dataset = fo.load_dataset("test-demo-ssdd")
    try:
        # every sample was tagged and scored against the generator's truth, and the summary says what the tags say
        scenes, truth = dataset.values("scene.label"), dataset.values("scene_truth")
        assert None not in scenes and None not in truth
        assert summary["scene_counts"] == dict(Counter(scenes))
        assert summary["scene_accuracy"] == round(sum(s == t for s, t in zip(scenes, truth)) / len(truth), 3)
        # the BSLM run raised every training scene to the largest one, and the export holds exactly its replicas
        train_scenes = dataset.match(F("split") == "train").count_values("scene.label")
        assert load_run(dataset, "bslm").after == {s: max(train_scenes.values()) for s in train_scenes}
        manifest = json.loads((tmp_path / "export" / "coco" / "manifest.json").read_text())
        assert manifest["balance_run"] == "bslm"
        assert manifest["counts"]["replicas"] == sum(replication_counts(dataset, "bslm").values())
        # the detector's test predictions are back on exactly the test samples, with an evaluation run
        assert "faiss_dcgan" in dataset.list_brain_runs() and "eval_predictions" in dataset.list_evaluations()
        assert set(dataset.exists("predictions").values("id")) == set(dataset.match(F("split") == "test").values("id"))
    finally:
        fo.delete_dataset("test-demo-ssdd")

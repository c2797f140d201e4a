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
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["samples"] == summary["samples"] == 24
    assert summary["similarity_query_ok"] is True
    assert set(summary["scene_counts"]) == {"inshore", "offshore"}
    # Table I layout for the three rows, AP50 as fractions (None only where a scene has no test image)
    assert set(written["detection"]) == {"baseline", "bslm", "cfar"}
    for row in written["detection"].values():
        assert set(row) == {"all", "inshore", "offshore"}
    assert written["detection"]["cfar"]["all"] is not None
    # the same iteration budget for both learned detectors, the BSLM export holding the replicas
    histories = [json.loads((tmp_path / "detector" / k / "metrics.json").read_text()) for k in ("baseline", "bslm")]
    assert [sum(r["iters"] for r in h) for h in histories] == [6, 6]
    plain = json.loads((tmp_path / "export" / "coco" / "annotations" / "train.json").read_text())["images"]
    replicated = json.loads((tmp_path / "export" / "coco_bslm" / "annotations" / "train.json").read_text())["images"]
    assert all(im.get("replica", 0) == 0 for im in plain)
    assert (tmp_path / "export" / "yolo" / "data.yaml").is_file()
    dataset = fo.load_dataset("test-demo-ssdd")
    try:
        # every sample was tagged and scored against the generator's truth, and the summary says what the tags say
        scenes, truth = dataset.values("scene.label"), dataset.values("scene_truth")
        assert None not in scenes and None not in truth
        assert summary["scene_counts"] == dict(Counter(scenes))
        assert summary["scene_accuracy"] == round(sum(s == t for s, t in zip(scenes, truth)) / len(truth), 3)
        # the BSLM run raised every training scene to the largest one, and the BSLM export holds exactly its replicas
        train_scenes = dataset.match(F("split") == "train").count_values("scene.label")
        assert load_run(dataset, "bslm").after == {s: max(train_scenes.values()) for s in train_scenes}
        manifest = json.loads((tmp_path / "export" / "coco_bslm" / "manifest.json").read_text())
        assert manifest["balance_run"] == "bslm"
        assert manifest["counts"]["replicas"] == sum(replication_counts(dataset, "bslm").values())
        copies = sum(1 for im in replicated if im.get("replica", 0) > 0)
        extra = sum(c - 1 for c in replication_counts(dataset, "bslm").values() if c > 1)
        assert len(replicated) == len(plain) + copies and copies == extra
        assert json.loads((tmp_path / "export" / "coco" / "manifest.json").read_text())["balance_run"] is None
        # each model's test predictions are back on exactly the test samples
        assert "faiss_dcgan" in dataset.list_brain_runs()
        test_ids = set(dataset.match(F("split") == "test").values("id"))
        for key in ("baseline", "bslm", "cfar"):
            predicted = set(dataset.exists(f"predictions_{key}").values("id"))
            assert predicted and predicted <= test_ids, key
    finally:
        fo.delete_dataset("test-demo-ssdd")

"""`sardata demo --quick` runs the whole loop end to end (the README's main job, at smoke size)."""

import json

import fiftyone as fo
import torch


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
    assert summary["scene_counts"]["inshore"] <= summary["scene_counts"]["offshore"]  # BSLM: smaller = inshore
    assert 0.0 <= summary["scene_accuracy"] <= 1.0
    assert set(summary["ap50_by_scene"]) >= {"all", "inshore", "offshore"}
    assert (tmp_path / "export" / "coco" / "manifest.json").is_file()
    assert (tmp_path / "export" / "yolo" / "data.yaml").is_file()
    dataset = fo.load_dataset("test-demo-ssdd")
    assert "faiss_dcgan" in dataset.list_brain_runs() and dataset.has_field("predictions")
    fo.delete_dataset("test-demo-ssdd")

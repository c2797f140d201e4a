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
    assert len(replicated) > len(plain) and all(im.get("replica", 0) == 0 for im in plain)
    assert (tmp_path / "export" / "coco" / "manifest.json").is_file()
    assert (tmp_path / "export" / "yolo" / "data.yaml").is_file()
    dataset = fo.load_dataset("test-demo-ssdd")
    assert "faiss_dcgan" in dataset.list_brain_runs()
    assert all(dataset.has_field(f"predictions_{k}") for k in ("baseline", "bslm", "cfar"))
    fo.delete_dataset("test-demo-ssdd")

"""The four paper recipes, end to end on synthetic data at their smallest sizes (``--smoke``), in-process.

Each run must write ``results.md`` and ``results.json`` in the paper's layout (measured rows for baseline and method,
published numbers in clearly labelled columns), with finite measured numbers, and the plots the library writes.
"""

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(2)

PUBLISHED = "published"


def _results(out: Path) -> dict:
    md, js = out / "results.md", out / "results.json"
    assert md.is_file() and js.is_file()
    payload = json.loads(js.read_text())
    text = md.read_text()
    assert "| " + " | ".join(payload["columns"]) + " |" in text  # the table's header, in the given order
    assert "reported numbers, copied for reference" in text and "Synthetic data" in text
    assert payload["settings"]["synthetic"] is True and payload["settings"]["size"] == "smoke"
    return payload


def _finite(row: dict, columns) -> None:
    for column in columns:
        value = row[column]
        assert isinstance(value, (int, float)) and math.isfinite(value), (column, value)
        assert 0.0 <= value <= 100.0, (column, value)


def _artifacts_exist(payload: dict, *words: str) -> None:
    for key, path in payload["artifacts"].items():
        if any(w in key for w in words):
            assert Path(path).exists(), (key, path)


def test_bslm_ssdd_smoke(tmp_path):
    from recipes import bslm_ssdd

    summary = bslm_ssdd.main(["--smoke", "--out", str(tmp_path), "--seed", "0"])
    payload = _results(tmp_path)
    measured = ["AP50 all", "AP50 inshore", "AP50 offshore"]
    spread = ["± all", "± inshore", "± offshore"]
    assert payload["columns"] == ["model", "arm", "seeds", "AP50 all", "± all", "AP50 inshore", "± inshore",
                                  "AP50 offshore", "± offshore", *(f"{PUBLISHED} {c}" for c in measured)]
    # synthetic data: the oracle arm (replication by the generator's truth) runs by default beside baseline and BSLM
    assert [(r["model"], r["arm"]) for r in payload["rows"]] == [
        ("faster_rcnn", "baseline"), ("faster_rcnn", "bslm"), ("faster_rcnn", "oracle")]
    for row in payload["rows"]:
        _finite(row, measured + spread)
        assert row["seeds"] == [0, 1] and len(row["seeds inshore"]) == 2  # two training seeds in a smoke run
        mean = sum(row["seeds all"]) / 2
        assert row["AP50 all"] == pytest.approx(mean, abs=0.01)
    base, rep, oracle = payload["rows"]
    assert base[f"{PUBLISHED} AP50 inshore"] == 66.22 and rep[f"{PUBLISHED} AP50 inshore"] == 74.82
    assert oracle[f"{PUBLISHED} AP50 inshore"] is None  # the paper has no oracle row
    diffs = payload["extra_tables"]["Paired differences (AP50 points, by seed)"]["rows"]
    assert [d["arm"] for d in diffs] == ["bslm − baseline", "oracle − baseline"]
    for diff, row in zip(diffs, (rep, oracle)):
        assert diff["seeds inshore"] == [round(b - a, 2) for a, b in zip(base["seeds inshore"], row["seeds inshore"])]
    assert diffs[0][f"{PUBLISHED} Δ inshore"] == 8.6 and diffs[1][f"{PUBLISHED} Δ inshore"] is None
    # the synthetic SSDD ships the official inshore/offshore test subsets, so the test split follows them
    settings = payload["settings"]
    assert settings["test_scenes_from"].startswith("official")
    assert settings["scene_accuracy_vs_truth"] == summary["scene_accuracy_vs_truth"]
    assert summary["feature_dim"] > 0
    _artifacts_exist(payload, "balance report", "scene map", "training curves", "evaluation")

    # training images per arm, counted by the generator's truth; each arm's export holds exactly those
    truth = json.loads(next(tmp_path.glob("synth/ssdd/**/synth_truth.json")).read_text())["images"]
    n_train = {s: sum(1 for t in truth.values() if t["split"] == "train" and t["scene"] == s)
               for s in ("inshore", "offshore")}
    per_arm = settings["train_images_per_arm"]
    for arm in ("baseline", "bslm", "oracle"):
        assert per_arm[arm]["by"] == "scene_truth"
        assert per_arm[arm]["before"] == {s: n for s, n in n_train.items() if n}
    assert per_arm["baseline"]["after"] == per_arm["baseline"]["before"]
    wanted = max(n_train.values())
    assert per_arm["oracle"]["after"] == {"inshore": wanted, "offshore": wanted}  # truth-inshore raised to offshore

    def exported(arm):
        folder = "coco" if arm == "baseline" else f"coco_{arm}"
        images = json.loads((tmp_path / "export" / folder / "annotations" / "train.json").read_text())["images"]
        ids = dict(zip(summary_ids["sample"], summary_ids["image"]))
        return Counter(truth[ids[im["sample_id"]]]["scene"] for im in images)

    import fiftyone as fo

    dataset = fo.load_dataset(summary["dataset"])
    summary_ids = {"sample": dataset.values("id"), "image": dataset.values("image_id")}
    assert exported("baseline") == Counter(n_train)
    assert exported("oracle") == Counter({"inshore": wanted, "offshore": n_train["offshore"]})
    assert exported("bslm") == Counter(per_arm["bslm"]["after"])
    # the oracle copies every truth-inshore training image (replicas of inshore images only)
    oracle_counts = dict(zip(dataset.values("image_id"), dataset.values("balance_oracle")))
    for image_id, t in truth.items():
        if t["split"] == "train":
            whole = wanted // n_train["inshore"]
            expected = (whole, whole + 1) if t["scene"] == "inshore" else (1,)
            assert oracle_counts[image_id] in expected, (image_id, t["scene"], oracle_counts[image_id])

    # --report-only: a new ingest keeps the finished runs (same config and data) and invents none (seed 2 never ran)
    again = bslm_ssdd.main(["--smoke", "--out", str(tmp_path), "--seed", "0", "--seeds", "3", "--report-only"])
    assert [r["seeds"] for r in again["rows"]] == [[0, 1]] * 3
    assert [r["AP50 inshore"] for r in again["rows"]] == [r["AP50 inshore"] for r in payload["rows"]]

    errors = payload["extra_tables"]
    (heading,) = [h for h in errors if h.startswith("Test errors by scene")]
    for row in errors[heading]["rows"]:
        assert row["TP all"] + row["FN all"] == row["ships all"] > 0
        assert row["FN inshore near land"] <= row["FN inshore"] and row["FP inshore on land"] <= row["FP inshore"]


def test_bslm_oracle_refuses_without_truth(tmp_path):
    from recipes import bslm_ssdd

    real = tmp_path / "Official-SSDD"  # a release with no generator truth next to it
    real.mkdir()
    with pytest.raises(SystemExit, match="oracle.*synth_truth.json"):
        bslm_ssdd.main(["--smoke", "--data", str(real), "--out", str(tmp_path / "out"), "--arms", "baseline,oracle"])
    assert bslm_ssdd.resolve_arms(None, "quick", real) == ["baseline", "bslm"]  # real data: no oracle by default
    with pytest.raises(SystemExit, match="include baseline"):
        bslm_ssdd.resolve_arms("bslm", "quick", real)


def test_bslm_epoch_budget_gives_replicated_arms_proportionally_more_steps():
    from recipes import bslm_ssdd

    # 160 training images; the tags replicate them to 236, the truth to 246 (the --quick run's counts)
    replication = {"baseline": {"after": {"inshore": 37, "offshore": 123}},
                   "bslm": {"after": {"inshore": 113, "offshore": 123}},
                   "oracle": {"after": {"inshore": 123, "offshore": 123}},
                   "steps_control": {"after": {"inshore": 37, "offshore": 123}}}
    arms = ["baseline", "bslm", "oracle", "steps_control"]
    assert bslm_ssdd.arm_iterations(300, replication, arms, "steps") == dict.fromkeys(arms, 300)
    # the same passes over each arm's own set: 300 · 236 / 160 = 442.5 → 442, 300 · 246 / 160 = 461.25 → 461;
    # the control trains without replicas for the bslm arm's steps
    assert bslm_ssdd.arm_iterations(300, replication, arms, "epochs") == {
        "baseline": 300, "bslm": 442, "oracle": 461, "steps_control": 442}
    assert bslm_ssdd.arm_iterations(None, replication, arms, "epochs") == dict.fromkeys(arms)  # paper: by epochs
    assert bslm_ssdd.effective_budget("steps", None) == "epochs" and bslm_ssdd.effective_budget("steps", 300) == "steps"
    # runs of the two budgets live in different directories; the baseline's is shared
    assert bslm_ssdd.run_name("ssd", "baseline", 1, 300, 300) == "ssd_baseline_seed1"
    assert bslm_ssdd.run_name("ssd", "bslm", 1, 442, 300) == "ssd_bslm_seed1_it442"


def test_bslm_epoch_budget_smoke_trains_the_control_on_the_baseline_export(tmp_path):
    from recipes import bslm_ssdd

    bslm_ssdd.main(["--smoke", "--out", str(tmp_path), "--seeds", "1", "--iterations", "4", "--budget", "epochs",
                    "--arms", "baseline,bslm,steps_control"])
    payload = _results(tmp_path)
    steps = payload["settings"]["detector_iterations_per_arm"]
    assert steps["baseline"] == 4 and steps["steps_control"] == steps["bslm"] > 4  # the replicas add steps
    assert [r["arm"] for r in payload["rows"]] == ["baseline", "bslm", "steps_control"]
    diffs = payload["extra_tables"]["Paired differences (AP50 points, by seed)"]["rows"]
    assert [d["arm"] for d in diffs] == ["bslm − baseline", "steps_control − baseline", "bslm − steps_control"]
    runs = tmp_path / "detectors"
    control = json.loads((runs / f"faster_rcnn_steps_control_seed0_it{steps['bslm']}" / "config.json").read_text())
    bslm = json.loads((runs / f"faster_rcnn_bslm_seed0_it{steps['bslm']}" / "config.json").read_text())
    assert Path(control["data"]).name == "coco" and Path(bslm["data"]).name == "coco_bslm"
    assert (runs / "faster_rcnn_baseline_seed0" / "predictions_test.json").is_file()


def test_bslm_step_control_needs_the_epoch_budget_and_the_bslm_arm(tmp_path):
    from recipes import bslm_ssdd

    with pytest.raises(SystemExit, match="include bslm"):
        bslm_ssdd.resolve_arms("baseline,steps_control", "quick", tmp_path)
    with pytest.raises(SystemExit, match="--budget epochs"):
        bslm_ssdd.main(["--smoke", "--out", str(tmp_path), "--arms", "baseline,bslm,steps_control"])
    with pytest.raises(SystemExit, match="--iterations"):
        bslm_ssdd.main(["--out", str(tmp_path), "--budget", "epochs", "--data", str(tmp_path)])


def test_bslm_rejects_unknown_model(tmp_path):
    from recipes import bslm_ssdd

    with pytest.raises(SystemExit, match="--models"):
        bslm_ssdd.main(["--smoke", "--out", str(tmp_path), "--models", "yolo"])


def test_ship_classification_smoke(tmp_path):
    from recipes import ship_classification

    ship_classification.main(["--smoke", "--out", str(tmp_path)])
    payload = _results(tmp_path)
    assert [(r["dataset"], r["model"]) for r in payload["rows"]] == [("opensarship", "cnn"), ("fusar", "cnn"),
                                                                    ("mix", "cnn")]
    assert payload["settings"]["mix split"] == "each chip's split from its source dataset"
    sequential = next(t for h, t in payload["extra_tables"].items() if h.startswith("Seed-002 sequential"))
    assert [(r["variant"], r["stage"], r["trained on"]) for r in sequential["rows"]] == [
        ("base", 0, "fusar"), ("frozen", 1, "fusar → opensarship"), ("frozen", 2, "fusar → opensarship → mix"),
        ("unfrozen", 1, "fusar → opensarship"), ("unfrozen", 2, "fusar → opensarship → mix")]
    for row in sequential["rows"]:
        _finite(row, [f"{n} {k}" for n in ("fusar", "opensarship", "mix") for k in ("acc", "macro F1")])
    for row in payload["rows"]:
        _finite(row, ["accuracy", "weighted F1", "macro F1", "majority accuracy", "majority weighted F1"])
        assert isinstance(row["collapsed"], bool)
    assert "published accuracy" in payload["columns"] and "published weighted F1" in payload["columns"]
    assert payload["settings"]["mmsi_groups_crossing_splits"] == {"opensarship": 0, "fusar": 0, "mix": 0}
    samples = payload["settings"]["samples"]
    assert samples["mix"] <= samples["opensarship"] + samples["fusar"]
    per_class = payload["extra_tables"]["Per-class F1 (%) and test support"]
    assert per_class["columns"][2:5] == ["F1 Cargo", "F1 Fishing", "F1 Tanker"]
    assert len(per_class["rows"]) == 3
    _artifacts_exist(payload, "confusion matrix", "Grad-CAM", "balance report")
    for name in ("opensarship", "fusar", "mix"):
        export = tmp_path / "export" / name
        assert (export / "train").is_dir()
        assert {p.name for p in (export / "train").iterdir() if p.is_dir()} <= {"Cargo", "Fishing", "Tanker"}


def test_gradcam_overlays_of_chips_with_different_sizes(tmp_path):
    from PIL import Image

    from sardata.train.classifier import SarImageFolder, build_classifier, write_gradcams

    rng = np.random.default_rng(0)
    for i, side in enumerate((40, 56)):
        for cls in ("Cargo", "Tanker"):
            folder = tmp_path / "test" / cls
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (side, side), dtype=np.uint8)).save(folder / f"{i}.png")
    from sardata.train.classifier import ChipTransform

    dataset = SarImageFolder(tmp_path / "test", ["Cargo", "Tanker"], ChipTransform(32, [0.5] * 3, [0.25] * 3))
    written = write_gradcams(build_classifier("cnn", 2).eval(), dataset, tmp_path / "cams", 4, torch.device("cpu"))
    assert len(written) == 4
    for cam_path, overlay_path in written:
        assert np.asarray(Image.open(cam_path)).shape == (32, 32) and overlay_path.is_file()


def test_whu_segmentation_smoke(tmp_path):
    from recipes import whu_segmentation

    whu_segmentation.main(["--smoke", "--out", str(tmp_path)])
    payload = _results(tmp_path)
    assert [r["method"] for r in payload["rows"]] == ["lanet", "lanet+cc"]
    for row in payload["rows"]:
        _finite(row, ["pixel_acc_mean", "pixel_acc_std", "f1_mean", "f1_std"])
        assert row["seeds"] == [0] and " ± " in row["pixel accuracy"]
    assert payload["columns"][:6] == ["method", "seeds", "pixel accuracy", "mean precision", "mean recall", "mean F1"]
    assert payload["rows"][1]["published mean F1"] == 65.27 and payload["rows"][0]["published pixel accuracy"] == 73.47
    per_class = payload["extra_tables"]["Per-class F1 (%), mean ± std over seeds"]["columns"]
    assert per_class == ["method"] + [f"F1 {c}" for c in ("farmland", "city", "village", "water", "forest", "road")]
    scenes = payload["extra_tables"]["Per scene (%), mean ± std over seeds"]["rows"]
    assert {r["scene"] for r in scenes} <= {"urban", "rural", "mixed"} and scenes
    assert (tmp_path / "export" / "masks" / "class_map.json").is_file()
    _artifacts_exist(payload, "loss curve", "confusion matrix", "predicted masks", "balance report")


def test_aircraft_distillation_smoke(tmp_path):
    from recipes import aircraft_distillation

    aircraft_distillation.main(["--smoke", "--out", str(tmp_path)])
    payload = _results(tmp_path)
    assert payload["columns"] == ["arch", "model", "method", "FRS", "EDE", "FDR", "HSM", "AP50", "± std",
                                  "class-agnostic AP50", "seeds", "published AP50"]
    rows = payload["rows"]
    assert rows[0]["model"] == "teacher resnet18"
    students = [r for r in rows if r["model"] == "student mobilenet_v2"]
    assert [r["method"] for r in students][0] == "no distillation" and len(students) == 6
    assert [r["published AP50"] for r in students] == [80.0, None, None, None, None, 81.4]
    ran = [r for r in students if r["AP50"] != "not run"]
    assert [r["method"] for r in ran] == ["no distillation", "IFKD (FRS + EDE + FDR + HSM)"]
    assert all(r["AP50"] == "not run" for r in rows if r["model"] == "student resnet18")
    ablation = json.loads((tmp_path / "ablation.json").read_text())
    assert {"ap50_mean", "ap50_std", "seeds", "teacher_ap50", "ap50_agnostic_mean", "teacher_ap50_agnostic"} <= set(
        ablation[0])
    assert sum(r["run"] for r in ablation) == 2
    _artifacts_exist(payload, "loss terms", "teacher curves")


def test_aircraft_distillation_quick_runs_every_table4_row():
    from recipes import aircraft_distillation as recipe

    quick = recipe.Sizes.of("quick")
    assert quick.variants == ("baseline", "frs", "ede", "fdr", "hsm", "ifkd") and quick.seeds == (0, 1, 2)
    assert quick.archs == ("faster_rcnn",) and quick.students == ("mobilenet_v2",)


def test_ship_classification_never_mixes_real_and_synthetic(tmp_path):
    from recipes import ship_classification

    with pytest.raises(SystemExit, match="--fusar"):
        ship_classification.main(["--smoke", "--out", str(tmp_path), "--opensarship", str(tmp_path)])

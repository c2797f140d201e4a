"""The end-to-end demo on built-in synthetic data (``sardata demo``).

The BSLM loop of DESIGN.md on a synthetic SSDD whose inshore/offshore truth is known: synth → ingest → DCGAN scene
features → FAISS similarity index → k=2 scene tags (scored against the truth) → 2-D map → replicate inshore training
images → COCO and YOLO exports → a short detector training → mAP by scene (BSLM Table I layout). Before that, a
tour writes and ingests a small synthetic copy of each of the five datasets. Each stage is one library call, so the
demo doubles as the shortest example of how the pieces fit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sardata._io import write_json
from sardata.registry import DATASETS
from sardata.stages import Stages

console = Console()

@dataclass
class DemoSizes:
    """Sizes that keep the demo within minutes on a 2-core CPU (``quick`` is a smoke run for tests).

    The two detectors (baseline and BSLM) train at once, one process and one thread each, for the same
    ``detector_iterations`` optimizer steps of the ``cpu`` preset (:mod:`sardata.train.detector`).
    """

    ssdd_images: int = 200
    gan_steps: int = 60  # optimiser steps (the library default budget), whatever the number of images
    gan_image_size: int = 128  # the feature stays 28672-d; 256 px (the paper's) is ~4x slower on a CPU
    gan_batch_size: int = 16
    pca_dim: int | None = None  # the full F: scene clustering may pool it over its 4x4 positions
    detector_arch: str = "faster_rcnn"
    detector_iterations: int = 800
    detector_crop: int | None = None  # None: the preset's
    tour: bool = True

    @classmethod
    def quick(cls) -> "DemoSizes":
        return cls(ssdd_images=24, gan_steps=3, gan_image_size=64, gan_batch_size=8,
                   detector_iterations=6, detector_crop=128, tour=False)


#: Rows of the demo's Table I: model key → label.
DETECTION_ROWS = {"baseline": "Faster R-CNN (no replication)", "bslm": "Faster R-CNN + BSLM replication",
                  "cfar": "CA-CFAR (no training)"}
SCENES = ("all", "inshore", "offshore")


def ingest_tour(out: Path, seed: int = 0, prefix: str = "demo") -> dict:
    """Writes every dataset's synthetic layout and ingests it; returns the per-dataset summaries."""
    import sardata
    from sardata.datasets import summarize
    from sardata.synth import synthesize

    summaries = {}
    for key, spec in DATASETS.items():  # tour sizes are small: the point is the layouts, not the volume
        root = synthesize(key, out / "synth" / key, n=spec.tour_size, seed=seed)
        dataset = sardata.load(key, root, name=f"{prefix}-{key}", overwrite=True)
        summaries[key] = summarize(dataset)
    table = Table(title="synthetic datasets ingested")
    for col in ("dataset", "samples", "splits", "classes", "skipped"):
        table.add_column(col)
    for key, s in summaries.items():
        classes = ", ".join(f"{k}:{v}" for k, v in list(s["classes"].items())[:8])
        splits = ", ".join(f"{k}:{v}" for k, v in s["splits"].items())
        table.add_row(key, str(s["samples"]), splits, classes, str(len(s["skipped"])))
    console.print(table)
    return summaries


def attach_scene_truth(dataset, truth_path: Path, field: str = "scene_truth") -> None:
    """Copies the generator's inshore/offshore truth onto the samples (by SSDD image id) for scoring."""
    truth = json.loads(Path(truth_path).read_text())["images"]
    ids, image_ids = dataset.values("id"), dataset.values("image_id")
    values = {sid: truth.get(iid, {}).get("scene") for sid, iid in zip(ids, image_ids)}
    dataset.set_values(field, values, key_field="id")


def run_demo(out: Path, quick: bool = False, seed: int = 0, device: str | None = None, name: str = "demo-ssdd") -> dict:
    """Runs the demo under ``out`` and returns a summary dict (also written to ``out/summary.json``)."""
    import fiftyone.brain as fob

    import sardata  # also registers the "faiss" brain backend
    from exporters import export_view
    from sardata.embed.dcgan import train_gan
    from sardata.embed.extract import extract_features
    from sardata.evaluate import evaluate_dataset
    from sardata.scenes import assign_scenes, compute_visualization, scene_accuracy
    from sardata.synth import synthesize
    from sardata.evaluate import read_results
    from sardata.train.detector import DetectorConfig, train_concurrently
    from sardata.train.detector import train as train_detector
    from sardata.views.balance import balance
    from sardata.views.report import balance_report

    sizes = DemoSizes.quick() if quick else DemoSizes()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    stage = Stages(console)
    summary: dict = {"dataset": name, "quick": quick}

    if sizes.tour:
        stage("synthesize and ingest the five datasets (layout tour)")
        summary["tour"] = {k: {"samples": v["samples"], "skipped": len(v["skipped"])}
                           for k, v in ingest_tour(out, seed).items()}

    stage(f"synthetic SSDD ({sizes.ssdd_images} images) → FiftyOne dataset {name!r}")
    root = synthesize("ssdd", out / "synth" / "ssdd-main", n=sizes.ssdd_images, seed=seed)
    dataset = sardata.load("ssdd", root, name=name, overwrite=True)
    attach_scene_truth(dataset, root / "synth_truth.json")
    summary["samples"] = len(dataset)

    stage("BSLM DCGAN: train on the images, then extract the 28672-d scene features")
    checkpoint = train_gan(dataset, out_dir=out / "dcgan", steps=sizes.gan_steps, batch_size=sizes.gan_batch_size,
                           image_size=sizes.gan_image_size, device=device, seed=seed)
    features = extract_features(dataset, model="dcgan", checkpoint=checkpoint, device=device,
                                pca_dim=sizes.pca_dim, embedding_field="dcgan_embedding")
    summary["feature_dim"] = int(features.features.shape[1])

    stage("FAISS similarity index (fiftyone-brain backend 'faiss')")
    if "faiss_dcgan" in dataset.list_brain_runs():
        dataset.delete_brain_run("faiss_dcgan")
    fob.compute_similarity(dataset, embeddings="dcgan_embedding", backend="faiss", brain_key="faiss_dcgan")
    query = dataset.first().id
    neighbours = dataset.sort_by_similarity(query, k=4, brain_key="faiss_dcgan").values("id")
    summary["similarity_query_ok"] = neighbours[0] == query

    stage("k=2 scene tags (smaller cluster = inshore), scored against the generator's truth")
    # tag=False: the evaluation groups test images by the generator's inshore/offshore truth (as the paper uses
    # SSDD's official test subsets); scene-like tags would mix the predicted scenes in.
    run = assign_scenes(dataset, embedding_field="dcgan_embedding", k=2, seed=seed, tag=False)  # the library policy
    accuracy = scene_accuracy(dataset, pred_field="scene", true_field="scene_truth")
    compute_visualization(dataset, embedding_field="dcgan_embedding", method="pca", brain_key="scenes_viz",
                          run_key=run.run_key)
    summary["scene_counts"] = dataset.count_values("scene.label")
    summary["scene_accuracy"] = round(accuracy["accuracy"], 3)
    summary["scene_space"] = {"variant": run.variant, "normalize": run.normalize, "stability": run.score}
    console.print(f"scene tags: {summary['scene_counts']}; accuracy vs truth {accuracy['accuracy']:.3f}, ARI "
                  f"{accuracy['ari']:.3f} (space {run.variant}/{run.normalize}, stability {run.score}; report in "
                  f"{run.report_dir}; least certain: saved view {run.uncertain_view!r})")

    stage("replicate inshore training images until they match offshore (BSLM)")
    balance(dataset, by="scene", mode="replicate", run_key="bslm", seed=seed)
    report = balance_report(dataset, run_key="bslm")
    summary["balance_report"] = str(getattr(report, "html_path", "") or "")

    stage("export COCO without and with replication, and YOLO (replicas are hardlinks)")
    exports = {"baseline": out / "export" / "coco", "bslm": out / "export" / "coco_bslm"}
    yolo_dir = out / "export" / "yolo"
    export_view(dataset, exports["baseline"], "coco", overwrite=True, seed=seed)
    export_view(dataset, exports["bslm"], "coco", balance_run="bslm", overwrite=True, seed=seed)
    export_view(dataset, yolo_dir, "yolo", balance_run="bslm", overwrite=True, seed=seed)
    summary["exports"] = {"coco": str(exports["baseline"]), "coco_bslm": str(exports["bslm"]), "yolo": str(yolo_dir)}

    stage(f"train the same detector twice ({sizes.detector_arch}, cpu preset, {sizes.detector_iterations} "
          f"iterations, seed {seed}): baseline and BSLM; CA-CFAR reference")
    configs = [DetectorConfig(data=path, arch=sizes.detector_arch, preset="cpu", iterations=sizes.detector_iterations,
                              crop_size=sizes.detector_crop, out_dir=out / "detector" / key, workers=0, device=device,
                              seed=seed, progress=False)
               for key, path in exports.items()]
    trained = dict(zip(exports, train_concurrently(configs)))
    trained["cfar"] = train_detector(DetectorConfig(data=exports["baseline"], arch="cfar",
                                                    out_dir=out / "detector" / "cfar", progress=False))
    predictions = {key: read_results(result["predictions"]) for key, result in trained.items()}

    stage("evaluate: AP50 by scene (BSLM Table I layout), predictions back into FiftyOne")
    evaluation = evaluate_dataset(dataset, predictions, split="test", scene_field="scene_truth",
                                  out_dir=out / "evaluate")
    summary["detection"] = {key: {scene: _ap50(evaluation["rows"][key], scene) for scene in SCENES}
                            for key in DETECTION_ROWS}
    summary["detection_test_images"] = {scene: evaluation["rows"]["baseline"].get(scene, {}).get("n_images")
                                        for scene in SCENES}
    summary["detection_iterations"] = sizes.detector_iterations
    console.print(detection_table(summary["detection"], summary["detection_test_images"]))

    summary["seconds"] = stage.done()
    summary["app_command"] = f"sardata app {name}"
    write_json(out / "summary.json", summary, default=str)
    table = Table(title="sardata demo summary")
    table.add_column("what")
    table.add_column("value")
    for key in ("samples", "feature_dim", "scene_counts", "scene_accuracy"):
        table.add_row(key, str(summary.get(key)))
    table.add_row("total seconds", str(round(sum(summary["seconds"].values()), 1)))
    console.print(table)
    console.print(f"summary: {out / 'summary.json'}")
    console.print(f"open the App on the result:  [bold]sardata app {name}[/bold]")
    return summary


def _ap50(rows: dict, scene: str) -> float | None:
    value = rows.get(scene, {}).get("AP50")
    return None if value is None or value != value else round(float(value), 4)


def detection_table(detection: dict, n_images: dict | None = None) -> Table:
    """BSLM Table I layout: AP50 (%) all / inshore / offshore per model, and BSLM − baseline."""
    counts = n_images or {}
    table = Table(title="AP50 (%) by scene — BSLM Table I layout (test split, generator's inshore/offshore truth)")
    table.add_column("model")
    for scene in SCENES:
        table.add_column(f"{scene} (n={counts.get(scene, '?')})", justify="right")

    def pct(value):
        return "—" if value is None else f"{100 * value:.2f}"

    for key, label in DETECTION_ROWS.items():
        table.add_row(label, *(pct(detection[key][scene]) for scene in SCENES))
    diffs = []
    for scene in SCENES:
        a, b = detection["bslm"][scene], detection["baseline"][scene]
        diffs.append("—" if a is None or b is None else f"{100 * (a - b):+.2f}")
    table.add_row("BSLM − baseline", *diffs)
    return table

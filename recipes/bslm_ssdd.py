"""BSLM (seed 000) on SSDD: does replicating inshore training images raise detector mAP on inshore scenes?

ingest SSDD → train the BSLM DCGAN → 28672-d scene features → k=2 k-means scene tags (smaller cluster = inshore) →
replicate inshore training images until they match offshore → COCO exports with and without replication → train
each detector on both → AP50 on all / inshore / offshore test images (Table I layout: one row per model ± replication,
the paper's numbers alongside).

Test images are split into inshore/offshore by the official ``test_inshore`` / ``test_offshore`` subsets when the
release has them (as the paper did), otherwise by the k-means scene tags.

    python recipes/bslm_ssdd.py --data /data/Official-SSDD --models faster_rcnn,cascade_rcnn,retinanet,ssd
    python recipes/bslm_ssdd.py --quick          # synthetic SSDD, the four detectors (cpu preset), 3 seeds

``--quick`` trains each detector from scratch with the ``cpu`` preset of :mod:`sardata.train.detector` for 300
iterations, baseline and replicated side by side with the same seed and budget, over 3 seeds; every cell is the mean
± std over seeds and the replication − baseline difference is paired by seed.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the checkout importable (recipes, exporters)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recipes._common import (  # noqa: E402
    PUBLISHED_BSLM,
    PUBLISHED_PREFIX,
    Stages,
    build_parser,
    check_choices,
    console,
    csv_list,
    dataset_root,
    output_dir,
    pct,
    setup_environment,
    size_level,
    write_results,
)

NAME = "bslm_ssdd"
MODELS = ("faster_rcnn", "cascade_rcnn", "retinanet", "ssd")
SCENES = ("all", "inshore", "offshore")
#: Official SSDD test subsets (sample tags written by the loader) → scene name.
OFFICIAL_SCENE_TAGS = {"test_inshore": "inshore", "test_offshore": "offshore"}


@dataclass
class Sizes:
    """Run sizes. ``full`` = the paper (DCGAN 256², detectors 512², 12 epochs, R50 backbones, SSD on VGG16: the
    detector ``paper`` preset). ``quick`` trains the four detectors with the ``cpu`` preset (from scratch, native
    resolution, ``tiny`` backbone) for a fixed iteration budget over 3 seeds."""

    synth_images: int | None = 1160
    gan_steps: int | None = None  # None: the paper preset (25 epochs); else a budget in optimiser steps
    gan_image_size: int = 256
    gan_batch_size: int = 32
    pca_dim: int | None = None
    preset: str = "paper"
    iterations: int | None = None
    crop_size: int | None = None
    seeds: int = 1
    max_images: int | None = None
    workers: int = 2

    @classmethod
    def of(cls, level: str) -> "Sizes":
        if level == "quick":
            return cls(synth_images=200, gan_steps=60, gan_image_size=64, gan_batch_size=16,
                       preset="cpu", iterations=300, seeds=3, workers=0)
        if level == "smoke":
            return cls(synth_images=20, gan_steps=2, gan_image_size=32, gan_batch_size=8,
                       preset="cpu", iterations=2, crop_size=64, seeds=2, max_images=8, workers=0)
        return cls()


def parse_args(argv=None):
    parser = build_parser(NAME, __doc__.split("\n\n")[0])
    parser.add_argument("--models", default=None,
                        help=f"comma-separated detectors from {','.join(MODELS)} (default: all four; --smoke: "
                             "faster_rcnn)")
    parser.add_argument("--backbone", default=None,
                        help="FPN backbone of the R-CNN/RetinaNet models: resnet50 (paper), resnet18, mobilenet_v2, "
                             "mobilenet_v3 (SSD always uses vgg16)")
    parser.add_argument("--backbone-weights", default=None,
                        help="ImageNet weights for the FPN backbone: a file or a torchvision weights name")
    parser.add_argument("--epochs", type=int, default=None, help="detector epochs (paper preset; default 12)")
    parser.add_argument("--iterations", type=int, default=None,
                        help="detector optimizer steps (default: the preset's; --quick 300)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="detector training seeds seed, seed+1, ... (default 1; --quick 3)")
    return parser.parse_args(argv)


def official_scene_field(dataset, field: str = "scene_official") -> str | None:
    """Copies the official inshore/offshore test subsets (sample tags) into ``field``; None when there are none."""
    tags = dataset.values("tags")
    values = [next((OFFICIAL_SCENE_TAGS[t] for t in ts if t in OFFICIAL_SCENE_TAGS), None) for ts in tags]
    if not any(values):
        return None
    dataset.set_values(field, values)
    return field


def main(argv=None) -> dict:
    """Runs the experiment; returns ``{"results": {"markdown", "json"}, "rows": [...], ...}``."""
    setup_environment()
    args = parse_args(argv)
    level = size_level(args)
    sizes = Sizes.of(level)
    models = check_choices(csv_list(args.models) or (["faster_rcnn"] if level == "smoke" else list(MODELS)),
                           MODELS, "--models")
    seeds = [args.seed + i for i in range(args.seeds or sizes.seeds)]
    iterations = args.iterations or sizes.iterations
    out = output_dir(args, NAME)
    stage = Stages()

    import sardata
    from exporters import export_view
    from sardata.embed.dcgan import train_gan
    from sardata.embed.extract import extract_features
    from sardata.evaluate import evaluate_dataset, read_results
    from sardata.scenes import assign_scenes, compute_visualization, scene_accuracy
    from sardata.train.detector import DetectorConfig, train_concurrently
    from sardata.views.balance import balance
    from sardata.views.report import balance_report

    stage("SSDD → FiftyOne")
    root, synthetic = dataset_root(args, "ssdd", out, sizes.synth_images)
    dataset = sardata.load("ssdd", root, name=f"recipe-{NAME}", overwrite=True)
    summary: dict = {"samples": len(dataset), "synthetic": synthetic, "models": models, "seeds": seeds}

    stage("BSLM DCGAN → 28672-d scene features")
    checkpoint = train_gan(dataset, out_dir=out / "dcgan", steps=sizes.gan_steps,
                           preset="paper" if sizes.gan_steps is None else "default", batch_size=sizes.gan_batch_size,
                           image_size=sizes.gan_image_size, device=args.device, num_workers=sizes.workers,
                           seed=args.seed, resume=False)
    features = extract_features(dataset, model="dcgan", checkpoint=checkpoint, device=args.device,
                                num_workers=sizes.workers, pca_dim=sizes.pca_dim, embedding_field="dcgan_embedding")
    summary["feature_dim"] = int(features.features.shape[1])

    stage("k=2 scene tags (smaller cluster = inshore)")
    # tag=False: evaluation reads scene-like sample tags too, and the test split must follow one source of truth
    assign_scenes(dataset, embedding_field="dcgan_embedding", k=2, seed=args.seed, tag=False)
    summary["scene_counts"] = dataset.count_values("scene.label")
    viz_png = out / "scenes_map.png"
    compute_visualization(dataset, embedding_field="dcgan_embedding", method="pca", seed=args.seed, png_path=viz_png)
    if synthetic:
        from sardata.demo import attach_scene_truth

        attach_scene_truth(dataset, root / "synth_truth.json")
        summary["scene_accuracy_vs_truth"] = round(scene_accuracy(dataset)["accuracy"], 4)

    stage("replicate inshore training images (BSLM) + balance report")
    run = balance(dataset, by="scene", mode="replicate", run_key="bslm", seed=args.seed)
    report = balance_report(dataset, run_key="bslm", console=console, out_dir=out / "balance_report")

    stage("COCO exports, with and without replication")
    exports = {False: out / "export" / "coco", True: out / "export" / "coco_replicated"}
    for replicated, path in exports.items():
        export_view(dataset, path, "coco", balance_run="bslm" if replicated else None, overwrite=True, seed=args.seed)
    scene_field = official_scene_field(dataset) or "scene"
    groups = scene_image_ids(dataset, exports[False] / "annotations" / "test.json", scene_field)

    runs: dict = {}  # (model, replicated, seed) → {"predictions": path, "out_dir": path}
    for model in models:
        for seed in seeds:
            stage(f"train {model}, seed {seed}: baseline and + replication (same iterations, side by side)")
            configs = [DetectorConfig(
                data=exports[replicated], arch=model, preset=sizes.preset,
                backbone=None if (model == "ssd" and sizes.preset == "paper") else args.backbone,
                out_dir=out / "detectors" / f"{model}{'_replicated' if replicated else ''}_seed{seed}",
                epochs=args.epochs, iterations=iterations, crop_size=sizes.crop_size, max_images=sizes.max_images,
                backbone_weights=None if model == "ssd" else args.backbone_weights, workers=sizes.workers,
                device=args.device, seed=seed, progress=False) for replicated in (False, True)]
            for replicated, result in zip((False, True), train_concurrently(configs)):
                runs[(model, replicated, seed)] = result

    stage("AP50 by scene (Table I layout), mean ± std over seeds")
    gt_path = exports[False] / "annotations" / "test.json"
    per_run = {key: scene_ap50(gt_path, read_results(r["predictions"]), groups) for key, r in runs.items()}
    rows, differences = [], []
    for model in models:
        for replicated in (False, True):
            published = PUBLISHED_BSLM[model]["replication" if replicated else "baseline"]
            row = {"model": model, "replication": replicated}
            for scene in SCENES:
                values = [per_run[(model, replicated, seed)][scene] for seed in seeds]
                row[f"AP50 {scene}"], row[f"± {scene}"] = mean_std(values)
                row[f"seeds {scene}"] = values
            row.update({f"{PUBLISHED_PREFIX} AP50 {s}": v for s, v in zip(SCENES, published)})
            row["n_test_images"] = {s: len(groups.get(s, ())) for s in SCENES}
            rows.append(row)
        diff = {"model": model}
        for scene in SCENES:
            paired = [None if None in (per_run[(model, True, s)][scene], per_run[(model, False, s)][scene])
                      else round(per_run[(model, True, s)][scene] - per_run[(model, False, s)][scene], 2)
                      for s in seeds]
            diff[f"Δ AP50 {scene}"], diff[f"± {scene}"] = mean_std(paired)
            diff[f"seeds {scene}"] = paired
        published = PUBLISHED_BSLM[model]
        diff[f"{PUBLISHED_PREFIX} Δ inshore"] = round(published["replication"][1] - published["baseline"][1], 2)
        differences.append(diff)

    # seed-0 predictions of every model into FiftyOne (fields predictions_<model>...) for the App
    evaluation = evaluate_dataset(
        dataset, {f"{m}{' + replication' if r else ''}": read_results(runs[(m, r, seeds[0])]["predictions"])
                  for m in models for r in (False, True)},
        split="test", scene_field=scene_field, out_dir=out / "evaluate")
    columns = (["model", "replication"] + [c for s in SCENES for c in (f"AP50 {s}", f"± {s}")]
               + [f"{PUBLISHED_PREFIX} AP50 {s}" for s in SCENES])
    diff_columns = (["model"] + [c for s in SCENES for c in (f"Δ AP50 {s}", f"± {s}")]
                    + [f"{PUBLISHED_PREFIX} Δ inshore"])
    settings = {"dataset": str(root), "synthetic": synthetic, "size": level, "seeds": seeds,
                "images": len(dataset), "detector_preset": sizes.preset,
                "detector_iterations": iterations, "detector_epochs": args.epochs,
                "backbone": args.backbone or ("tiny" if sizes.preset == "cpu" else "resnet50"),
                "gan_image_size": sizes.gan_image_size,
                "test_scenes_from": "official test_inshore/test_offshore" if scene_field != "scene" else "k-means tags",
                "train_scenes_before": dict(run.before), "train_scenes_after": dict(run.after)}
    notes = [f"Scene counts (k-means): {summary['scene_counts']}.",
             f"Each cell: mean ± sample std over {len(seeds)} training seed(s) {seeds} (scene tags and exports from "
             f"seed {args.seed}); Δ = replication − baseline, paired by seed."]
    if "scene_accuracy_vs_truth" in summary:
        notes.append(f"Scene tags agree with the generator's inshore/offshore truth on "
                     f"{100 * summary['scene_accuracy_vs_truth']:.1f}% of images.")
    notes.append("AP50 = pycocotools AP at IoU 0.5 (the paper's “mAP”), in %.")
    artifacts = {"balance report": report.png_path, "scene map": viz_png,
                 "evaluation tables (seed %d)" % seeds[0]: evaluation["markdown"],
                 **{f"training curves {m}{' + replication' if r else ''} seed {s}": Path(v["out_dir"]) / "metrics.png"
                    for (m, r, s), v in runs.items()}}
    results = write_results(out, "BSLM on SSDD — AP50 by scene, with and without inshore replication", columns,
                            rows, settings, notes,
                            extra_tables={"Replication − baseline (AP50 points, paired by seed)":
                                          (diff_columns, differences)},
                            artifacts=artifacts)
    summary.update({"results": results, "rows": rows, "differences": differences, "seconds": stage.done(),
                    "out": out})
    return summary


def scene_image_ids(dataset, test_json: Path, scene_field: str) -> dict[str, list[int]]:
    """``{"all" | "inshore" | "offshore": [COCO image ids of the test export]}`` by the samples' ``scene_field``."""
    from sardata.evaluate import scene_of

    coco = json.loads(Path(test_json).read_text())
    values = dict(zip(dataset.values("id"), dataset.values(scene_field)))
    groups: dict[str, list[int]] = {"all": [im["id"] for im in coco["images"]]}
    for image in coco["images"]:
        scene = scene_of(values.get(image.get("sample_id")))
        if scene in ("inshore", "offshore"):
            groups.setdefault(scene, []).append(image["id"])
    return groups


def scene_ap50(gt_path: Path, predictions: list[dict], groups: dict[str, list[int]]) -> dict[str, float | None]:
    """AP50 (%) of one run on each scene's test images (the project's COCO evaluation)."""
    from sardata.metrics import coco_detection_metrics

    return {scene: pct(coco_detection_metrics(gt_path, predictions, image_ids=groups[scene])["AP50"])
            if groups.get(scene) else None for scene in SCENES}


def mean_std(values) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (``ddof=1``; 0 for one value), rounded to 2 decimals; None if any is."""
    import statistics

    if not values or any(v is None for v in values):
        return None, None
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return round(statistics.fmean(values), 2), round(std, 2)


if __name__ == "__main__":
    main()

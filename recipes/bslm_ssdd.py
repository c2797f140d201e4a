"""BSLM (seed 000) on SSDD: does replicating inshore training images raise detector mAP on inshore scenes?

ingest SSDD → train the BSLM DCGAN → 28672-d scene features → k=2 k-means scene tags (smaller cluster = inshore) →
replicate inshore training images until they match offshore → COCO exports with and without replication → train
each detector on both → AP50 on all / inshore / offshore test images (Table I layout: one row per model ± replication,
the paper's numbers alongside).

Test images are split into inshore/offshore by the official ``test_inshore`` / ``test_offshore`` subsets when the
release has them (as the paper did), otherwise by the k-means scene tags.

    python recipes/bslm_ssdd.py --data /data/Official-SSDD --models faster_rcnn,cascade_rcnn,retinanet,ssd
    python recipes/bslm_ssdd.py --quick          # synthetic SSDD, one small model, minutes on a CPU
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
    """Run sizes. ``full`` = the paper (DCGAN 256², detectors 512², 12 epochs, R50 backbones, SSD on VGG16)."""

    synth_images: int | None = 1160
    gan_steps: int | None = None  # None: the paper preset (25 epochs); else a budget in optimiser steps
    gan_image_size: int = 256
    gan_batch_size: int = 32
    pca_dim: int | None = None
    detector_epochs: int = 12
    detector_image_size: int = 512
    detector_batch_size: int = 4
    backbone: str | None = None  # None: resnet50 (SSD: vgg16)
    lr_steps: tuple[int, ...] = (8, 11)
    warmup_iters: int = 500
    max_images: int | None = None
    workers: int = 2

    @classmethod
    def of(cls, level: str) -> "Sizes":
        if level == "quick":
            return cls(synth_images=120, gan_steps=60, gan_image_size=64, gan_batch_size=16,
                       detector_epochs=1, detector_image_size=256, backbone="mobilenet_v3", lr_steps=(99,),
                       warmup_iters=20, workers=0)
        if level == "smoke":
            return cls(synth_images=20, gan_steps=2, gan_image_size=32, gan_batch_size=8,
                       detector_epochs=1, detector_image_size=64, detector_batch_size=4, backbone="mobilenet_v3",
                       lr_steps=(99,), warmup_iters=5, max_images=8, workers=0)
        return cls()


def parse_args(argv=None):
    parser = build_parser(NAME, __doc__.split("\n\n")[0])
    parser.add_argument("--models", default=None,
                        help=f"comma-separated detectors from {','.join(MODELS)} (default: all four; --quick: "
                             "faster_rcnn)")
    parser.add_argument("--backbone", default=None,
                        help="FPN backbone of the R-CNN/RetinaNet models: resnet50 (paper), resnet18, mobilenet_v2, "
                             "mobilenet_v3 (SSD always uses vgg16)")
    parser.add_argument("--backbone-weights", default=None,
                        help="ImageNet weights for the FPN backbone: a file or a torchvision weights name")
    parser.add_argument("--epochs", type=int, default=None, help="detector epochs (default 12; --quick 1)")
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
    models = check_choices(csv_list(args.models) or (["faster_rcnn"] if level != "full" else list(MODELS)),
                           MODELS, "--models")
    epochs = args.epochs or sizes.detector_epochs
    backbone = args.backbone or sizes.backbone
    out = output_dir(args, NAME)
    stage = Stages()

    import sardata
    from exporters import export_view
    from sardata.embed.dcgan import train_gan
    from sardata.embed.extract import extract_features
    from sardata.evaluate import evaluate_dataset
    from sardata.scenes import assign_scenes, compute_visualization, scene_accuracy
    from sardata.train.detector import DetectorConfig
    from sardata.train.detector import train as train_detector
    from sardata.views.balance import balance
    from sardata.views.report import balance_report

    stage("SSDD → FiftyOne")
    root, synthetic = dataset_root(args, "ssdd", out, sizes.synth_images)
    dataset = sardata.load("ssdd", root, name=f"recipe-{NAME}", overwrite=True)
    summary: dict = {"samples": len(dataset), "synthetic": synthetic, "models": models}

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

    predictions, histories = {}, {}
    for model in models:
        for replicated in (False, True):
            label = f"{model}{' + replication' if replicated else ''}"
            stage(f"train {label}")
            cfg = DetectorConfig(
                data=exports[replicated], arch=model, backbone=None if model == "ssd" else backbone,
                out_dir=out / "detectors" / f"{model}{'_replicated' if replicated else ''}",
                image_size=sizes.detector_image_size, epochs=epochs, batch_size=sizes.detector_batch_size,
                warmup_iters=sizes.warmup_iters, lr_steps=sizes.lr_steps, max_images=sizes.max_images,
                backbone_weights=None if model == "ssd" else args.backbone_weights, workers=sizes.workers,
                device=args.device, seed=args.seed, eval_every=epochs)
            trained = train_detector(cfg)
            predictions[label] = json.loads(Path(trained["predictions"]).read_text()) if trained.get("predictions") else []
            histories[label] = Path(trained["out_dir"]) / "metrics.png"

    stage("AP50 by scene (Table I layout)")
    scene_field = official_scene_field(dataset) or "scene"
    evaluation = evaluate_dataset(dataset, predictions, split="test", scene_field=scene_field,
                                  out_dir=out / "evaluate")
    rows = []
    for model in models:
        for replicated in (False, True):
            label = f"{model}{' + replication' if replicated else ''}"
            per_scene = evaluation["rows"][label]
            published = PUBLISHED_BSLM[model]["replication" if replicated else "baseline"]
            row = {"model": model, "replication": replicated}
            row.update({f"AP50 {s}": pct(per_scene.get(s, {}).get("AP50")) for s in SCENES})
            row.update({f"{PUBLISHED_PREFIX} AP50 {s}": v for s, v in zip(SCENES, published)})
            row["n_test_images"] = {s: per_scene.get(s, {}).get("n_images") for s in SCENES}
            rows.append(row)
    columns = (["model", "replication"] + [f"AP50 {s}" for s in SCENES]
               + [f"{PUBLISHED_PREFIX} AP50 {s}" for s in SCENES])
    settings = {"dataset": str(root), "synthetic": synthetic, "size": level, "seed": args.seed,
                "images": len(dataset), "detector_epochs": epochs, "image_size": sizes.detector_image_size,
                "backbone": backbone or "resnet50", "gan_image_size": sizes.gan_image_size,
                "test_scenes_from": "official test_inshore/test_offshore" if scene_field != "scene" else "k-means tags",
                "train_scenes_before": dict(run.before), "train_scenes_after": dict(run.after)}
    notes = [f"Scene counts (k-means): {summary['scene_counts']}."]
    if "scene_accuracy_vs_truth" in summary:
        notes.append(f"Scene tags agree with the generator's inshore/offshore truth on "
                     f"{100 * summary['scene_accuracy_vs_truth']:.1f}% of images.")
    notes.append("AP50 = pycocotools AP at IoU 0.5 (the paper's “mAP”), in %.")
    artifacts = {"balance report": report.png_path, "scene map": viz_png,
                 "evaluation tables": evaluation["markdown"],
                 **{f"training curves {k}": v for k, v in histories.items()}}
    results = write_results(out, "BSLM on SSDD — AP50 by scene, with and without inshore replication", columns,
                            rows, settings, notes, artifacts=artifacts)
    summary.update({"results": results, "rows": rows, "seconds": stage.done(), "out": out})
    return summary


if __name__ == "__main__":
    main()

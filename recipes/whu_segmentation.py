"""Contrastive clustering + LANet (seed 003) on WHU-OPT-SAR land-cover segmentation.

ingest WHU-OPT-SAR as 256² patches (official 80/20 tile split) → masks export → train LANet alone and LANet with the
auxiliary contrastive-clustering loss (L = L_seg + L_ins + L_clu) over several training seeds → the paper's table:
pixel accuracy and the average class precision / recall / F1 over the six classes farmland, city, village, water,
forest, road (no-data and "others" left out), mean ± std over the seeds, the published numbers beside; per-class F1,
and per-scene scores and confusion matrices (urban / rural / mixed tiles of the synthetic default).

    python recipes/whu_segmentation.py --data /data/whu-opt-sar
    python recipes/whu_segmentation.py --quick        # synthetic scenes, 128² patches, 3 seeds
"""

from __future__ import annotations

import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the checkout importable (recipes, exporters)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recipes._common import (  # noqa: E402
    PUBLISHED_PREFIX,
    PUBLISHED_WHU,
    Stages,
    build_parser,
    console,
    dataset_root,
    output_dir,
    pct,
    setup_environment,
    size_level,
    write_results,
)

NAME = "whu_segmentation"
#: Row name → contrastive clustering on/off.
METHODS = {"lanet": False, "lanet+cc": True}


@dataclass
class Sizes:
    """Run sizes; ``full`` = the paper's 256² patches, batch 32 (epochs: the trainer's default 30)."""

    synth_tiles: int | None = 15
    tile_size: tuple[int, int] | None = None  # synthetic (width, height); None: the generator's default
    patch_size: int = 256
    epochs: int = 30
    batch_size: int = 32
    max_samples: int | None = None
    seeds: int = 3

    @classmethod
    def of(cls, level: str) -> "Sizes":
        if level == "quick":
            return cls(synth_tiles=15, tile_size=(384, 384), patch_size=128, epochs=QUICK_EPOCHS, batch_size=16)
        if level == "smoke":
            return cls(synth_tiles=3, tile_size=(128, 64), patch_size=64, epochs=1, batch_size=4, max_samples=4,
                       seeds=1)
        return cls()


#: Epochs of ``--quick`` (fits the 15-minute budget on a 2-core CPU for 2 variants × 3 seeds).
QUICK_EPOCHS = 8


def parse_args(argv=None):
    parser = build_parser(NAME, __doc__.split("\n\n")[0])
    parser.add_argument("--input", default="sar", choices=("sar", "optical", "both"),
                        help="network input: sar (the paper's SAR branch), optical or both")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"training epochs (default 30; --quick {QUICK_EPOCHS})")
    parser.add_argument("--seeds", type=int, default=None, help="training seeds per variant (default 3)")
    parser.add_argument("--cc-weight", type=float, default=1.0,
                        help="weight of the contrastive-clustering losses (the paper: 1)")
    parser.add_argument("--encoder-weights", default=None, help="ResNet-18 state_dict file for the encoder")
    return parser.parse_args(argv)


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None and v == v]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _pm(values: list[float]) -> str | None:
    """``"mean ± std"`` in % (the paper's table cells)."""
    mean, std = _mean_std(values)
    return None if mean is None else f"{100 * mean:.2f} ± {100 * std:.2f}"


def tile_scenes(dataset, root: Path) -> dict[str, str]:
    """``{patch file stem: scene}``: from the synthetic truth (``synth_truth.json``), else a ``scene`` field (e.g. the
    BSLM scene tags); ``{}`` when neither exists."""
    truth_path = Path(root) / "synth_truth.json"
    by_tile = {}
    if truth_path.is_file():
        by_tile = {t: v.get("scene") for t, v in json.loads(truth_path.read_text()).get("tiles", {}).items()}
    fields = ["filepath", "sar_path", "tile_id"] + (["scene"] if dataset.has_field("scene") else [])
    values = dataset.values(fields)
    scenes = {}
    for row in zip(*values):
        record = dict(zip(fields, row))
        scene = record.get("scene") or by_tile.get(record["tile_id"])
        if scene:
            for key in ("filepath", "sar_path"):
                if record.get(key):
                    scenes[Path(record[key]).stem] = str(scene)
    return scenes


def main(argv=None) -> dict:
    """Runs the experiment; returns ``{"results": {"markdown", "json"}, "rows": [...], ...}``."""
    setup_environment()
    args = parse_args(argv)
    level = size_level(args)
    sizes = Sizes.of(level)
    epochs = args.epochs or sizes.epochs
    n_seeds = args.seeds or sizes.seeds
    seeds = [args.seed + k for k in range(n_seeds)]
    out = output_dir(args, NAME)
    stage = Stages()

    import numpy as np

    import sardata
    from exporters import export_view
    from sardata.train.seg_data import MasksExportDataset
    from sardata.metrics import plot_confusion_matrix
    from sardata.train.segment import SegmentConfig, evaluate, load_segmenter
    from sardata.train.segment import train as train_segmenter
    from sardata.views.report import balance_report

    stage(f"WHU-OPT-SAR → {sizes.patch_size}² patches in FiftyOne")
    synth_options = {"tile_size": sizes.tile_size} if sizes.tile_size else {}
    root, synthetic = dataset_root(args, "whu_opt_sar", out, sizes.synth_tiles, **synth_options)
    dataset = sardata.load("whu_opt_sar", root, name=f"recipe-{NAME}", overwrite=True, patch_size=sizes.patch_size)
    report = balance_report(dataset, fields=("split", "source"), console=console, out_dir=out / "balance_report")
    scenes = tile_scenes(dataset, root)

    stage("masks export (SAR, optical, raw label values)")
    export_dir = out / "export" / "masks"
    export_view(dataset, export_dir, "masks", overwrite=True, seed=args.seed)

    runs: dict[str, list[dict]] = {m: [] for m in METHODS}
    artifacts = {}
    for method, cc in METHODS.items():
        for seed in seeds:
            stage(f"train {method} (seed {seed})")
            run_dir = out / "segmenters" / method.replace("+", "_") / f"seed{seed}"
            cfg = SegmentConfig(data=str(export_dir), input=args.input, cc=cc, cc_weight=args.cc_weight,
                                epochs=epochs, batch_size=sizes.batch_size, encoder_weights=args.encoder_weights,
                                out_dir=str(run_dir), max_samples=sizes.max_samples, seed=seed, device=args.device,
                                predict=seed == seeds[0])
            trained = train_segmenter(cfg)
            metrics = trained["metrics"] or {}
            if scenes and metrics:
                model, _ = load_segmenter(trained["checkpoint"], device=args.device)
                val_split = "val" if (export_dir / "val" / "masks").is_dir() else "test"
                val = MasksExportDataset(export_dir, val_split, args.input, max_samples=sizes.max_samples)
                metrics, _ = evaluate(model, val, next(model.parameters()).device, sizes.batch_size, False,
                                      groups=scenes)
            runs[method].append({"seed": seed, "metrics": metrics, "out_dir": trained["out_dir"],
                                 "predictions": trained["predictions"]})
        first = Path(runs[method][0]["out_dir"])
        artifacts[f"{method} loss curve (seed {seeds[0]})"] = first / "loss_curve.png"
        artifacts[f"{method} confusion matrix (seed {seeds[0]})"] = first / "confusion.png"
        artifacts[f"{method} predicted masks (seed {seeds[0]})"] = runs[method][0]["predictions"]

    rows, class_rows, scene_rows = [], [], []
    for method, results in runs.items():
        metrics = [r["metrics"] for r in results]
        published = PUBLISHED_WHU[method]
        acc = [m.get("pixel_accuracy") for m in metrics]
        f1 = [m.get("mean_f1") for m in metrics]
        acc_mean, acc_std = _mean_std(acc)
        f1_mean, f1_std = _mean_std(f1)
        rows.append({"method": method, "seeds": [r["seed"] for r in results],
                     "pixel accuracy": _pm(acc),
                     "mean precision": _pm([m.get("mean_precision") for m in metrics]),
                     "mean recall": _pm([m.get("mean_recall") for m in metrics]),
                     "mean F1": _pm(f1),
                     "mean IoU": _pm([m.get("mean_iou") for m in metrics]),
                     f"{PUBLISHED_PREFIX} pixel accuracy": pct(published[0]),
                     f"{PUBLISHED_PREFIX} mean F1": pct(published[1]),
                     "pixel_acc_mean": acc_mean, "pixel_acc_std": acc_std, "f1_mean": f1_mean, "f1_std": f1_std,
                     "pixel_acc_per_seed": acc, "f1_per_seed": f1})
        names = list((metrics[0] if metrics else {}).get("per_class", {}))
        class_rows.append({"method": method, **{f"F1 {n}": _pm([m["per_class"][n]["f1"] for m in metrics])
                                                for n in names}})
        groups = sorted({g for m in metrics for g in m.get("by_group", {})})
        for group in groups:
            per_seed = [m["by_group"][group] for m in metrics if group in m.get("by_group", {})]
            gm = [g["metrics"] for g in per_seed]
            scene_rows.append({"method": method, "scene": group, "tiles": per_seed[0]["tiles"],
                               "pixel accuracy": _pm([g.get("pixel_accuracy") for g in gm]),
                               "mean F1": _pm([g.get("mean_f1") for g in gm]),
                               **{f"F1 {n}": _pm([g["per_class"][n]["f1"] for g in gm]) for n in ("city", "village")
                                  if n in gm[0]["per_class"]}})
            confusion = np.sum([np.asarray(g["confusion"]) for g in per_seed], axis=0)
            png = out / "per_scene" / f"{method.replace('+', '_')}_{group}_confusion.png"
            png.parent.mkdir(parents=True, exist_ok=True)
            class_names = list(MasksExportDataset(export_dir, "train").class_names)
            plot_confusion_matrix(confusion, class_names, png, title=f"{method}, {group} tiles")
            artifacts[f"{method} confusion {group} (sum over seeds)"] = png
            scene_rows[-1]["confusion"] = confusion.tolist()

    columns = ["method", "seeds", "pixel accuracy", "mean precision", "mean recall", "mean F1", "mean IoU",
               f"{PUBLISHED_PREFIX} pixel accuracy", f"{PUBLISHED_PREFIX} mean F1"]
    class_columns = ["method"] + [c for c in (class_rows[0] if class_rows else {}) if c != "method"]
    scene_columns = ["method", "scene", "tiles", "pixel accuracy", "mean F1", "F1 city", "F1 village"]
    settings = {"dataset": str(root), "synthetic": synthetic, "size": level, "data_seed": args.seed, "seeds": seeds,
                "patches": len(dataset), "patch_size": sizes.patch_size, "splits": dataset.count_values("split"),
                "input": args.input, "epochs": epochs, "batch_size": sizes.batch_size, "cc_weight": args.cc_weight}
    notes = [f"Scores in %, mean ± std over {len(seeds)} training seeds ({epochs} epochs each); classes scored: "
             "farmland, city, village, water, forest, road (no-data and “others” left out, as in the paper).",
             "Both variants use the same seeds; only the contrastive-clustering loss differs.",
             "The paper reports pixel accuracy and mean F1 only; its precision/recall columns are not copied."]
    if len(rows) == 2 and rows[0]["f1_mean"] is not None and rows[1]["f1_mean"] is not None:
        delta_acc = 100 * (rows[1]["pixel_acc_mean"] - rows[0]["pixel_acc_mean"])
        delta_f1 = 100 * (rows[1]["f1_mean"] - rows[0]["f1_mean"])
        spread = 100 * max(rows[0]["f1_std"], rows[1]["f1_std"])
        verdict = ("CC helps" if delta_f1 > spread else "CC does not help beyond the seed spread"
                   if delta_f1 > -spread else "CC hurts")
        notes.append(f"LANet + CC − LANet: pixel accuracy {delta_acc:+.2f} points, mean F1 {delta_f1:+.2f} points "
                     f"(largest seed std {spread:.2f}): {verdict} here (the paper: +3.67 / +4.93). See the per-scene "
                     "table and confusion matrices.")
    artifacts["balance report"] = report.png_path
    extra = {"Per-class F1 (%), mean ± std over seeds": (class_columns, class_rows)}
    if scene_rows:
        extra["Per scene (%), mean ± std over seeds"] = (scene_columns, scene_rows)
    results = write_results(out, "WHU-OPT-SAR segmentation — LANet vs LANet + contrastive clustering", columns,
                            rows, settings, notes, extra_tables=extra, artifacts=artifacts)
    return {"results": results, "rows": rows, "per_class": class_rows, "per_scene": scene_rows,
            "seconds": stage.done(), "out": out}


if __name__ == "__main__":
    main()

"""Contrastive clustering + LANet (seed 003) on WHU-OPT-SAR land-cover segmentation.

ingest WHU-OPT-SAR as 256² patches (official 80/20 tile split) → masks export → train LANet alone and LANet with the
auxiliary contrastive-clustering loss from the same seed → pixel accuracy, mean class F1 and mean IoU with "others"
excluded (the paper's protocol), per-class F1, confusion matrices and loss curves.

    python recipes/whu_segmentation.py --data /data/whu-opt-sar
    python recipes/whu_segmentation.py --quick        # synthetic tiles, small patches, 1 epoch
"""

from __future__ import annotations

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

    synth_tiles: int | None = 10
    tile_size: tuple[int, int] | None = None  # synthetic (width, height); None: the generator's default
    patch_size: int = 256
    epochs: int = 30
    batch_size: int = 32
    max_samples: int | None = None

    @classmethod
    def of(cls, level: str) -> "Sizes":
        if level == "quick":
            return cls(synth_tiles=5, tile_size=(512, 384), patch_size=128, epochs=1, batch_size=8)
        if level == "smoke":
            return cls(synth_tiles=3, tile_size=(128, 64), patch_size=64, epochs=1, batch_size=4, max_samples=4)
        return cls()


def parse_args(argv=None):
    parser = build_parser(NAME, __doc__.split("\n\n")[0])
    parser.add_argument("--input", default="sar", choices=("sar", "optical", "both"),
                        help="network input: sar (the paper's SAR branch), optical or both")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default 30; --quick 1)")
    parser.add_argument("--cc-weight", type=float, default=0.1, help="weight of the contrastive-clustering losses")
    parser.add_argument("--encoder-weights", default=None, help="ResNet-18 state_dict file for the encoder")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    """Runs the experiment; returns ``{"results": {"markdown", "json"}, "rows": [...], ...}``."""
    setup_environment()
    args = parse_args(argv)
    level = size_level(args)
    sizes = Sizes.of(level)
    epochs = args.epochs or sizes.epochs
    out = output_dir(args, NAME)
    stage = Stages()

    import sardata
    from exporters import export_view
    from sardata.train.segment import SegmentConfig
    from sardata.train.segment import train as train_segmenter
    from sardata.views.report import balance_report

    stage(f"WHU-OPT-SAR → {sizes.patch_size}² patches in FiftyOne")
    synth_options = {"tile_size": sizes.tile_size} if sizes.tile_size else {}
    root, synthetic = dataset_root(args, "whu_opt_sar", out, sizes.synth_tiles, **synth_options)
    dataset = sardata.load("whu_opt_sar", root, name=f"recipe-{NAME}", overwrite=True, patch_size=sizes.patch_size)
    report = balance_report(dataset, fields=("split", "source"), console=console, out_dir=out / "balance_report")

    stage("masks export (SAR, optical, raw label values)")
    export_dir = out / "export" / "masks"
    export_view(dataset, export_dir, "masks", overwrite=True, seed=args.seed)

    rows, class_rows, artifacts, trained = [], [], {}, {}
    for method, cc in METHODS.items():
        stage(f"train {method}")
        cfg = SegmentConfig(data=str(export_dir), input=args.input, cc=cc, cc_weight=args.cc_weight, epochs=epochs,
                            batch_size=sizes.batch_size, encoder_weights=args.encoder_weights,
                            out_dir=str(out / "segmenters" / method.replace("+", "_")),
                            max_samples=sizes.max_samples, seed=args.seed, device=args.device)
        trained[method] = train_segmenter(cfg)
        metrics = trained[method]["metrics"] or {}
        published = PUBLISHED_WHU[method]
        rows.append({"method": method, "pixel accuracy": pct(metrics.get("pixel_accuracy")),
                     "mean F1": pct(metrics.get("mean_f1")), "mean IoU": pct(metrics.get("mean_iou")),
                     f"{PUBLISHED_PREFIX} pixel accuracy": pct(published[0]),
                     f"{PUBLISHED_PREFIX} mean F1": pct(published[1])})
        class_rows.append({"method": method, **{f"F1 {name}": pct(scores.get("f1"))
                                                for name, scores in metrics.get("per_class", {}).items()}})
        run_dir = Path(trained[method]["out_dir"])
        artifacts[f"{method} loss curve"] = run_dir / "loss_curve.png"
        artifacts[f"{method} confusion matrix"] = run_dir / "confusion.png"
        artifacts[f"{method} predicted masks"] = trained[method]["predictions"]

    columns = ["method", "pixel accuracy", "mean F1", "mean IoU", f"{PUBLISHED_PREFIX} pixel accuracy",
               f"{PUBLISHED_PREFIX} mean F1"]
    class_columns = ["method"] + sorted({c for r in class_rows for c in r if c != "method"},
                                        key=lambda c: [k for r in class_rows for k in r].index(c))
    settings = {"dataset": str(root), "synthetic": synthetic, "size": level, "seed": args.seed,
                "patches": len(dataset), "patch_size": sizes.patch_size, "splits": dataset.count_values("split"),
                "input": args.input, "epochs": epochs, "batch_size": sizes.batch_size, "cc_weight": args.cc_weight}
    notes = ["Scores in %; pixels labelled “others” are excluded, as in the paper.",
             "Both models start from the same seed; only the contrastive-clustering loss differs."]
    artifacts["balance report"] = report.png_path
    results = write_results(out, "WHU-OPT-SAR segmentation — LANet vs LANet + contrastive clustering", columns,
                            rows, settings, notes, extra_tables={"Per-class F1 (%)": (class_columns, class_rows)},
                            artifacts=artifacts)
    return {"results": results, "rows": rows, "per_class": class_rows, "seconds": stage.done(), "out": out}


if __name__ == "__main__":
    main()

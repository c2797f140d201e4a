"""Ship classification (seeds 001/002) on OpenSARShip, FUSAR-Ship and the merged "Mix" set.

ingest both → map labels with the ``ships3`` taxonomy (Cargo / Tanker / Fishing; one-input merges for the single
datasets, a two-input merge with exact deduplication for Mix) → grouped train/val/test split by MMSI (no ship in two
splits; leakage checked) → ImageFolder export per dataset → train each model → accuracy, weighted F1, per-class F1
beside the majority-class baseline (so a collapse to one class is visible), confusion matrices, Grad-CAM overlays.

Protocols (``--protocol``): ``single`` trains each model on each dataset (seed 001); ``sequential`` is seed 002's:
train on a base dataset (``--base``: fusar, opensarship or mix), then fine-tune on the other two in turn, frozen
(head only) and unfrozen (all layers), scoring every stage on every test split (:mod:`sardata.train.transfer`);
``both`` (default) runs the two. For the sequential protocol the Mix split is taken from the single datasets' splits
(each chip keeps its source's split), so no stage trains on another stage's test chip.

Models: ``cnn``, ``vgg16``, ``resnet50`` (all layers trained) and ``f-vgg16`` / ``f-resnet50`` (backbone frozen, new
head trained). The frozen variants only mean something with ImageNet weights: pass ``--weights
vgg16=/path/vgg16.pth,resnet50=IMAGENET1K_V1`` (files or torchvision weights names); without them the frozen backbone
is random and the recipe says so.

    python recipes/ship_classification.py --opensarship /data/OpenSARShip --fusar /data/FUSAR_Ship1.0
    python recipes/ship_classification.py --data /data      # holding OpenSARShip/ and FUSAR_Ship1.0/
    python recipes/ship_classification.py --quick           # synthetic, the small CNN, both protocols
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the checkout importable (recipes, exporters)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recipes._common import (  # noqa: E402
    PUBLISHED_PREFIX,
    PUBLISHED_SHIPS,
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

NAME = "ship_classification"
MODELS = ("cnn", "vgg16", "resnet50", "f-vgg16", "f-resnet50")
DATASETS = ("opensarship", "fusar", "mix")
#: Release folder names inside ``--data`` (the same names the synthetic generators write).
RELEASE_DIRS = {"opensarship": "OpenSARShip", "fusar": "FUSAR_Ship1.0"}
CLASSES = ("Cargo", "Fishing", "Tanker")


@dataclass
class Sizes:
    """Run sizes; ``full`` = the seeds' settings (224 input, Adam 1e-3, 10 epochs, batch 64)."""

    opensarship_chips: int | None = None  # synthetic sizes (None: the generator's default)
    fusar_chips: int | None = None
    image_size: int = 224
    epochs: int = 10
    batch_size: int = 64
    max_images: int | None = None
    workers: int = 2

    @classmethod
    def of(cls, level: str) -> "Sizes":
        if level == "quick":
            return cls(opensarship_chips=240, fusar_chips=240, image_size=64, epochs=QUICK_EPOCHS, batch_size=32,
                       workers=0)
        if level == "smoke":
            return cls(opensarship_chips=24, fusar_chips=24, image_size=32, epochs=1, batch_size=16,
                       max_images=32, workers=0)
        return cls(opensarship_chips=600, fusar_chips=600)


#: Epochs of ``--quick`` (every stage).
QUICK_EPOCHS = 6
PROTOCOLS = ("single", "sequential", "both")


def parse_args(argv=None):
    parser = build_parser(NAME, __doc__.split("\n\n")[0])
    parser.add_argument("--opensarship", type=Path, default=None, help="OpenSARShip root (default: --data/OpenSARShip)")
    parser.add_argument("--fusar", type=Path, default=None, help="FUSAR-Ship root (default: --data/FUSAR_Ship1.0)")
    parser.add_argument("--models", default=None,
                        help=f"comma-separated models from {','.join(MODELS)} (default: all; --quick: cnn)")
    parser.add_argument("--datasets", default=None,
                        help=f"comma-separated datasets from {','.join(DATASETS)} (default: all three)")
    parser.add_argument("--weights", default=None,
                        help="ImageNet weights per backbone, e.g. vgg16=/w/vgg16.pth,resnet50=IMAGENET1K_V1")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default 10; --quick 1)")
    parser.add_argument("--gradcam", type=int, default=8, help="Grad-CAM overlays per model (first N test chips)")
    parser.add_argument("--balance", default="none", choices=("none", "sampler", "weights"),
                        help="class balancing in training (none, as the seeds)")
    parser.add_argument("--protocol", default="both", choices=PROTOCOLS,
                        help="single (each dataset alone), sequential (seed 002: base, then fine-tune on the others "
                             "in turn, frozen and unfrozen) or both")
    parser.add_argument("--base", default="fusar", choices=DATASETS, help="base dataset of the sequential protocol")
    return parser.parse_args(argv)


def _weights(spec: str | None) -> dict[str, str]:
    pairs = [p.split("=", 1) for p in (csv_list(spec) or [])]
    bad = [p for p in pairs if len(p) != 2 or p[0] not in ("vgg16", "resnet50")]
    if bad:
        raise SystemExit(f"error: --weights {spec}: expected vgg16=SPEC and/or resnet50=SPEC")
    return dict(pairs)


def main(argv=None) -> dict:
    """Runs the experiment; returns ``{"results": {"markdown", "json"}, "rows": [...], ...}``."""
    setup_environment()
    args = parse_args(argv)
    level = size_level(args)
    sizes = Sizes.of(level)
    models = check_choices(csv_list(args.models) or (["cnn"] if level != "full" else list(MODELS)), MODELS, "--models")
    datasets = check_choices(csv_list(args.datasets) or list(DATASETS), DATASETS, "--datasets")
    weights = _weights(args.weights)
    sequential = args.protocol in ("sequential", "both")
    if sequential and (args.base not in datasets or len(datasets) < 2):
        raise SystemExit(f"error: --protocol {args.protocol} needs --base {args.base} and at least one other dataset "
                         f"in --datasets (got {datasets})")
    epochs = args.epochs or sizes.epochs
    out = output_dir(args, NAME)
    stage = Stages()

    needed = [k for k in RELEASE_DIRS if k in datasets or "mix" in datasets]
    explicit = {k: getattr(args, k) or (args.data / RELEASE_DIRS[k] if args.data else None) for k in needed}
    if any(explicit.values()) and not all(explicit.values()):  # never mix a real release with a synthetic one
        missing = [k for k, v in explicit.items() if v is None]
        raise SystemExit(f"error: real data given for {[k for k, v in explicit.items() if v]} but not for {missing}: "
                         f"pass --{' --'.join(missing)} ROOT (or --data DIR), or leave them out with --datasets")

    import sardata
    from exporters import export_view
    from sardata.train.classifier import ClassifierConfig
    from sardata.train.classifier import train as train_classifier
    from sardata.views.merge import merge
    from sardata.views.report import balance_report
    from sardata.views.split import leakage_check, split

    stage(f"{' and '.join(needed)} → FiftyOne")
    loaded, roots, synthetic = {}, {}, False
    for key, n in (("opensarship", sizes.opensarship_chips), ("fusar", sizes.fusar_chips)):
        if key not in needed:
            continue
        roots[key], synth = dataset_root(args, key, out, n, data=explicit[key])
        synthetic |= synth
        loaded[key] = sardata.load(key, roots[key], name=f"recipe-{NAME}-{key}-raw", overwrite=True)

    stage("ships3 taxonomy (Cargo/Tanker/Fishing), Mix = both merged, grouped split by MMSI")
    inputs = {name: [loaded[k] for k in RELEASE_DIRS if name in (k, "mix")] for name in datasets}
    views, merge_reports, leakage, reports = {}, {}, {}, {}
    split_of_path: dict[str, str] = {}
    mix_split_source = None
    for name in sorted(datasets, key=lambda n: n == "mix"):  # the single datasets first
        view, merge_report = merge(inputs[name], name=f"recipe-{NAME}-{name}", taxonomy="ships3", dedup="exact",
                                   overwrite=True)
        inherited = [split_of_path.get(p) for p in view.values("filepath")] if name == "mix" else []
        if inherited and all(inherited):  # Mix keeps each chip's split from its source dataset
            view.set_values("split", inherited)
            mix_split_source = "each chip's split from its source dataset"
        else:
            split(view, method="group", ratios=(0.7, 0.1, 0.2), by="ground_truth.label", group_field="mmsi",
                  seed=args.seed)
            if name == "mix":
                mix_split_source = "own grouped split (the single datasets are not all in this run)"
        split_of_path.update(zip(view.values("filepath"), view.values("split")))
        views[name], merge_reports[name] = view, merge_report.to_dict()
        leak = leakage_check(view, group_field="mmsi")
        leakage[name] = len(leak.crossing_groups)
        reports[name] = balance_report(view, fields=("ground_truth.label", "split", "source"), console=console,
                                       out_dir=out / "balance_report" / name)

    stage("ImageFolder export per dataset")
    exports = {}
    for name, view in views.items():
        exports[name] = out / "export" / name
        export_view(view, exports[name], "imagefolder", overwrite=True, seed=args.seed)

    rows, per_class_rows, artifacts = [], [], {}
    for name in (datasets if args.protocol in ("single", "both") else []):
        for model in models:
            stage(f"train {model} on {name}")
            backbone = model.removeprefix("f-")
            cfg = ClassifierConfig(data=exports[name], model=model, out_dir=out / "classifiers" / name / model,
                                   weights=weights.get(backbone) if model != "cnn" else None,
                                   image_size=sizes.image_size, epochs=epochs, batch_size=sizes.batch_size,
                                   balance=args.balance, workers=sizes.workers, device=args.device, seed=args.seed,
                                   gradcam=args.gradcam, max_images=sizes.max_images)
            trained = train_classifier(cfg)
            test = trained["test"] or {}
            published = PUBLISHED_SHIPS[name]
            is_published_model = published[0] == model
            rows.append({
                "dataset": name, "model": model,
                "pretrained": bool(cfg.weights),
                "accuracy": pct(test.get("accuracy")), "weighted F1": pct(test.get("f1_weighted")),
                "macro F1": pct(test.get("f1_macro")),
                "majority accuracy": pct(test.get("majority_accuracy")),
                "majority weighted F1": pct(test.get("majority_f1_weighted")),
                "majority macro F1": pct(test.get("majority_f1_macro")),
                "beats majority (macro F1)": (test.get("f1_macro", 0) > test.get("majority_f1_macro", 1)
                                              if test else None),
                "collapsed": test.get("collapsed"),
                f"{PUBLISHED_PREFIX} accuracy": published[1] if is_published_model else None,
                f"{PUBLISHED_PREFIX} weighted F1": published[2] if is_published_model else None,
                "n_test": test.get("n"),
            })
            per_class = test.get("per_class", {})
            per_class_rows.append({"dataset": name, "model": model,
                                   **{f"F1 {c}": pct(per_class.get(c, {}).get("f1")) for c in CLASSES},
                                   **{f"support {c}": per_class.get(c, {}).get("support") for c in CLASSES}})
            run_dir = Path(trained["out_dir"])
            artifacts[f"{name}/{model} confusion matrix"] = run_dir / "confusion_matrix_test.png"
            artifacts[f"{name}/{model} curves"] = run_dir / "metrics.png"
            if trained.get("gradcam"):
                artifacts[f"{name}/{model} Grad-CAM"] = run_dir / "gradcam"

    seq_rows, sequential_results = [], {}
    if sequential:
        from sardata.train.transfer import sequential_protocol

        order = [n for n in DATASETS if n in datasets and n != args.base]
        for model in models:
            stage(f"seed-002 protocol, {model}: {args.base} → {' → '.join(order)} (frozen / unfrozen)")
            backbone = model.removeprefix("f-")
            cfg = ClassifierConfig(data=exports[args.base], model=model, weights=weights.get(backbone)
                                   if model != "cnn" else None, image_size=sizes.image_size, epochs=epochs,
                                   batch_size=sizes.batch_size, balance=args.balance, workers=sizes.workers,
                                   device=args.device, seed=args.seed, gradcam=0, max_images=sizes.max_images)
            result = sequential_protocol(exports, args.base, cfg, out / "sequential" / model, order=order)
            sequential_results[model] = result
            artifacts[f"sequential {model}"] = result["json"]
            for st in result["stages"]:
                row = {"model": model, "variant": st["variant"], "stage": st["stage"],
                       "trained on": " → ".join(st["path"])}
                for name in datasets:
                    m = st["test"][name]
                    row[f"{name} acc"] = pct(m["accuracy"])
                    row[f"{name} macro F1"] = pct(m["f1_macro"])
                    row[f"{name} majority macro F1"] = pct(m["majority_f1_macro"])
                seq_rows.append(row)

    columns = ["dataset", "model", "pretrained", "accuracy", "weighted F1", "macro F1", "majority accuracy",
               "majority weighted F1", "majority macro F1", "beats majority (macro F1)", "collapsed",
               f"{PUBLISHED_PREFIX} accuracy", f"{PUBLISHED_PREFIX} weighted F1"]
    class_columns = ["dataset", "model"] + [f"F1 {c}" for c in CLASSES] + [f"support {c}" for c in CLASSES]
    settings = {"synthetic": synthetic, "size": level, "seed": args.seed, "image_size": sizes.image_size,
                "epochs": epochs, "batch_size": sizes.batch_size, "split": "group by mmsi 70/10/20",
                "protocol": args.protocol, "mix split": mix_split_source,
                "samples": {n: len(v) for n, v in views.items()}, "mmsi_groups_crossing_splits": leakage,
                **{f"{k} root": str(v) for k, v in roots.items()}}
    notes = ["Scores in %, on the held-out test split; majority = always predicting the most frequent training class.",
             "“collapsed” = the model predicts a single class for every test image (seen in the seeds' code).",
             f"The published rows are the seeds' best model per dataset (F-VGG16); only that model's row shows them."]
    if any(m.startswith("f-") for m in models) and not weights:
        notes.append("No --weights given: the f-* models froze a *random* backbone (no internet here), so they "
                     "only train a linear head on random features.")
    artifacts.update({f"balance report {n}": r.png_path for n, r in reports.items()})
    extra = {"Per-class F1 (%) and test support": (class_columns, per_class_rows)}
    if seq_rows:
        seq_columns = ["model", "variant", "stage", "trained on"] + [
            f"{n} {k}" for n in datasets for k in ("acc", "macro F1", "majority macro F1")]
        extra[f"Seed-002 sequential protocol (%): base {args.base}, then fine-tuned in turn; every stage on every "
              "test split"] = (seq_columns, seq_rows)
        notes.append("Sequential protocol: “frozen” fine-tunes the head only (the rest, batch-norm statistics "
                     "included, kept from the previous stage), “unfrozen” every layer; stage 0 is the shared base "
                     "training.")
    if rows:
        beaten = sum(bool(r["beats majority (macro F1)"]) for r in rows)
        notes.append(f"{beaten} of {len(rows)} models beat the majority-class baseline on macro F1.")
    results = write_results(out, "Ship classification — OpenSARShip, FUSAR-Ship, Mix (ships3)", columns, rows,
                            settings, notes, extra_tables=extra, artifacts=artifacts)
    return {"results": results, "rows": rows, "per_class": per_class_rows, "merge_reports": merge_reports,
            "sequential": sequential_results, "sequential_rows": seq_rows, "seconds": stage.done(), "out": out}


if __name__ == "__main__":
    main()

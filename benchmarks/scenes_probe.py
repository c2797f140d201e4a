"""How much inshore/offshore is in the DCGAN feature F, as a function of GAN training steps (issue #13)?

For each condition of :mod:`benchmarks.scenes` (same synthesis, ingest and truth, through its
``prepare_condition``) and each budget of a step sweep, one row: the **labelled probe ceiling** on F (5-fold
stratified logistic regression, features standardised inside each fold; accuracy and balanced accuracy, on the
28672-d flat F and on the 1792-d ``spread`` variant the library clusters by default) beside what the library's
unsupervised ``assign_scenes(k=2)`` gives on the same features (accuracy, ARI, ``reliable``), and the ``stats``
baseline of :mod:`benchmarks.scenes` (its ``reference_rows``).

Step 0 is ``train_gan(steps=0)``: the initialised discriminator with its batch-norm statistics re-estimated on the
real images (the library's ``recalibrate_batchnorm``, as after training). The sweep continues one run directory
(0 → 60 → 240, each resumed from the previous checkpoint; a resumed run equals one trained from scratch), so the
60-step row is the demo's features. GAN settings are the demo's (128 px, batch 16, seed as given).

    .venv/bin/python benchmarks/scenes_probe.py [--gan-steps 0,60,240] [--conditions default,coast_hard,sl_ssdd]
        [--seed 0] [--out DIR] [--json out.json]

Measured 2026-12-02 (see the end of this docstring for the table and load).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

try:  # imported as benchmarks.scenes_probe, or run as a script (benchmarks/ first on sys.path)
    from benchmarks import scenes as bench  # noqa: E402
except ImportError:
    import scenes as bench  # noqa: E402

from sardata._io import write_json  # noqa: E402

DEFAULT_STEPS = (0, 60, 240)
PROBE_FOLDS = 5


def probe(features: np.ndarray, labels: np.ndarray, seed: int = 0, folds: int | None = None) -> dict:
    """Cross-validated logistic regression on standardised features: the scene content a labelled reader finds.
    ``folds`` (None → :data:`PROBE_FOLDS`) stratified folds, shuffled with ``seed``; C = 1 (sklearn's default)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    pred = cross_val_predict(model, features, labels,
                             cv=StratifiedKFold(folds or PROBE_FOLDS, shuffle=True, random_state=seed))
    return {"accuracy": round(float(accuracy_score(labels, pred)), 4),
            "balanced": round(float(balanced_accuracy_score(labels, pred)), 4)}


def run_condition(condition: str, gan_steps=DEFAULT_STEPS, seed: int = 0, out=None, masks=bench.REAL_MASKS,
                  workers: int = 0) -> list[dict]:
    """One condition at the demo budget: the ``stats`` row, then one ``dcgan`` row per step budget."""
    from sardata.checkpoints import load_checkpoint
    from sardata.embed.dcgan import train_gan
    from sardata.embed.extract import extract_features
    from sardata.scenes import assign_scenes
    from sardata.scenes.cluster import feature_variant

    settings = bench.budget_settings("demo")
    out = Path(out) / f"{condition}-seed{seed}"
    dataset, base = bench.prepare_condition(condition, "demo", seed, out, masks)
    base = {**base, "seed": seed}
    try:
        rows = [{**r, "seed": seed} for r in bench.reference_rows(dataset, base, seed) if r["model"] == "stats"]
        labels = np.asarray([t == "inshore" for t in dataset.values("scene_truth")], dtype=int)
        for steps in sorted(gan_steps):
            t0 = time.perf_counter()
            ckpt = train_gan(dataset, out / "dcgan", steps=steps, image_size=settings["gan_image_size"],
                             batch_size=settings["gan_batch_size"], seed=seed, num_workers=workers, progress=False)
            train_seconds = time.perf_counter() - t0
            trained = load_checkpoint(ckpt, mmap=True)["step"]
            if trained != steps:  # a run directory already past this budget returns its own checkpoint
                raise ValueError(f"{out / 'dcgan'} holds a {trained}-step run, not {steps}: sweep the budgets in "
                                 "increasing order from a fresh --out, or ask only for larger ones")
            field = f"dcgan{steps}_embedding"
            t0 = time.perf_counter()
            feats = extract_features(dataset, model="dcgan", checkpoint=ckpt, cache_dir=out / "features",
                                     embedding_field=field, num_workers=workers, progress=False)
            extract_seconds = time.perf_counter() - t0
            assert feats.sample_ids == list(dataset.values("id"))
            assign_scenes(dataset, embedding_field=field, k=2, seed=seed, run_key=f"scenes_dcgan{steps}",
                          field=f"scene_dcgan{steps}", tag=False, report=False)
            unsup = bench.score(dataset, f"scenes_dcgan{steps}", f"scene_dcgan{steps}")
            spread = feature_variant(feats.features, "spread", feats.positions)
            rows.append({**base, "model": "dcgan", "gan_steps": steps, "train_seconds": round(train_seconds, 1),
                         "extract_seconds": round(extract_seconds, 1), **unsup,
                         "probe_flat": probe(feats.features, labels, seed),
                         "probe_spread": probe(spread, labels, seed)})
            print(json.dumps(rows[-1]), flush=True)
    finally:
        dataset.delete()
    return rows


def format_table(rows: list[dict]) -> str:
    """condition × steps: probe acc / balanced acc (flat F, spread), unsupervised acc/ARI/reliable, stats acc."""
    stats = {(r["condition"], r["seed"]): r for r in rows if r["model"] == "stats"}
    lines = [f"{'condition':11} {'seed':>4} {'steps':>5}  {'probe F acc/bal':>15}  {'probe spread':>12}  "
             f"{'assign_scenes acc/ARI':>21} {'reliable':>8}  {'stats acc/ARI':>13}  {'train s':>7}"]
    for r in rows:
        if r["model"] != "dcgan":
            continue
        s = stats[(r["condition"], r["seed"])]
        lines.append(
            f"{r['condition']:11} {r['seed']:>4} {r['gan_steps']:>5}  "
            f"{r['probe_flat']['accuracy']:7.3f}/{r['probe_flat']['balanced']:.3f}  "
            f"{r['probe_spread']['accuracy']:6.3f}/{r['probe_spread']['balanced']:.3f}  "
            f"{r['accuracy']:13.3f}/{r['ari']:6.3f} {str(r['reliable']):>8}  "
            f"{s['accuracy']:6.3f}/{s['ari']:6.3f}  {r['train_seconds']:7.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gan-steps", default=",".join(map(str, DEFAULT_STEPS)))
    parser.add_argument("--conditions", default=",".join(bench.CONDITIONS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--masks", type=Path, default=bench.REAL_MASKS)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--out", help="keep data, checkpoints and features here (default: a temporary dir)")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    conditions = args.conditions.split(",")
    unknown = set(conditions) - set(bench.CONDITIONS)
    if unknown:
        parser.error(f"unknown conditions {sorted(unknown)}; expected some of {list(bench.CONDITIONS)}")
    steps = [int(s) for s in args.gan_steps.split(",")]
    started = time.perf_counter()
    temp = tempfile.TemporaryDirectory(prefix="sardata-bench-probe-") if args.out is None else None
    try:
        rows = []
        for condition in conditions:
            rows += run_condition(condition, steps, args.seed, temp.name if temp else args.out, args.masks,
                                  args.workers)
    finally:
        if temp is not None:
            temp.cleanup()
    print("\n" + format_table(rows))
    print(f"{time.perf_counter() - started:.0f} s")
    if args.json:
        write_json(args.json, {"seed": args.seed, "gan_steps": steps, "rows": rows,
                               "seconds": round(time.perf_counter() - started, 1)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

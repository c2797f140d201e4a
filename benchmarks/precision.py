"""bf16 autocast on the CPU against fp32: detector step time, and test AP50 at the same number of steps.

``amp=True`` (the default of the detector and classifier) trains in bf16 on CPUs with native bf16
(:func:`sardata.train.common.mixed_precision_dtype`). This benchmark is what that default rests on.

1. **Step time.** The ``cpu`` preset's model (Faster R-CNN on the ``tiny`` backbone, its CPU proposal/RoI options,
   batch 4 of 256² crops, one thread) trains the same pre-built batches (:func:`benchmarks.train._batches`) with
   and without autocast through :func:`sardata.train.engine.train_one_epoch`; rounds alternate, the median CPU time
   per step of each is reported (CPU time of this process, so a neighbour on the other core changes it little).
2. **AP at equal steps.** On each condition (generator preset, data seed, training seed; none is the demo's own
   data, ``default`` seed 0), 200 synthetic SSDD images are ingested and exported as COCO as the demo does, and
   ``DetectorConfig(preset="cpu", iterations=800)`` trains twice side by side, ``amp=False`` and ``amp=True``,
   one thread each (:func:`sardata.train.detector.train_concurrently`). Test AP50 all / inshore / offshore by the
   generator's truth (:func:`sardata.evaluate.evaluate_dataset`). The training-seed spread of this detector is
   ± 1.6 AP50 all, ± 4.7 inshore (session-7 measurement, demo data, 3 seeds).

    python -m benchmarks.precision [--conditions default:1:0,default:1:1,coast_hard:2:0,real_masks:3:0]
        [--images 200] [--iterations 800] [--out DIR] [--json out.json]

Measured 2026-12-02 (AMD EPYC with avx512_bf16, torch 2.14.1):

    step time, load 0.0–0.5: fp32 0.416 s, bf16 0.299 s CPU per step (1.39×); under load 1–2: 0.50 / 0.35 (1.43×)

    AP50 % all / inshore / offshore, 200 images, 800 steps, fp32 ‖ bf16 side by side (load 4–5)
    condition (data, train seed)  fp32                    bf16                    bf16, 1000 steps
    default (1, 0)                45.47 /  6.89 / 59.61   44.46 /  6.60 / 62.91   46.48 /  6.07 / 64.20
    default (1, 1)                47.21 /  6.47 / 63.19   47.91 /  6.62 / 65.43   —
    coast_hard (2, 0)             46.63 / 12.88 / 59.71   46.99 / 17.55 / 54.87   50.26 / 11.72 / 63.45
    real_masks (3, 0)             51.23 /  3.70 / 71.51   50.58 /  6.04 / 69.46   50.22 /  3.90 / 69.82

    Δ all bf16 − fp32 at 800 steps: mean −0.15 (−1.01 / +0.70 / +0.36 / −0.65), inside the ± 1.6 seed spread.
    Training seconds under load 4–5, fp32 / bf16: 443.6 / 340.0, 718.0 / 608.3, 740.2 / 612.2, 735.3 / 622.8
    (contention eats most of the per-step gain); bf16 at 1000 steps, run alone after the other
    jobs ended (load not logged): 304.8 s (coast_hard), 312.3 s (real_masks); the default run overlapped them.
    Arm ``bf16_1000`` is ``--arms bf16_1000:1:1000 --no-step-time``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

#: (generator condition of :func:`benchmarks.difficulty.generate`, data seed, training seed)
CONDITIONS = (("default", 1, 0), ("default", 1, 1), ("coast_hard", 2, 0), ("real_masks", 3, 0))
SCENES = ("all", "inshore", "offshore")


def step_times(steps: int = 5, rounds: int = 3) -> dict:
    """Median CPU seconds per training step of the ``cpu`` preset's model, fp32 and bf16 autocast."""
    import copy

    from benchmarks.train import _batches
    from sardata.train import common
    from sardata.train.detection_models import build_detector
    from sardata.train.detector import _RCNN_CPU_OPTIONS, TINY_REPRESENTATION
    from sardata.train.engine import train_one_epoch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    device = torch.device("cpu")
    base = build_detector("faster_rcnn", "tiny", num_classes=2, image_size=512, native=True,
                          representation_size=TINY_REPRESENTATION, **_RCNN_CPU_OPTIONS)
    batches = _batches(steps, 4, 256)
    models = {"fp32": copy.deepcopy(base), "bf16": copy.deepcopy(base)}
    optimizers = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, m in models.items()}
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for round_index in range(rounds + 1):  # round 0 warms the allocator and oneDNN's kernel caches up
        for which in (("fp32", "bf16") if round_index % 2 == 0 else ("bf16", "fp32")):
            cpu = time.process_time()
            train_one_epoch(models[which], optimizers[which], batches, device, round_index, amp=which == "bf16",
                            progress=False)
            if round_index:
                times[which].append((time.process_time() - cpu) / steps)
    median = {k: statistics.median(v) for k, v in times.items()}
    return {"dtype": str(common.mixed_precision_dtype(device)), "fp32_step_cpu_s": round(median["fp32"], 3),
            "bf16_step_cpu_s": round(median["bf16"], 3), "speedup": round(median["fp32"] / median["bf16"], 2)}


#: Default arms: ``name → (amp, iterations)``; ``None`` iterations = the ``iterations`` argument.
ARMS = {"fp32": (False, None), "bf16": (True, None)}


def ap_at_equal_steps(condition: str, data_seed: int, train_seed: int, out: Path, images: int = 200,
                      iterations: int = 800, arms: dict | None = None) -> dict:
    """Test AP50 by scene of the ``cpu`` preset trained with ``amp`` off and on, side by side, on one condition.

    ``arms`` (:data:`ARMS`) can add runs of other lengths, e.g. ``{"bf16_1000": (True, 1000)}`` for bf16 at the
    fp32 run's wall time; runs are deterministic, so an arm already trained in ``out`` gives the same numbers."""
    import sardata
    from benchmarks.difficulty import generate
    from exporters import export_view
    from sardata.demo import attach_scene_truth
    from sardata.evaluate import evaluate_dataset, read_results
    from sardata.train.detector import DetectorConfig, train_concurrently

    name = f"precision-{condition}-{data_seed}"
    root = generate(condition, out / name / "synth", images, data_seed)
    dataset = sardata.load("ssdd", root, name=name, overwrite=True)
    attach_scene_truth(dataset, root / "synth_truth.json")
    export = out / name / "coco"
    export_view(dataset, export, "coco", overwrite=True, seed=data_seed)
    arms = arms or ARMS
    configs = [DetectorConfig(data=export, preset="cpu", iterations=steps or iterations, amp=amp, workers=0,
                              device="cpu", seed=train_seed, progress=False,
                              out_dir=out / name / f"{arm}-seed{train_seed}")
               for arm, (amp, steps) in arms.items()]
    start = time.perf_counter()
    trained = dict(zip(arms, train_concurrently(configs)))
    wall = time.perf_counter() - start
    evaluation = evaluate_dataset(dataset, {arm: read_results(r["predictions"]) for arm, r in trained.items()},
                                  split="test", scene_field="scene_truth", out_dir=out / name / "evaluate")
    rows = {arm: {scene: round(100 * float(evaluation["rows"][arm][scene]["AP50"]), 2) for scene in SCENES}
            for arm in arms}
    result = {"condition": condition, "data_seed": data_seed, "train_seed": train_seed, "ap50": rows,
              "train_s": {arm: round(sum(r["time_s"] for r in t["history"]), 1) for arm, t in trained.items()},
              "wall_s_all_arms": round(wall, 1)}
    if "fp32" in rows and "bf16" in rows:
        result["delta_all"] = round(rows["bf16"]["all"] - rows["fp32"]["all"], 2)
    return result


def run(conditions=CONDITIONS, images: int = 200, iterations: int = 800, out: Path | None = None,
        arms: dict | None = None, step: bool = True) -> dict:
    out = Path(out or tempfile.mkdtemp(prefix="sardata-precision-"))
    result = {"step": step_times() if step else None, "conditions": []}
    for condition, data_seed, train_seed in conditions:
        result["conditions"].append(ap_at_equal_steps(condition, data_seed, train_seed, out, images, iterations,
                                                      arms))
        print(json.dumps(result["conditions"][-1]), flush=True)
    deltas = [c["delta_all"] for c in result["conditions"] if "delta_all" in c]
    result["delta_all_mean"] = round(statistics.mean(deltas), 2) if deltas else None
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conditions", default=",".join(":".join(map(str, c)) for c in CONDITIONS),
                        help="condition:data_seed:train_seed, comma-separated")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--iterations", type=int, default=800)
    parser.add_argument("--arms", help="name:amp(0/1):iterations, comma-separated (default: fp32 and bf16 at "
                                           "--iterations)")
    parser.add_argument("--no-step-time", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    conditions = [(c, int(d), int(t)) for c, d, t in (item.split(":") for item in args.conditions.split(","))]
    arms = None
    if args.arms:
        arms = {n: (a == "1", int(i)) for n, a, i in (item.split(":") for item in args.arms.split(","))}
    result = run(conditions, args.images, args.iterations, args.out, arms, step=not args.no_step_time)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""BSLM (seed 000) on SSDD: does replicating inshore training images raise detector mAP on inshore scenes?

ingest SSDD → train the BSLM DCGAN → 28672-d scene features → k=2 k-means scene tags (smaller cluster = inshore) →
replicate inshore training images until they match offshore → one COCO export per arm → train each detector on each
→ AP50 on all / inshore / offshore test images (Table I layout: one row per model × arm, the paper's numbers
alongside, labelled ``published``).

Arms (``--arms``, baseline always included; differences are paired with it by seed):

- ``baseline``: no replication.
- ``bslm``: inshore training images replicated by the k-means scene tags (the paper's method) with
  :func:`sardata.views.balance.balance` (``by="scene"``).
- ``oracle``: the same library call by the generator's inshore/offshore truth (``by="scene_truth"``, from
  ``synth_truth.json``): what replication does when the tags are right, so the effect of replication is separated
  from the quality of the tags. Synthetic data only; asking for it on real data (no truth file) is an error. Default
  arms: ``baseline,bslm``; ``--quick`` adds ``oracle`` when the data has the truth file.

Test images are split into inshore/offshore by the official ``test_inshore`` / ``test_offshore`` subsets when the
release has them (as the paper did), otherwise by the k-means scene tags. The results JSON also records the scene-tag
accuracy vs the truth, the training images per scene of each arm before/after replication (counted by the truth when
there is one) with the replication factor, and a per-scene error table: TP/FN/FP at IoU 0.5 among the detections
above each run's best-F1 score (an operating point read off the test set to describe the errors, not a score), with
inshore misses within 10 px of land and inshore false alarms centred on land (land masks rendered again from the
generator's seed, checked against the truth's ships).

    python recipes/bslm_ssdd.py --data /data/Official-SSDD --models faster_rcnn,cascade_rcnn,retinanet,ssd
    python recipes/bslm_ssdd.py --quick          # synthetic SSDD, the four detectors (cpu preset), 3 seeds, 3 arms
    python recipes/bslm_ssdd.py --quick --models retinanet --reuse   # add a model to a run, keeping finished runs

``--quick`` trains each detector from scratch with the ``cpu`` preset of :mod:`sardata.train.detector` for 300
iterations, every arm with the same seed and budget, two runs side by side, over 3 seeds; every cell is the mean ±
std over seeds. ``--reuse`` keeps a finished detector run whose config and annotation files are unchanged.

**Budget** (``--budget``). Reading of the paper: its detectors train "12 epochs" on each training set, so the
replicated set (more images) gets proportionally more optimiser steps than the baseline: replication and training
length change together. ``--budget steps`` (the default with an iteration budget) gives every arm the same steps, which
isolates replication; ``--budget epochs`` gives each arm ``iterations × its training images with replicas / the
baseline's`` (the paper's protocol; the ``paper`` preset trains by epochs, so there it is what happens anyway) and adds
the arm ``steps_control``: no replication, trained for the ``bslm`` arm's steps, so ``bslm − steps_control`` is
replication at equal compute and ``steps_control − baseline`` the extra steps alone (table at the end).

Faster R-CNN at the demo's budget, measured 2026-12-01 23:50 – 12-02 00:55 (``--quick --models faster_rcnn --iterations 800 --arms
baseline,bslm,oracle``: synthetic SSDD default preset, 200 images, seed-0 data, i.e. the demo's images and split; cpu
preset at Faster R-CNN's lr 1e-3 (:data:`sardata.train.detector.CPU_LR`), warm-up 100 steps (the cap of
:func:`sardata.train.engine.warmup_length`, a quarter of the run, does not bind at 800), batch 4, 256² crops, training
seeds 0/1/2, two runs side by side, one thread each). Scene tags: the recipe's DCGAN (60 steps at 64 px; the demo's is
128 px, so its tags differ), 55 of 200 images tagged inshore, 81 % right against the generator's truth. Test set: 40
images, the official ``test_inshore`` (8 images, 27 ships) / ``test_offshore`` (32 images, 59 ships) subsets. AP50 %,
mean ± std over seeds, per seed (0 / 1 / 2) in brackets, Δ = arm − baseline paired by seed:

| arm | all | inshore [per seed] | offshore | Δ inshore vs baseline [per seed] | Δ offshore | published all / in / off |
|---|---:|---:|---:|---:|---:|---|
| baseline | 54.93 ± 1.55 | 20.17 ± 4.74 [21.1 / 24.4 / 15.1] | 69.41 ± 0.90 | | | 88.26 / 66.22 / 97.68 |
| bslm | 55.17 ± 0.52 | 22.35 ± 4.03 [18.4 / 22.3 / 26.4] | 68.72 ± 1.86 | +2.18 ± 7.94 [−2.7 / −2.1 / +11.3] | −0.69 ± 1.41 | 91.13 / 74.82 / 98.18 (Δ +8.60) |
| oracle | 51.79 ± 4.81 | 20.08 ± 8.47 [15.2 / 15.2 / 29.9] | 64.90 ± 4.31 | −0.09 ± 13.01 [−5.9 / −9.2 / +14.8] | −4.51 ± 3.75 | – |

(Δ all: bslm +0.23 ± 1.42, oracle −3.14 ± 5.80.) Baseline seed 0 (56.2 / 21.1 / 70.4) is the demo-data figure of
:mod:`sardata.train.detector` (0.562 / 0.211 / 0.704), reproduced.

Training images per scene, counted by the truth, before → after replication (every arm trains the same 800 steps):
baseline 37 inshore / 123 offshore; bslm 37 → 76 (×2.05) / 123 → 154 (×1.25): the 45 training images tagged inshore
are copied to 115, and 31 of those 70 copies are of offshore images; oracle 37 → 123 (×3.32) / 123. Training ships:
132 of 403 are inshore (3.6 per inshore image, 2.2 per offshore one); after replication 263 of 591 (bslm), 436 of 707
(oracle).

Errors (the recipe's error table: IoU 0.5, detections at or above each run's best-F1 score, 0.83–0.91; mean over
seeds), and ships found at any score (the same predictions matched without a threshold, range over seeds; not in the
recipe's output):

| arm | inshore TP / FN (of which ≤ 10 px from land) / FP (of which on land) | offshore TP / FN / FP | found at any score: inshore / offshore |
|---|---|---|---|
| baseline | 5.0 / 22.0 (18.7) / 9.0 (7.3) | 35.3 / 23.7 / 5.0 | 14–16 of 27 / 47–48 of 59 |
| bslm | 6.7 / 20.3 (18.0) / 12.0 (11.0) | 37.0 / 22.0 / 8.7 | 16–17 / 46–48 |
| oracle | 6.7 / 20.3 (18.3) / 14.7 (14.3) | 38.3 / 20.7 / 14.7 | 17 / 46–47 |

Reading: replication does not measurably raise inshore AP50 at 800 steps either. BSLM's +2.18 is one seed's +11.3
against −2.7 and −2.1 on the other two: half its standard error (7.94 / √3 = 4.6), and smaller than the baseline's own
seed spread (±4.7); the oracle, replicating by the truth, gives −0.09 ± 13.0 and costs 4.5 ± 3.8 points offshore
(offshore images are half of its steps instead of three quarters). The published +8.60 is not reproduced. Why, in
numbers: (1) inshore ships are not scarce here: a third of the training ships on 37 images, so copying the images does
not change what the detector lacks; (2) copying finds 1–2 more inshore ships at any score (14–16 → 16–17 of 27), while
10–13 of the 27 are found by no detection at all (per run), nearly all of them within 10 px of land; (3) the false
alarms on land grow with the replication factor (7.3 → 11.0 → 14.3 at the operating point), so the extra inshore hits
are ranked among more land false alarms and AP does not move beyond the noise; (4) the inshore test set is small (8
images, 27 ships: one ship is 3.7 recall points), so a single seed swings by up to ±10. The paper's detectors reach an
offshore AP50 of 98 % and are limited by inshore scarcity; this one reaches 69 % after 800 CPU steps and is limited by
berthed ships next to land clutter, which copies of the same images do not fix.

Time (2026-12-01 23:50 → 2026-12-02 00:55, 65 min wall, under load: load average 2–5.5 on 2 cores, another one-thread
training job beside it throughout, a test run and a profiling job during the first pair): setup (ingest, DCGAN,
features, tags, exports) 6 min; a pair of runs 10 min at load ~3 (training 560–620 s each), 18 min at load 4–5.5 (seed
0); oracle seed 2 alone 4.4 min of training. Peak RSS 1.4 GB. It ran as three invocations with ``--reuse``
(interrupted after the seed-0 pair to train baseline/bslm seeds 1–2 before the oracle); the reused runs were kept by
their fingerprints, unchanged.

The recipe's own ``--quick`` budget (300 iterations), the four detectors measured together 2026-12-03 on a quiet
machine (``--quick --models faster_rcnn,cascade_rcnn,retinanet,ssd --arms baseline,bslm,oracle``; RetinaNet's nine
runs first, the other 27 in a second invocation with ``--reuse``, 62 min wall in all; load ≈ 2, the recipe's own two
processes): synthetic SSDD default preset, 200 images, seed-0 data, cpu preset at each detector's lr
(:data:`sardata.train.detector.CPU_LR`), bf16 autocast, the capped warm-up (75 of 300 steps), training seeds 0/1/2,
two runs side by side. Scene tags: 50 of 200 images tagged inshore, 82.5 % right against the generator's truth;
training images by the truth 37 inshore / 123 offshore, bslm 37 → 80 / 123 → 156, oracle 37 → 123 / 123. AP50 %, mean
± std over seeds, Δ paired by seed:

| model | arm | all | inshore [seeds 0 / 1 / 2] | offshore | Δ inshore vs baseline (paired) [per seed] | published all / in / off |
|---|---|---:|---:|---:|---:|---|
| Faster R-CNN (lr 1e-3) | baseline | 31.70 ± 8.86 | 13.14 ± 4.51 [9.1 / 12.3 / 18.0] | 40.12 ± 10.69 | | 88.26 / 66.22 / 97.68 |
| Faster R-CNN (lr 1e-3) | bslm | 29.06 ± 5.14 | 10.89 ± 2.10 [8.5 / 12.0 / 12.2] | 37.45 ± 6.18 | −2.24 ± 3.04 [−0.6 / −0.4 / −5.7] | 91.13 / 74.82 / 98.18 (Δ +8.60) |
| Faster R-CNN (lr 1e-3) | oracle | 20.40 ± 1.70 | 9.80 ± 6.08 [6.5 / 6.1 / 16.8] | 25.85 ± 1.42 | −3.33 ± 2.64 [−2.6 / −6.3 / −1.2] | – |
| Cascade R-CNN (lr 2e-3) | baseline | 35.55 ± 1.99 | 13.33 ± 2.54 [15.9 / 13.2 / 10.9] | 46.47 ± 2.05 | | 88.67 / 68.00 / 98.00 |
| Cascade R-CNN (lr 2e-3) | bslm | 30.50 ± 2.31 | 11.94 ± 1.89 [10.7 / 11.0 / 14.1] | 40.63 ± 3.21 | −1.39 ± 4.30 [−5.2 / −2.2 / +3.3] | 91.53 / 76.32 / 98.25 (Δ +8.32) |
| Cascade R-CNN (lr 2e-3) | oracle | 18.47 ± 3.44 | 8.58 ± 2.00 [9.2 / 10.2 / 6.3] | 23.91 ± 4.33 | −4.75 ± 1.88 [−6.7 / −3.0 / −4.5] | – |
| RetinaNet (lr 5e-4) | baseline | 10.33 ± 3.27 | 5.69 ± 0.29 [5.5 / 6.0 / 5.6] | 13.85 ± 4.38 | | 71.51 / 45.66 / 83.35 |
| RetinaNet (lr 5e-4) | bslm | 8.77 ± 0.18 | 3.61 ± 2.87 [6.8 / 1.3 / 2.7] | 12.21 ± 0.69 | −2.08 ± 3.11 [+1.4 / −4.7 / −2.9] | 77.85 / 58.06 / 87.50 (Δ +12.40) |
| RetinaNet (lr 5e-4) | oracle | 6.85 ± 2.44 | 1.50 ± 0.61 [2.2 / 1.3 / 1.0] | 9.37 ± 3.77 | −4.19 ± 0.79 [−3.3 / −4.7 / −4.5] | – |
| SSD (lr 2e-3) | baseline | 16.11 ± 3.00 | 6.40 ± 1.44 [5.8 / 8.0 / 5.3] | 22.32 ± 3.34 | | 68.93 / 46.52 / 79.38 |
| SSD (lr 2e-3) | bslm | 13.82 ± 4.03 | 5.77 ± 2.64 [3.0 / 8.3 / 5.9] | 19.70 ± 5.76 | −0.63 ± 1.86 [−2.8 / +0.3 / +0.6] | 76.59 / 64.67 / 82.44 (Δ +18.15) |
| SSD (lr 2e-3) | oracle | 8.79 ± 3.79 | 3.92 ± 2.76 [7.1 / 2.5 / 2.1] | 11.87 ± 3.80 | −2.47 ± 3.46 [+1.3 / −5.5 / −3.2] | – |

Replication lowers inshore AP50 at 300 steps for all four (BSLM −0.6 … −2.2, oracle −2.5 … −4.8; published +8.3 …
+18.2) and all-scene AP50 more (BSLM −1.6 … −5.1, oracle −3.5 … −17.1): the same 300 steps over 236 or 246 images
instead of 160 show each offshore image fewer times, and these detectors are far from converged. Errors at each run's
best-F1 score (mean over seeds), baseline / bslm / oracle: inshore TP of 27 — Faster R-CNN 5.0 / 5.7 / 3.3, Cascade
R-CNN 6.7 / 3.7 / 4.3, RetinaNet 0.3 / 0 / 0, SSD 5.3 / 2.3 / 2.3; inshore misses within 10 px of land 17–22 of
20–27 in every run; inshore false alarms on land Faster R-CNN 9.7 / 17.7 / 8.7, Cascade R-CNN 14.3 / 8.3 / 11.7, SSD
24.0 / 10.3 / 19.7. RetinaNet learns at lr 5e-4 (AP50 all 10.33 ± 3.27, against 2.40 ± 0.87 at the former 2e-3 on
2026-12-01) but finds almost no inshore ship in 300 steps. Earlier rows, other code: Faster R-CNN 2026-12-02 (fp32,
lr 1e-3) baseline 31.40 ± 3.95 / 15.20 ± 0.46 / 40.26 ± 5.76, BSLM Δ inshore −3.94 ± 2.62, oracle −8.19 ± 4.37;
2026-12-01 (lr 2e-3, uncapped warm-up) Cascade R-CNN Δ +1.67 ± 6.95, RetinaNet +0.31 ± 0.79, SSD −1.79 ± 0.45.

Epoch budget (``--budget epochs``), Faster R-CNN, measured 2026-12-03 16:48–17:04 (``--quick --models faster_rcnn
--arms baseline,bslm,oracle,steps_control --budget epochs --reuse``: the baseline runs of the table above reused,
the same data, tags and exports; load ≈ 2, the recipe's own two processes). Steps: baseline 300, bslm 442 (236
training images with replicas / 160), oracle 461 (246 / 160), steps_control 442. AP50 % all / inshore / offshore,
mean ± std over seeds 0–2, and paired differences (inshore per seed):

    baseline (300)          31.70 ± 8.86   13.14 ± 4.51   40.12 ± 10.69
    bslm (442)              41.01 ± 5.76   14.97 ± 3.30   53.18 ± 7.18
    oracle (461)            31.48 ± 3.21   14.14 ± 5.40   40.71 ± 3.85
    steps_control (442)     41.36 ± 5.15   16.78 ± 3.36   52.62 ± 6.07
    bslm − baseline         +9.31 ± 9.03   +1.83 ± 4.03 [+6.5 / −0.9 / −0.0]   +13.06 ± 11.87   (published Δ inshore +8.6)
    steps_control − base.   +9.67 ± 4.23   +3.65 ± 3.57 [+7.7 / +1.1 / +2.2]   +12.50 ± 4.74
    bslm − steps_control    −0.35 ± 5.12   −1.81 ± 0.49 [−1.3 / −2.0 / −2.2]   +0.56 ± 7.93
    oracle − baseline       −0.22 ± 10.30  +1.00 ± 6.26 [+7.8 / −4.4 / −0.4]   +0.59 ± 13.19

With the paper's protocol BSLM gains in every column, and the extra steps explain all of it: the control without
replicas gains as much, and at equal steps replication lowers inshore AP50 on every seed.

The same from 800 steps (2026-12-03 17:05–17:59, ``--iterations 800``, a new ``--out``, same data, tags 82.5 % right;
12 runs, 54 min, load ≈ 2 from the recipe's two processes and, for its first minutes, a 1-min analysis script of mine
beside it; AP does not depend on load). Steps: baseline 800, bslm 1180, oracle 1230, steps_control 1180:

    baseline (800)          56.98 ± 2.03   24.46 ± 3.08   70.66 ± 1.06
    bslm (1180)             61.27 ± 0.55   29.16 ± 2.91   73.65 ± 0.95
    oracle (1230)           55.48 ± 1.81   26.88 ± 2.95   67.14 ± 2.82
    steps_control (1180)    59.89 ± 2.25   27.47 ± 2.60   73.80 ± 2.52
    bslm − baseline         +4.29 ± 1.94   +4.70 ± 5.66 [+5.6 / −1.4 / +9.9]   +2.98 ± 0.20
    steps_control − base.   +2.91 ± 0.74   +3.01 ± 3.94 [+1.9 / −0.2 / +7.4]   +3.14 ± 1.47
    bslm − steps_control    +1.38 ± 1.98   +1.69 ± 2.53 [+3.7 / −1.1 / +2.5]   −0.15 ± 1.62
    oracle − baseline       −1.50 ± 3.76   +2.42 ± 5.99 [+4.7 / −4.4 / +6.9]   −3.53 ± 3.88

About two thirds of BSLM's +4.7 inshore is the extra steps; the rest (+1.7 at equal compute, two of three seeds,
within one std) is replication, negative on every seed at 300. Inshore ships found at each run's best-F1 score:
7.7 / 7.7 / 9.3 of 27 (baseline / bslm / steps_control), 16–17 of the misses within 10 px of land in every arm. These
detectors are far from converged, so extra steps are worth more here than after 12 epochs on real SSDD: this does
not make the published +8.6 a compute effect, it shows that the epoch protocol cannot separate the two.

On a second data draw (``--seed 3``: another synthetic SSDD, 9 inshore test images, tags 82 % right, training seeds
3–5; 2026-12-03 18:12–19:12, load ≈ 2, plus a 1-min test run of mine beside it at 18:25; steps baseline 800, bslm
1300, oracle 1240, steps_control 1300): baseline 55.73 / 12.13 / 70.12, bslm 60.56 / 18.52 / 73.78, oracle 59.16 /
18.16 / 73.04, steps_control 62.27 / 18.21 / 75.90; bslm − baseline +6.39 ± 1.92 inshore, steps_control −
baseline +6.07 ± 3.57, **bslm − steps_control +0.31 ± 1.68** [+1.8 / +0.6 / −1.5] (−1.70 all, −2.12 offshore):
there the extra steps are the whole gain.
"""

from __future__ import annotations

import hashlib
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
#: Arm → the scene field its inshore training images are replicated by (None: no replication).
ARMS = {"baseline": None, "bslm": "scene", "oracle": "scene_truth", "steps_control": None}
#: Arms trained on another arm's step count (``--budget epochs``): arm → the arm whose count it takes.
STEP_CONTROLS = {"steps_control": "bslm"}
#: ``--budget``: ``steps`` = every arm the same optimiser steps; ``epochs`` = the same passes over each arm's own
#: training set (the paper's 12 epochs), so a replicated arm trains proportionally more steps.
BUDGETS = ("steps", "epochs")
#: Arm → its row of the published Table I (the oracle has none).
PUBLISHED_ARM = {"baseline": "baseline", "bslm": "replication"}
#: The synthetic generator's truth (per image: inshore/offshore, ...) and the sample field it is copied to.
TRUTH_FILE, TRUTH_FIELD = "synth_truth.json", "scene_truth"
#: px around a missed ship that make it "near land" in the error table.
NEAR_LAND = 10
ERROR_COLUMNS = tuple(f"{w} {s}" for s in SCENES for w in ("ships", "TP", "FN", "FP")) + (
    "FN inshore near land", "FP inshore on land")


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
    parser.add_argument("--arms", default=None,
                        help="comma-separated arms from baseline (no replication), bslm (replicated by the k-means "
                             "scene tags), oracle (replicated by the generator's inshore/offshore truth: synthetic "
                             "data only; it separates the effect of replication from the quality of the tags). "
                             "Default baseline,bslm; --quick on synthetic data adds oracle")
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
    parser.add_argument("--budget", choices=BUDGETS, default="steps",
                        help="with an iteration budget (--quick, --iterations): steps = every arm trains the same "
                             "steps (default); epochs = the same passes over each arm's own training set, as the "
                             "paper's 12 epochs do, so replicated arms train proportionally more steps (arm "
                             "steps_control: no replication at the bslm arm's step count, the extra steps alone)")
    parser.add_argument("--score-threshold", default="f1",
                        help="score from which a detection counts in the per-scene error table: a number, or f1 "
                             "(default: each run's best-F1 score over all test images; AP uses every detection)")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: tabulate the finished detector runs under --out (as --reuse keeps "
                             "them); cells without a finished run are marked not run")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the finished detector runs under --out whose training data and settings are "
                             "unchanged, and resume the DCGAN: continue an interrupted run or add models to it")
    return parser.parse_args(argv)


def resolve_arms(text: str | None, level: str, root: Path) -> list[str]:
    """The arms to run (baseline first); ``oracle`` needs the generator's truth file under ``root``."""
    has_truth = (root / TRUTH_FILE).is_file()
    default = ["baseline", "bslm"] + (["oracle"] if level != "full" and has_truth else [])
    arms = check_choices(csv_list(text) or default, ARMS, "--arms")
    if "baseline" not in arms:
        raise SystemExit(f"error: --arms {','.join(arms)}: include baseline (differences are paired against it)")
    if "steps_control" in arms and "bslm" not in arms:
        raise SystemExit("error: --arms steps_control trains the baseline at the bslm arm's step count: include bslm")
    if "oracle" in arms and not has_truth:
        raise SystemExit(f"error: --arms oracle replicates by the generator's inshore/offshore truth, which only "
                         f"synthetic data has: {root / TRUTH_FILE} does not exist (real data: --arms baseline,bslm)")
    return [a for a in ARMS if a in arms]


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
    if args.budget == "epochs" and iterations is None:
        raise SystemExit("error: --budget epochs scales an iteration budget: the paper preset already trains by "
                         "epochs (replicated arms take more steps); pass --iterations or --quick")
    if "steps_control" in (csv_list(args.arms) or ()) and args.budget != "epochs":
        raise SystemExit("error: --arms steps_control is the baseline at the bslm arm's steps: use --budget epochs")
    out = output_dir(args, NAME)
    stage = Stages()

    import sardata
    from exporters import export_view
    from sardata.embed.dcgan import train_gan
    from sardata.embed.extract import extract_features
    from sardata.evaluate import evaluate_dataset, read_results
    from sardata.scenes import assign_scenes, compute_visualization, scene_accuracy
    from sardata.train.detector import DetectorConfig
    from sardata.views.balance import balance
    from sardata.views.report import balance_report

    stage("SSDD → FiftyOne")
    root, synthetic = dataset_root(args, "ssdd", out, sizes.synth_images)
    arms = resolve_arms(args.arms, level, root)
    has_truth = (root / TRUTH_FILE).is_file()
    # one FiftyOne dataset per output directory: two runs at once (a test, another --out) must not overwrite it
    name = f"recipe-{NAME}-{hashlib.sha1(str(out).encode()).hexdigest()[:8]}"
    dataset = sardata.load("ssdd", root, name=name, overwrite=True)
    summary: dict = {"dataset": name, "samples": len(dataset), "synthetic": synthetic, "models": models,
                     "seeds": seeds, "arms": arms}
    if has_truth:
        from sardata.demo import attach_scene_truth

        attach_scene_truth(dataset, root / TRUTH_FILE, field=TRUTH_FIELD)

    stage("BSLM DCGAN → 28672-d scene features")
    checkpoint = train_gan(dataset, out_dir=out / "dcgan", steps=sizes.gan_steps,
                           preset="paper" if sizes.gan_steps is None else "default", batch_size=sizes.gan_batch_size,
                           image_size=sizes.gan_image_size, device=args.device, num_workers=sizes.workers,
                           seed=args.seed, resume=args.reuse or args.report_only)
    features = extract_features(dataset, model="dcgan", checkpoint=checkpoint, device=args.device,
                                num_workers=sizes.workers, pca_dim=sizes.pca_dim, embedding_field="dcgan_embedding")
    summary["feature_dim"] = int(features.features.shape[1])

    stage("k=2 scene tags (smaller cluster = inshore)")
    # tag=False: evaluation reads scene-like sample tags too, and the test split must follow one source of truth
    assign_scenes(dataset, embedding_field="dcgan_embedding", k=2, seed=args.seed, tag=False)
    summary["scene_counts"] = dataset.count_values("scene.label")
    viz_png = out / "scenes_map.png"
    compute_visualization(dataset, embedding_field="dcgan_embedding", method="pca", seed=args.seed, png_path=viz_png)
    if has_truth:
        summary["scene_accuracy_vs_truth"] = round(
            scene_accuracy(dataset, pred_field="scene", true_field=TRUTH_FIELD)["accuracy"], 4)

    stage(f"replicate inshore training images ({', '.join(a for a in arms if ARMS[a])}) + balance report")
    for arm in arms:
        if ARMS[arm] is not None:  # the library's replication, by the arm's scene field
            balance(dataset, by=ARMS[arm], mode="replicate", run_key=arm, seed=args.seed)
    report = balance_report(dataset, run_key="bslm", console=console, out_dir=out / "balance_report") \
        if "bslm" in arms else None
    count_by = TRUTH_FIELD if has_truth else "scene"
    replication = {arm: training_scenes(dataset, arm if ARMS[arm] else None, count_by) for arm in arms}

    steps = arm_iterations(iterations, replication, arms, args.budget)

    stage("COCO exports, one per replication")
    exports = {arm: out / "export" / (f"coco_{arm}" if ARMS[arm] else "coco") for arm in arms}
    for path, arm in {path: arm for arm, path in exports.items()}.items():
        export_view(dataset, path, "coco", balance_run=arm if ARMS[arm] else None, overwrite=True, seed=args.seed)
    gt_path = exports["baseline"] / "annotations" / "test.json"
    check_same_test_split(gt_path, [p / "annotations" / "test.json" for p in exports.values()])
    scene_field = official_scene_field(dataset) or "scene"
    groups = scene_image_ids(dataset, gt_path, scene_field)

    budget = "same iterations" if effective_budget(args.budget, iterations) == "steps" else "same epochs"
    stage(f"train {','.join(models)}: arms {','.join(arms)} × seeds {seeds} ({budget}, two at a time)")
    keys = [(model, arm, seed) for model in models for seed in seeds for arm in arms]
    configs = [DetectorConfig(
        data=exports[arm], arch=model, preset=sizes.preset,
        backbone=None if (model == "ssd" and sizes.preset == "paper") else args.backbone,
        out_dir=out / "detectors" / run_name(model, arm, seed, steps[arm], iterations),
        epochs=args.epochs, iterations=steps[arm], crop_size=sizes.crop_size, max_images=sizes.max_images,
        backbone_weights=None if model == "ssd" else args.backbone_weights, workers=sizes.workers,
        device=args.device, seed=seed, progress=False) for model, arm, seed in keys]
    paths = train_or_reuse(configs, args.reuse or args.report_only, train=not args.report_only)
    runs = {k: p for k, p in zip(keys, paths) if p is not None}  # (model, arm, seed) → predictions path

    stage("AP50 by scene (Table I layout), mean ± std over seeds; errors by scene")
    sample_of = {im["id"]: im.get("sample_id") for im in json.loads(gt_path.read_text())["images"]}
    predictions = {key: [{**r, "sample_id": sample_of.get(r["image_id"], r.get("sample_id"))} for r in read_results(p)]
                   for key, p in runs.items()}  # this ingest's sample ids (a reused run has an older ingest's)
    per_run = {key: scene_ap50(gt_path, p, groups) for key, p in predictions.items()}
    rows, differences = table_rows(per_run, models, arms, seeds, groups)
    land = land_masks(root / TRUTH_FILE, test_numbers(dataset, gt_path, groups.get("inshore", []))) \
        if has_truth else None
    threshold = None if args.score_threshold == "f1" else float(args.score_threshold)
    errors = error_rows(gt_path, predictions, models, arms, seeds, groups, threshold, land)

    # seed-0 predictions of every model and arm into FiftyOne (fields predictions_<model>_<arm>) for the App
    evaluation = evaluate_dataset(
        dataset, {f"{m} {a}": predictions[(m, a, seeds[0])] for m in models for a in arms
                  if (m, a, seeds[0]) in predictions},
        split="test", scene_field=scene_field, out_dir=out / "evaluate")
    columns = (["model", "arm", "seeds"] + [c for s in SCENES for c in (f"AP50 {s}", f"± {s}")]
               + [f"{PUBLISHED_PREFIX} AP50 {s}" for s in SCENES])
    diff_columns = (["model", "arm", "seeds"] + [c for s in SCENES for c in (f"Δ AP50 {s}", f"± {s}")]
                    + [f"{PUBLISHED_PREFIX} Δ inshore"])
    error_columns = ["model", "arm", "seeds", "score ≥"] + [c for c in ERROR_COLUMNS if any(c in r for r in errors)]
    replication_rows = [{"arm": arm, "replicated by": ARMS[arm] or "–", "counted by": count_by,
                         **{f"{w} {s}": replication[arm][w].get(s, 0) for w in ("before", "after")
                            for s in ("inshore", "offshore")},
                         "factor inshore": replication[arm]["factor"].get("inshore"),
                         "factor offshore": replication[arm]["factor"].get("offshore")} for arm in arms]
    settings = {"dataset": str(root), "synthetic": synthetic, "size": level, "seeds": seeds, "arms": arms,
                "images": len(dataset), "detector_preset": sizes.preset,
                "detector_iterations": iterations, "detector_epochs": args.epochs,
                "budget": effective_budget(args.budget, iterations),
                "detector_iterations_per_arm": steps,
                "backbone": args.backbone or ("tiny" if sizes.preset == "cpu" else "resnet50"),
                "gan_image_size": sizes.gan_image_size,
                "test_scenes_from": "official test_inshore/test_offshore" if scene_field != "scene" else "k-means tags",
                "scene_accuracy_vs_truth": summary.get("scene_accuracy_vs_truth"),
                "scene_counts_kmeans": summary["scene_counts"],
                "train_images_per_arm": replication, "error_score_threshold": args.score_threshold}
    notes = [f"Scene counts (k-means): {summary['scene_counts']}.",
             f"Each cell: mean ± sample std over {len(seeds)} training seed(s) {seeds} (scene tags and exports from "
             f"seed {args.seed}); Δ = arm − baseline, paired by seed. Arms: baseline = no replication; bslm = "
             "inshore training images replicated by the k-means scene tags (the paper's method); oracle = replicated "
             "by the generator's inshore/offshore truth (synthetic data only; no published counterpart)."]
    if "scene_accuracy_vs_truth" in summary:
        notes.append(f"Scene tags agree with the generator's inshore/offshore truth on "
                     f"{100 * summary['scene_accuracy_vs_truth']:.1f}% of images.")
    notes.append("AP50 = pycocotools AP at IoU 0.5 (the paper's “mAP”), in %.")
    if args.budget == "epochs":
        notes.append(f"Budget epochs: each arm trains {iterations} steps × its training images (with replicas) / the "
                     f"baseline's, as 12 epochs over a replicated set do in the paper: {steps}. steps_control = no "
                     "replication at the bslm arm's steps: bslm − steps_control is replication at equal compute, "
                     "steps_control − baseline the extra steps alone.")
    artifacts = {**({"balance report": report.png_path} if report is not None else {}), "scene map": viz_png,
                 "evaluation tables (seed %d)" % seeds[0]: evaluation["markdown"],
                 **{f"training curves {m} {a} seed {s}": Path(p).parent / "metrics.png"
                    for (m, a, s), p in runs.items()}}
    results = write_results(
        out, "BSLM on SSDD — AP50 by scene: no replication, replication by scene tags (BSLM), by truth (oracle)",
        columns, rows, settings, notes,
        extra_tables={"Paired differences (AP50 points, by seed)": (diff_columns, differences),
                      f"Training images per arm (by {count_by}; after = with replicas)":
                          (list(replication_rows[0]), replication_rows),
                      "Test errors by scene at IoU 0.5 (mean over seeds), detections scoring ≥ " + (
                          "each run's best-F1 score on all test images" if threshold is None else str(threshold)):
                          (error_columns, errors)},
        artifacts=artifacts)
    summary.update({"results": results, "rows": rows, "differences": differences, "errors": errors,
                    "replication": replication, "seconds": stage.done(), "out": out})
    return summary


def training_scenes(dataset, run_key: str | None, scene_field: str) -> dict:
    """Training images per scene of ``scene_field`` before and after replication run ``run_key`` (None: none),
    and the replication factor (after / before) per scene."""
    from collections import Counter

    from fiftyone import ViewField as F

    from sardata.evaluate import scene_of
    from sardata.views.balance import replication_counts, resolve_label_path

    train = dataset.match(F("split") == "train")
    counts = replication_counts(train, run_key)
    before, after = Counter(), Counter()
    for sample_id, value in zip(train.values("id"), train.values(resolve_label_path(train, scene_field))):
        scene = scene_of(value) or "untagged"
        before[scene] += 1
        after[scene] += counts[sample_id]
    return {"by": scene_field, "before": dict(sorted(before.items())), "after": dict(sorted(after.items())),
            "factor": {s: round(after[s] / before[s], 2) for s in sorted(before)}}


def arm_iterations(iterations: int | None, replication: dict, arms: list[str], budget: str) -> dict:
    """Optimiser steps of each arm. ``steps``: all ``iterations``. ``epochs``: ``iterations`` × the arm's training
    images with replicas / the baseline's (rounded), so every arm makes the same passes over its own set; an arm of
    :data:`STEP_CONTROLS` takes the steps of the arm it controls for. ``iterations`` None (training by epochs): None."""
    if iterations is None or budget == "steps":
        return {arm: iterations for arm in arms}
    images = {arm: sum(replication[arm]["after"].values()) for arm in arms}
    steps = {arm: int(round(iterations * images[arm] / images["baseline"])) for arm in arms}
    steps.update({arm: steps[of] for arm, of in STEP_CONTROLS.items() if arm in arms})
    return steps


def effective_budget(budget: str, iterations: int | None) -> str:
    """The budget the arms really train under: without an iteration budget the detectors train by epochs (the
    ``paper`` preset), whatever ``--budget`` says, so a replicated arm takes more steps."""
    return "epochs" if iterations is None else budget


def run_name(model: str, arm: str, seed: int, steps: int | None, iterations: int | None) -> str:
    """A detector run's directory: ``{model}_{arm}_seed{seed}``, with ``_it{steps}`` when the arm trains other steps
    than the budget (``--budget epochs``), so that runs of the two budgets never overwrite each other."""
    suffix = "" if steps == iterations else f"_it{steps}"
    return f"{model}_{arm}_seed{seed}{suffix}"


def check_same_test_split(reference: Path, others: list[Path]) -> None:
    """Every arm's export must hold the same test images under the same ids (one ground truth for all)."""
    def key(path):
        return [(im["id"], im.get("sample_id")) for im in json.loads(Path(path).read_text())["images"]]

    expected = key(reference)
    for path in others:
        if key(path) != expected:
            raise RuntimeError(f"{path}: test images differ from {reference}; the arms must share one test split")


def train_or_reuse(configs: list, reuse: bool, at_once: int = 2, train: bool = True) -> list[Path | None]:
    """Trains the configs ``at_once`` at a time (each finished run is recorded with
    :func:`sardata.checkpoints.mark_finished`, so an interrupted run loses at most one group); with ``reuse``, a run
    that finished with the same options on the same data (:func:`sardata.checkpoints.run_fingerprint`) is kept.
    Returns each config's predictions file (``train=False``: None for each run not finished before)."""
    from sardata.checkpoints import finished_run, mark_finished, run_fingerprint
    from sardata.train.detector import train_concurrently

    fingerprints = [run_fingerprint(c) for c in configs]
    records = [finished_run(c.out_dir, fp) if reuse else None for c, fp in zip(configs, fingerprints)]
    records = [r if r and Path(r.get("predictions", "")).is_file() else None for r in records]
    todo = [i for i, record in enumerate(records) if record is None]
    if reuse and len(todo) < len(configs):
        console.print(f"reusing {len(configs) - len(todo)} finished run(s) of identical config and data")
    if not train:
        console.print(f"report only: {len(configs) - len(todo)} of {len(configs)} detector runs finished")
        return [None if record is None else Path(record["predictions"]) for record in records]
    for start in range(0, len(todo), at_once):
        group = todo[start:start + at_once]
        for i, result in zip(group, train_concurrently([configs[i] for i in group])):
            records[i] = {"predictions": str(result["predictions"])}
            mark_finished(configs[i].out_dir, fingerprints[i], **records[i])
        console.print(f"trained {min(start + at_once, len(todo))}/{len(todo)} detector runs")
    return [Path(record["predictions"]) for record in records]


def table_rows(per_run: dict, models, arms, seeds, groups) -> tuple[list[dict], list[dict]]:
    """Table I rows (model × arm, mean ± std over seeds, published numbers beside) and arm − baseline rows (and
    bslm − steps_control: replication at equal steps)."""
    rows, differences = [], []
    for model in models:
        for arm in arms:
            published = PUBLISHED_BSLM[model].get(PUBLISHED_ARM.get(arm))
            row = {"model": model, "arm": arm}
            ran = [seed for seed in seeds if (model, arm, seed) in per_run]
            row["seeds"] = ran  # the training seeds that ran (a cell with none is "not run")
            for scene in SCENES:
                values = [per_run[(model, arm, seed)][scene] for seed in ran]
                row[f"AP50 {scene}"], row[f"± {scene}"] = mean_std(values)
                row[f"seeds {scene}"] = values
            row.update({f"{PUBLISHED_PREFIX} AP50 {s}": (published[i] if published else None)
                        for i, s in enumerate(SCENES)})
            row["n_test_images"] = {s: len(groups.get(s, ())) for s in SCENES}
            rows.append(row)
        pairs = [(arm, "baseline") for arm in arms[1:]]
        pairs += [(of, arm) for arm, of in STEP_CONTROLS.items() if arm in arms and of in arms]
        for arm, reference in pairs:
            both = [s for s in seeds if (model, arm, s) in per_run and (model, reference, s) in per_run]
            diff = {"model": model, "arm": f"{arm} − {reference}", "seeds": both}
            for scene in SCENES:
                paired = [None if None in (per_run[(model, arm, s)][scene], per_run[(model, reference, s)][scene])
                          else round(per_run[(model, arm, s)][scene] - per_run[(model, reference, s)][scene], 2)
                          for s in both]
                diff[f"Δ AP50 {scene}"], diff[f"± {scene}"] = mean_std(paired)
                diff[f"seeds {scene}"] = paired
            published = PUBLISHED_BSLM[model]
            diff[f"{PUBLISHED_PREFIX} Δ inshore"] = (round(published["replication"][1] - published["baseline"][1], 2)
                                                      if (arm, reference) == ("bslm", "baseline") else None)
            differences.append(diff)
    return rows, differences


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


def test_numbers(dataset, gt_path: Path, image_ids) -> dict[int, int]:
    """``{COCO image id: SSDD image number}`` of the given test images (the generator's image ``000123`` is 123)."""
    by_sample = dict(zip(dataset.values("id"), dataset.values("image_id")))
    wanted = set(image_ids)
    return {im["id"]: int(by_sample[im["sample_id"]]) for im in json.loads(Path(gt_path).read_text())["images"]
            if im["id"] in wanted and str(by_sample.get(im.get("sample_id"), "")).isdigit()}


def land_masks(truth_path: Path, numbers: dict[int, int]) -> dict:
    """``{COCO image id: land mask}`` (piers included) of synthetic inshore images, rendered again.

    The truth file stores no masks, but each synthetic image is a pure function of (seed, image number, preset,
    coastline masks): the scene is rendered again while the land mask is read where the generator hands it to its
    land-scatterer step (``_piers`` then marks the piers in the same array). The re-rendered ships must equal the
    truth file's, so a changed generator fails here instead of giving wrong masks.
    """
    from sardata.synth import ssdd, ssdd_scene

    truth = json.loads(Path(truth_path).read_text())
    coastlines = ssdd_scene.load_land_masks(truth["land_masks"]) if truth.get("land_masks") else None
    seen: dict = {}
    original = ssdd_scene._land_scatterers

    def keep_land(rng, refl, land, *rest):
        seen["land"] = land
        return original(rng, refl, land, *rest)

    masks = {}
    ssdd_scene._land_scatterers = keep_land
    try:
        for coco_id, number in numbers.items():
            seen.clear()
            rng, inshore = ssdd.draw_scene(truth["seed"], number)
            _, info = ssdd.render_image(rng, inshore, truth.get("preset", "default"), coastlines)
            if info["ships"] != truth["images"][f"{number:06d}"]["ships"]:
                raise RuntimeError(f"{truth_path}: image {number:06d} renders differently now (generator changed "
                                   "since the data was written); cannot recover its land mask")
            if "land" in seen:
                masks[coco_id] = seen["land"]
    finally:
        ssdd_scene._land_scatterers = original
    return masks


def error_rows(gt_path: Path, predictions: dict, models, arms, seeds, groups, threshold: float | None,
               land: dict | None) -> list[dict]:
    """Per model × arm, mean over seeds: ships, TP, FN, FP by scene at IoU 0.5 among detections scoring ≥
    ``threshold`` (None: each run's best-F1 score over all test images — an operating point read off the test set
    itself, to describe the errors, never to score a model); inshore misses within :data:`NEAR_LAND` px of land and
    inshore false alarms centred on land when the land masks are known."""
    from collections import defaultdict

    coco = json.loads(Path(gt_path).read_text())
    gts = defaultdict(list)
    for a in coco["annotations"]:
        gts[a["image_id"]].append(a["bbox"])
    scene_of_image = {i: s for s in ("inshore", "offshore") for i in groups.get(s, [])}
    rows = []
    for model in models:
        for arm in arms:
            ran = [seed for seed in seeds if (model, arm, seed) in predictions]
            if not ran:
                continue
            totals: dict = {"score ≥": 0.0}
            for seed in ran:
                results = predictions[(model, arm, seed)]
                score = best_f1_score(gts, results, groups["all"]) if threshold is None else threshold
                totals["score ≥"] += score
                for k, v in count_errors(gts, results, groups["all"], scene_of_image, score, land).items():
                    totals[k] = totals.get(k, 0) + v
            rows.append({"model": model, "arm": arm, "seeds": ran,
                         **{k: round(v / len(ran), 3 if k == "score ≥" else 1) for k, v in totals.items()}})
    return rows


def best_f1_score(gts: dict, results: list[dict], image_ids) -> float:
    """The score threshold of the best F1 (IoU 0.5) over ``image_ids``. Greedy matching by descending score is
    prefix-stable, so one matching of all detections gives every threshold's TP count."""
    import numpy as np

    from sardata.metrics import match_greedy

    wanted, flags = set(image_ids), []
    by_image: dict = {}
    for r in results:
        if r["image_id"] in wanted:
            by_image.setdefault(r["image_id"], []).append((r["score"], r["bbox"]))
    for image_id, dets in by_image.items():
        _, hits = match_greedy(gts.get(image_id, []), dets)
        flags.extend(zip(sorted((d[0] for d in dets), reverse=True), hits))
    if not flags:
        return 1.0
    flags.sort(key=lambda f: -f[0])
    tp = np.cumsum([f[1] for f in flags])
    n_gt = sum(len(gts.get(i, [])) for i in wanted)
    f1 = 2 * tp / (np.arange(1, len(flags) + 1) + n_gt)
    return float(flags[int(np.argmax(f1))][0])


def count_errors(gts: dict, results: list[dict], image_ids, scene_of_image: dict, threshold: float,
                 land: dict | None) -> dict[str, int]:
    """Greedy matching by score (each ship matched once, IoU ≥ 0.5), as COCO's evaluation does at IoU 0.5."""
    import numpy as np

    from sardata.metrics import match_greedy

    detections: dict = {}
    for r in results:
        if r["score"] >= threshold:
            detections.setdefault(r["image_id"], []).append((r["score"], r["bbox"]))
    counts = {c: 0 for c in ERROR_COLUMNS if land is not None or "land" not in c}
    for image_id in image_ids:
        gt = np.asarray(gts.get(image_id, []), dtype=float).reshape(-1, 4)
        dets = sorted(detections.get(image_id, []), key=lambda d: -d[0])
        matched, hits = match_greedy(gt, dets)
        false_alarms = [box for (_, box), hit in zip(dets, hits) if not hit]
        for scene in ("all", scene_of_image.get(image_id)):
            if scene is None:
                continue
            counts[f"ships {scene}"] += len(gt)
            counts[f"TP {scene}"] += int(matched.sum())
            counts[f"FN {scene}"] += int((~matched).sum())
            counts[f"FP {scene}"] += len(false_alarms)
        mask = (land or {}).get(image_id)
        if mask is not None and scene_of_image.get(image_id) == "inshore":
            counts["FN inshore near land"] += sum(_land_in(mask, b, NEAR_LAND) for b in gt[~matched])
            counts["FP inshore on land"] += sum(_land_in(mask, b, None) for b in false_alarms)
    return counts


def _land_in(mask, box, margin: int | None) -> bool:
    """``margin`` None: the box centre is on land; else any land within the box grown by ``margin`` px."""
    h, w = mask.shape
    x, y, bw, bh = (float(v) for v in box)
    if margin is None:
        cx, cy = int(min(max(x + bw / 2, 0), w - 1)), int(min(max(y + bh / 2, 0), h - 1))
        return bool(mask[cy, cx])
    x0, y0 = max(int(x) - margin, 0), max(int(y) - margin, 0)
    x1, y1 = min(int(x + bw) + margin + 1, w), min(int(y + bh) + margin + 1, h)
    return bool(mask[y0:y1, x0:x1].any())


def mean_std(values) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (``ddof=1``; 0 for one value), rounded to 2 decimals; None if any is."""
    import statistics

    if not values or any(v is None for v in values):
        return None, None
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return round(statistics.fmean(values), 2), round(std, 2)


if __name__ == "__main__":
    main()

"""Detector train-step time: sardata's ``train_one_epoch`` vs a bare torchvision loop, same model and batches.

Both loops start from the same weights and see the same pre-built batches (speckle with bright rectangles), so the
ratio measures only what our loop adds (target moves, finite-loss check, per-iteration LR schedule, loss
bookkeeping). Rounds alternate ours/bare to spread machine noise; the median step time of each is reported.
Aim: ratio ≤ 1.1.

    python -m benchmarks.train [--arch faster_rcnn --backbone mobilenet_v3 --size 256 --batch 2 --steps 6]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import numpy as np
import torch


def _batches(n: int, batch: int, size: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        images, targets = [], []
        for _ in range(batch):
            image = rng.gamma(1.0, 0.15, (size, size)).astype(np.float32)
            boxes = []
            for _ in range(3):
                w, h = rng.integers(size // 16, size // 6, 2)
                x, y = rng.integers(0, size - w), rng.integers(0, size - h)
                image[y:y + h, x:x + w] = 0.9
                boxes.append([x, y, x + w, y + h])
            images.append(torch.from_numpy(np.clip(image, 0, 1)).expand(3, -1, -1).contiguous())
            targets.append({"boxes": torch.tensor(boxes, dtype=torch.float32),
                            "labels": torch.ones(len(boxes), dtype=torch.int64), "image_id": 0})
        out.append((tuple(images), tuple(targets)))
    return out


def _bare_loop(model, optimizer, batches) -> None:
    """What a torchvision tutorial writes: forward, sum the losses, backward, step."""
    model.train()
    for images, targets in batches:
        loss = sum(model(list(images), [{k: v for k, v in t.items()} for t in targets]).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def run(arch: str = "faster_rcnn", backbone: str = "mobilenet_v3", size: int = 256, batch: int = 2,
        steps: int = 6, rounds: int = 3, threads: int | None = 1) -> dict:
    """Median step times of both loops and their ratio. ``threads`` (1): intra-op threads for both; one thread keeps
    the figure stable on a shared machine, where two OpenMP threads per process spin against other processes."""
    from sardata.train.detection_models import build_detector
    from sardata.train.engine import train_one_epoch, warmup_step_lambda

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    device = torch.device("cpu")
    base = build_detector(arch, backbone, num_classes=2, image_size=size)
    batches = _batches(steps, batch, size)
    ours_model, bare_model = copy.deepcopy(base), copy.deepcopy(base)
    ours_opt = torch.optim.SGD([p for p in ours_model.parameters() if p.requires_grad], lr=0.005, momentum=0.9,
                               weight_decay=1e-3)
    bare_opt = torch.optim.SGD([p for p in bare_model.parameters() if p.requires_grad], lr=0.005, momentum=0.9,
                               weight_decay=1e-3)
    # No warm-up inside the measured window, so both models follow the same trajectory and do the same work.
    scheduler = torch.optim.lr_scheduler.LambdaLR(ours_opt, warmup_step_lambda(steps, 0, 0.001, (1000,), 0.1))
    # Warm-up (allocator, first-call overheads) for both.
    train_one_epoch(ours_model, ours_opt, batches[:1], device, 0, scheduler, progress=False)
    _bare_loop(bare_model, bare_opt, batches[:1])
    # CPU time of this process is the primary figure: wall time on a shared machine measures the neighbours.
    times = {"ours": {"cpu": [], "wall": []}, "bare": {"cpu": [], "wall": []}}
    for round_index in range(rounds):
        order = ("ours", "bare") if round_index % 2 == 0 else ("bare", "ours")
        for which in order:
            cpu, wall = time.process_time(), time.perf_counter()
            if which == "ours":
                train_one_epoch(ours_model, ours_opt, batches, device, round_index, scheduler, progress=False)
            else:
                _bare_loop(bare_model, bare_opt, batches)
            times[which]["cpu"].append((time.process_time() - cpu) / steps)
            times[which]["wall"].append((time.perf_counter() - wall) / steps)
    med = {w: {k: statistics.median(v) for k, v in t.items()} for w, t in times.items()}
    return {
        "model": f"{arch}/{backbone}",
        "image_size": size,
        "batch": batch,
        "threads": torch.get_num_threads(),
        "ours_step_cpu_s": round(med["ours"]["cpu"], 4),
        "torchvision_step_cpu_s": round(med["bare"]["cpu"], 4),
        "ratio": round(med["ours"]["cpu"] / med["bare"]["cpu"], 3),
        "ours_step_wall_s": round(med["ours"]["wall"], 4),
        "torchvision_step_wall_s": round(med["bare"]["wall"], 4),
        "wall_ratio": round(med["ours"]["wall"] / med["bare"]["wall"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="faster_rcnn")
    parser.add_argument("--backbone", default="mobilenet_v3")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)")
    args = parser.parse_args()
    print(json.dumps(run(args.arch, args.backbone, args.size, args.batch, args.steps, args.rounds,
                         args.threads or None), indent=2))


if __name__ == "__main__":
    main()

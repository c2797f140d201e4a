"""Throughput of ``extract_features`` against the bare model forward on the same, pre-loaded batches.

``extract_features`` adds image decoding (in DataLoader workers), device transfer, cache shards and result assembly
around the forward pass; the ratio of the two throughputs says how much of that is hidden. Aim: ≥ 0.9.

    .venv/bin/python benchmarks/embed.py [--images 128] [--batch-size 32] [--models dcgan,cc] [--repeats 3] [--threads N]
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
import torch  # noqa: E402
from PIL import Image  # noqa: E402


def _write_images(folder: Path, n: int, size: int = 256, seed: int = 0) -> list[str]:
    """Gamma-speckled 8-bit PNGs, like the App's display images of sea clutter."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        img = (rng.gamma(2.0, 0.12, (size, size)) * 255).clip(0, 255).astype(np.uint8)
        path = folder / f"chip_{i:05d}.png"
        Image.fromarray(img).save(path)
        paths.append(str(path))
    return paths


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the DataLoader workers)."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _bare_forward(embedder, batches: list[torch.Tensor], device: torch.device) -> tuple[float, float]:
    """(wall, CPU) seconds for the model alone on batches already in the model's input range and on its device."""
    embedder.to(device).eval()
    batches = [b.to(device) for b in batches]
    if device.type == "cuda":
        torch.cuda.synchronize()
    started, cpu = time.perf_counter(), _cpu_seconds()
    with torch.inference_mode():
        for images in batches:
            embedder(images)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started, _cpu_seconds() - cpu


def run(
    images: int = 128,
    batch_size: int = 32,
    models: tuple[str, ...] = ("dcgan", "cc"),
    device: str | None = None,
    num_workers: int | None = None,
    repeats: int = 3,
) -> dict:
    """Measures images/s of ``extract_features`` and of the bare forward, per model; returns a dict of results."""
    from sardata.embed.data import load_gray, to_model_range
    from sardata.embed.extract import extract_features, load_embedder
    from sardata.runtime import resolve_device

    device_t = resolve_device(device)
    results: dict = {"images": images, "batch_size": batch_size, "device": str(device_t),
                     "torch_threads": torch.get_num_threads(), "repeats": repeats, "models": {}}
    with tempfile.TemporaryDirectory(prefix="sardata-bench-embed-") as tmp:
        paths = _write_images(Path(tmp), images)
        for model in models:
            embedder, image_size, _ = load_embedder(model, None, allow_random_init=True)
            batches = [
                to_model_range(torch.stack([load_gray(p, image_size) for p in paths[i : i + batch_size]]))
                for i in range(0, len(paths), batch_size)
            ]
            _bare_forward(embedder, batches[:1], device_t)  # warm-up (allocator, kernels)
            # Alternate the two and keep the best of each: on a shared machine, other load only ever adds time.
            bare_times, full_times = [], []
            for rep in range(repeats):
                bare_times.append(_bare_forward(embedder, batches, device_t))
                cache = Path(tmp) / f"cache-{model}-{rep}"
                started, cpu = time.perf_counter(), _cpu_seconds()
                feats = extract_features(paths, model, allow_random_init=True, batch_size=batch_size,
                                         num_workers=num_workers, device=device, cache_dir=cache, progress=False)
                full_times.append((time.perf_counter() - started, _cpu_seconds() - cpu))
            bare, full = min(t[0] for t in bare_times), min(t[0] for t in full_times)
            bare_cpu, full_cpu = min(t[1] for t in bare_times), min(t[1] for t in full_times)
            started = time.perf_counter()
            extract_features(paths, model, allow_random_init=True, batch_size=batch_size, num_workers=num_workers,
                             device=device, cache_dir=cache, progress=False)
            cached = time.perf_counter() - started
            results["models"][model] = {
                "feature_dim": int(feats.features.shape[1]),
                "bare_images_per_s": round(images / bare, 2),
                "extract_images_per_s": round(images / full, 2),
                "ratio": round(bare / full, 3),
                # CPU seconds (workers included): less sensitive than wall time to other load on the machine.
                "cpu_ratio": round(bare_cpu / full_cpu, 3),
                "cached_rerun_s": round(cached, 3),
            }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--models", default="dcgan,cc")
    parser.add_argument("--device", default=None)
    parser.add_argument("--num-workers", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results = run(args.images, args.batch_size, tuple(args.models.split(",")), args.device, args.num_workers,
                  args.repeats)
    print(json.dumps(results, indent=2))
    for model, r in results["models"].items():
        print(f"{model}: extract {r['extract_images_per_s']} img/s vs bare forward {r['bare_images_per_s']} img/s "
              f"→ ratio {r['ratio']:.2f} (aim ≥ 0.9; CPU-time ratio {r['cpu_ratio']:.2f}); "
              f"cached rerun {r['cached_rerun_s']} s")


if __name__ == "__main__":
    main()

"""Validate benchmark: ``sardata validate`` vs ``sardata ingest`` on the same full-size synthetic SSDD (1160 images).

Run ``python -m benchmarks.validate`` (``--root DIR`` reuses an existing synthetic Official-SSDD; ``--repeats N``).
Both read every image once: ingest (all labels: boxes, rotated boxes, polygons, and ``sar_stats``) builds the
dataset; validate then runs every check on it (geometry, distribution + histograms, pixel pass with content hashes
and signatures, exact and near duplicates, group leakage) and saves its run and views. Target: validate takes less
time than ingest (ratio < 1). Medians over ``repeats``; the page cache is warm for both.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")


def run(root: str | os.PathLike | None = None, repeats: int = 3) -> dict:
    """Runs the benchmark; returns seconds (wall and this process's CPU) and the validate / ingest ratio."""
    import sardata
    import sardata.validate as sv
    from sardata.synth import ssdd as synth_ssdd

    tmp = None
    if root is None:
        tmp = Path(tempfile.mkdtemp(prefix="sardata-bench-"))
        root = synth_ssdd.generate(tmp, full=True)
    root = Path(root)
    walls: dict[str, list[float]] = {"ingest": [], "validate": []}
    cpus: dict[str, list[float]] = {"ingest": [], "validate": []}
    try:
        for path in root.rglob("*"):  # warm the page cache
            if path.is_file():
                path.read_bytes()
        for i in range(max(1, repeats)):
            name = f"bench-validate-{os.getpid()}-{i}"
            start, cpu = time.perf_counter(), time.process_time()
            dataset = sardata.load("ssdd", root, name=name, overwrite=True, progress=False)
            walls["ingest"].append(time.perf_counter() - start)
            cpus["ingest"].append(time.process_time() - cpu)
            start, cpu = time.perf_counter(), time.process_time()
            report = sv.validate(dataset, progress=False)
            walls["validate"].append(time.perf_counter() - start)
            cpus["validate"].append(time.process_time() - cpu)
            images, kinds = len(dataset), report.counts()
            sv.delete_validation_run(dataset, report.run_key)
            dataset.delete()
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    wall = {k: statistics.median(v) for k, v in walls.items()}
    cpu = {k: statistics.median(v) for k, v in cpus.items()}
    return {
        "images": images,
        "repeats": max(1, repeats),
        "wall_s": {k: round(v, 2) for k, v in wall.items()},
        "cpu_s": {k: round(v, 2) for k, v in cpu.items()},
        "validate_over_ingest_wall": round(wall["validate"] / wall["ingest"], 3),
        "validate_over_ingest_cpu": round(cpu["validate"] / cpu["ingest"], 3),
        "finding_kinds": kinds,
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="existing synthetic Official-SSDD root (default: generate a full one)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    result = run(args.root, repeats=args.repeats)
    print(f"SSDD validate vs ingest, {result['images']} images (median of {result['repeats']}; {result['cpus']} CPUs)")
    for name in ("ingest", "validate"):
        print(f"  {name:9s} wall {result['wall_s'][name]:7.2f} s   cpu {result['cpu_s'][name]:7.2f} s")
    print(f"  validate / ingest: wall {result['validate_over_ingest_wall']:.2f}x, "
          f"cpu {result['validate_over_ingest_cpu']:.2f}x (target < 1)")
    print(f"  findings on the clean synthetic set: {result['finding_kinds']}")
    return result


if __name__ == "__main__":
    main()

"""Ingest benchmark: FiftyOne's own VOC importer vs sardata's SSDD importer on a full-size synthetic SSDD.

Run ``python -m benchmarks.ingest`` (``--root DIR`` reuses an existing synthetic Official-SSDD; ``--repeats N``).
Both importers read ``BBox_SSDD/voc_style`` train + test (1160 images) into a non-persistent dataset:

- ``fiftyone``: ``fo.types.VOCDetectionDataset`` with ``data_path=JPEGImages_<split>``,
  ``labels_path=Annotations_<split>`` for the two splits. It parses the XML and takes the image size from it; it does
  not decode pixels.
- ``sardata``: :class:`sardata.datasets.ssdd.SSDDImporter`, which also decodes every JPEG (size check, speckle
  statistics ``sar_stats``) and, in the default mode, reads the RBox and PSeg variants into ``rboxes``/``polygons``.

The page cache is warmed first and the runs alternate, best of ``repeats`` per variant. The ratio is sardata time /
FiftyOne time (≤ 1.0 means sardata is not slower). The machine is shared, so figures vary by tens of percent.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")


def _warm_cache(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file() and "voc_style" in path.parts:
            path.read_bytes()


def _time_fiftyone(voc: Path) -> float:
    import fiftyone as fo

    start = time.perf_counter()
    dataset = fo.Dataset()
    for split in ("train", "test"):
        dataset.add_dir(
            data_path=str(voc / f"JPEGImages_{split}"),
            labels_path=str(voc / f"Annotations_{split}"),
            dataset_type=fo.types.VOCDetectionDataset,
            tags=[split],
            progress=False,
        )
    elapsed = time.perf_counter() - start
    count = len(dataset)
    dataset.delete()
    return elapsed, count


def _time_sardata(root: Path, **options) -> tuple[float, int]:
    import fiftyone as fo

    from sardata.datasets.ssdd import SSDDImporter

    start = time.perf_counter()
    dataset = fo.Dataset()
    dataset.add_importer(SSDDImporter(root, **options), progress=False)
    elapsed = time.perf_counter() - start
    count = len(dataset)
    dataset.delete()
    return elapsed, count


def run(root: str | os.PathLike | None = None, repeats: int = 2) -> dict:
    """Runs the benchmark and returns its figures (seconds, sample counts, ratios).

    Args:
        root (None): an existing synthetic Official-SSDD root; by default a full-size one (1160 images) is generated
            in a temporary directory and removed afterwards.
        repeats (2): runs per variant; the best is reported.
    """
    from sardata.synth import ssdd as synth_ssdd

    tmp = None
    if root is None:
        tmp = Path(tempfile.mkdtemp(prefix="sardata-bench-"))
        start = time.perf_counter()
        root = synth_ssdd.generate(tmp, full=True)
        generate_s = time.perf_counter() - start
    else:
        root, generate_s = Path(root), None
    try:
        voc = Path(root) / "BBox_SSDD" / "voc_style"
        _warm_cache(Path(root))
        variants = {
            "fiftyone_voc": lambda: _time_fiftyone(voc),
            "sardata_bbox_stats": lambda: _time_sardata(root, load_rboxes=False, load_polygons=False),
            "sardata_all_labels_stats": lambda: _time_sardata(root),
            "sardata_bbox_no_stats": lambda: _time_sardata(root, load_rboxes=False, load_polygons=False, compute_stats=False),
        }
        times: dict[str, float] = {k: float("inf") for k in variants}
        counts: dict[str, int] = {}
        for _ in range(max(1, repeats)):
            for name, fn in variants.items():
                elapsed, count = fn()
                times[name] = min(times[name], elapsed)
                counts[name] = count
        base = times["fiftyone_voc"]
        result = {
            "images": counts["fiftyone_voc"],
            "generate_s": generate_s,
            "seconds": {k: round(v, 3) for k, v in times.items()},
            "samples": counts,
            "ratio_vs_fiftyone": {k: round(v / base, 3) for k, v in times.items() if k != "fiftyone_voc"},
            "cpus": os.cpu_count(),
        }
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="existing synthetic Official-SSDD root (default: generate a full one)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    result = run(args.root, repeats=args.repeats)
    print(f"SSDD ingest, {result['images']} images (best of {args.repeats}; {result['cpus']} CPUs)")
    if result["generate_s"] is not None:
        print(f"  synthetic data generated in {result['generate_s']:.1f} s")
    for name, seconds in result["seconds"].items():
        ratio = result["ratio_vs_fiftyone"].get(name)
        suffix = f"  ratio {ratio:.2f}x vs fiftyone" if ratio is not None else ""
        print(f"  {name:28s} {seconds:7.2f} s  ({result['samples'][name]} samples){suffix}")
    return result


if __name__ == "__main__":
    main()

"""COCO and YOLO export against FiftyOne's built-in exporters on the same view, and the disk cost of replication.

Both sides copy the same images and write the same boxes: ``exporters.export_view(view, dir, "coco")`` vs
``view.export(dataset_type=fo.types.COCODetectionDataset)``, and ``"yolo"`` vs ``fo.types.YOLOv5Dataset`` (one call
per split, as FiftyOne needs). Ours also hashes every file for the manifest and renames a temporary directory into
place. Aim: time ratio ≤ 1.0. Then a 2× replicated export (every training image twice, BSLM-style) against the
unreplicated one: hardlinked replicas should cost ≈ 1× the disk (only the label files grow).

    .venv/bin/python benchmarks/export.py [--images 400] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def _make_view(folder: Path, n: int, size: int = 256, seed: int = 0):
    """An SSDD-like dataset: speckled PNGs with 1–4 ship boxes, 80/20 train/test."""
    import fiftyone as fo

    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        path = folder / f"{i:06d}.png"
        Image.fromarray((rng.gamma(1.0, 60, (size, size))).clip(0, 255).astype(np.uint8)).save(path)
        dets = [fo.Detection(label="ship", bounding_box=[*rng.uniform(0, 0.8, 2), *rng.uniform(0.03, 0.2, 2)])
                for _ in range(int(rng.integers(1, 5)))]
        samples.append(fo.Sample(filepath=str(path), split="test" if i % 5 == 0 else "train",
                                 ground_truth=fo.Detections(detections=dets)))
    dataset = fo.Dataset()
    dataset.add_samples(samples, progress=False)
    dataset.compute_metadata(progress=False)
    return dataset


def _du(path: Path) -> int:
    """Bytes on disk under ``path``, counting each hardlinked inode once (like ``du``)."""
    seen, total = set(), 0
    for p in path.rglob("*"):
        st = p.lstat()
        if p.is_file() and (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


def _time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def run(images: int = 400, repeats: int = 2) -> dict:
    import fiftyone as fo

    from exporters import export_view
    from sardata.views.balance import BalanceRun, store_run

    tmp = Path(tempfile.mkdtemp(prefix="sardata-bench-export-"))
    dataset = None
    try:
        (tmp / "src").mkdir()
        dataset = _make_view(tmp / "src", images)
        view = dataset.view()
        splits = ["train", "test"]
        counter = iter(range(10**6))

        def ours(fmt):
            return lambda: export_view(view, tmp / f"ours-{fmt}-{next(counter)}", fmt)

        def fo_coco():
            out = tmp / f"fo-coco-{next(counter)}"
            for split in splits:
                view.select_by("split", [split]).export(
                    dataset_type=fo.types.COCODetectionDataset, label_field="ground_truth",
                    data_path=str(out / "images" / split), labels_path=str(out / "annotations" / f"{split}.json"),
                    export_media=True, progress=False)

        def fo_yolo():
            out = tmp / f"fo-yolo-{next(counter)}"
            for split in splits:
                view.select_by("split", [split]).export(
                    export_dir=str(out), dataset_type=fo.types.YOLOv5Dataset, label_field="ground_truth",
                    split=split, classes=["ship"], progress=False)

        coco_ours, coco_fo = _time(ours("coco"), repeats), _time(fo_coco, repeats)
        yolo_ours, yolo_fo = _time(ours("yolo"), repeats), _time(fo_yolo, repeats)

        dataset.set_values("balance_x2", [2 if s == "train" else 1 for s in dataset.values("split")])
        store_run(dataset, BalanceRun(run_key="x2", by="split", mode="replicate", target=1.0, splits=["train"], seed=0))
        export_view(view, tmp / "rep1", "coco")
        export_view(view, tmp / "rep2", "coco", balance_run="x2")
        disk1, disk2 = _du(tmp / "rep1"), _du(tmp / "rep2")
        n_train = dataset.count_values("split")["train"]
        return {
            "images": images,
            "coco_ours_s": round(coco_ours, 3),
            "coco_fiftyone_s": round(coco_fo, 3),
            "coco_time_ratio": round(coco_ours / coco_fo, 3),
            "yolo_ours_s": round(yolo_ours, 3),
            "yolo_fiftyone_s": round(yolo_fo, 3),
            "yolo_time_ratio": round(yolo_ours / yolo_fo, 3),
            "replicated_images": images + n_train,
            "disk_1x_mb": round(disk1 / 2**20, 2),
            "disk_2x_mb": round(disk2 / 2**20, 2),
            "disk_ratio_2x_vs_1x": round(disk2 / disk1, 3),
        }
    finally:
        if dataset is not None:
            dataset.delete()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(run(args.images, args.repeats), indent=2))

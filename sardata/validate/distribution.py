"""Distribution: class × split × scene counts, imbalance ratios, images without labels, classes absent from a split,
and box-size / aspect-ratio histograms per class (PNG).

Readings chosen: the imbalance ratio of a split is its largest class count over its smallest non-zero one; a class
is *absent* from a split when it has labels in another split but none there (a test split without a class cannot
score it; a train split without one cannot learn it); the split field is ``split`` and the scene field ``scene``
(what ``sardata scenes`` writes) when the samples have them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from sardata.validate.findings import Finding

#: Imbalance ratio (largest / smallest class count in a split) from which a warning is raised.
IMBALANCE_WARNING = 10.0


def label_kind(samples, label_field: str) -> str:
    """``detections``, ``classification``, ``segmentation`` or ``none`` for the field's label type."""
    import fiftyone as fo

    if not samples.has_field(label_field):
        return "none"
    doc = getattr(samples.get_field(label_field), "document_type", None)
    return {fo.Detections: "detections", fo.Classification: "classification",
            fo.Segmentation: "segmentation"}.get(doc, "none")


def _optional(samples, field: str) -> list:
    return samples.values(field) if samples.has_field(field) else [None] * len(samples)


def per_sample_classes(samples, label_field: str, kind: str) -> list[list[str]]:
    """The class of every label of every sample (one list per sample, in sample order)."""
    if kind == "detections":
        return [list(labels or []) for labels in samples.values(f"{label_field}.detections.label")]
    if kind == "classification":
        return [[label] if label is not None else [] for label in samples.values(f"{label_field}.label")]
    return [[] for _ in range(len(samples))]


def check_distribution(samples, label_field: str, kind: str, split_field: str = "split", scene_field: str = "scene",
                       imbalance_warning: float = IMBALANCE_WARNING) -> tuple[dict, list[Finding]]:
    """Counts and findings: ``(distribution, findings)``."""
    ids = samples.values("id")
    splits = [s if s is not None else "(none)" for s in _optional(samples, split_field)]
    scenes = [s if s is not None else "(none)" for s in _optional(samples, scene_field)]
    classes = per_sample_classes(samples, label_field, kind)
    counts: dict = defaultdict(Counter)  # split → class → labels
    cube: Counter = Counter()  # "class|split|scene" → labels
    for split, scene, labels in zip(splits, scenes, classes):
        for label in labels:
            counts[split][label] += 1
            cube[f"{label}|{split}|{scene}"] += 1
    distribution = {
        "samples_per_split": dict(Counter(splits)),
        "samples_per_scene": dict(Counter(scenes)),
        "labels_per_split": {s: dict(c) for s, c in sorted(counts.items())},
        "labels_per_class_split_scene": dict(sorted(cube.items())),
        "imbalance_ratio": {},
    }
    findings = []
    if kind in ("detections", "classification"):
        unlabelled = [sid for sid, labels in zip(ids, classes) if not labels]
        distribution["images_without_labels"] = len(unlabelled)
        if unlabelled:
            severity = "info" if kind == "detections" else "warning"  # negatives are normal in detection
            findings.append(Finding("no_labels", severity, f"{len(unlabelled)} samples without any label "
                                    f"in {label_field}", unlabelled))
        all_classes = sorted({c for split_counts in counts.values() for c in split_counts})
        for split, split_counts in sorted(counts.items()):
            present = [n for n in split_counts.values() if n > 0]
            ratio = max(present) / min(present) if present else 1.0
            distribution["imbalance_ratio"][split] = round(ratio, 2)
            if ratio >= imbalance_warning:
                top, bottom = split_counts.most_common()[0], split_counts.most_common()[-1]
                findings.append(Finding(
                    f"class_imbalance_{split}", "warning",
                    f"split {split}: class imbalance {ratio:.1f}:1 ({top[0]} {top[1]} vs {bottom[0]} {bottom[1]})",
                    [sid for sid, s in zip(ids, splits) if s == split], details={"ratio": ratio}))
        if len(counts) > 1:
            for split in sorted(counts):
                missing = [c for c in all_classes if counts[split][c] == 0]
                if missing:
                    findings.append(Finding(
                        f"classes_absent_{split}", "warning",
                        f"split {split} has no labels of {', '.join(missing)} (present in other splits)",
                        [sid for sid, s in zip(ids, splits) if s == split], details={"classes": missing}))
    return distribution, findings


def box_statistics(samples, label_field: str) -> dict:
    """Per class: box sizes (sqrt of area, pixels) and aspect ratios (long / short side) of a Detections field."""
    widths, heights, labels, boxes = samples.values(
        ["metadata.width", "metadata.height", f"{label_field}.detections.label",
         f"{label_field}.detections.bounding_box"])
    stats: dict = defaultdict(lambda: {"size_px": [], "aspect": []})
    for width, height, labs, bbs in zip(widths, heights, labels, boxes):
        if not width or not height:
            continue
        for label, (x, y, w, h) in zip(labs or [], bbs or []):
            pw, ph = w * width, h * height
            if pw > 0 and ph > 0:
                stats[label]["size_px"].append(float(np.sqrt(pw * ph)))
                stats[label]["aspect"].append(float(max(pw, ph) / min(pw, ph)))
    return dict(stats)


def plot_box_histograms(stats: dict, out_dir: str | Path) -> list[Path]:
    """``box_sizes.png`` and ``box_aspect_ratios.png``: one histogram per class (log-spaced size bins)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401  (minor tick formatter)

    from sardata._io import save_figure

    written = []
    for key, name, xlabel in (("size_px", "box_sizes.png", "box size √(w·h) [px]"),
                              ("aspect", "box_aspect_ratios.png", "aspect ratio (long / short side)")):
        classes = [c for c in sorted(stats) if stats[c][key]]
        if not classes:
            continue
        fig, axes = plt.subplots(len(classes), 1, figsize=(6, 1.8 * len(classes) + 0.6), squeeze=False, sharex=True)
        values = np.concatenate([stats[c][key] for c in classes])
        if key == "size_px":
            bins = np.geomspace(max(values.min(), 0.5), values.max() * 1.01, 30)
        else:
            bins = np.linspace(1.0, max(values.max(), 1.5) * 1.01, 30)
        for ax, c in zip(axes[:, 0], classes):
            ax.hist(stats[c][key], bins=bins, color="#3b75af")
            ax.set_ylabel("boxes")
            ax.set_title(f"{c} (n={len(stats[c][key])}, median {np.median(stats[c][key]):.1f})", fontsize=9)
            if key == "size_px":
                ax.set_xscale("log")
                ticks = [t for t in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024) if bins[0] <= t <= bins[-1]]
                ax.set_xticks(ticks, [str(t) for t in ticks])
                ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        axes[-1, 0].set_xlabel(xlabel)
        fig.tight_layout()
        written.append(save_figure(Path(out_dir) / name, fig))
        plt.close(fig)
    return written

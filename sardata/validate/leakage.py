"""Leakage across train / val / test: exact duplicates (content hash), near duplicates (FAISS on the embeddings when
the samples have them, else on the cheap pixel signature of :mod:`sardata.validate.pixels`), and groups such as a
ship's MMSI or a WHU tile that must not cross splits — what fiftyone-brain's ``compute_leaky_splits`` does, on our
FAISS index and at our scale.

Readings chosen: exact duplicates *within* one split are a warning (they over-weight an image), *across* splits an
error (test images seen in training); near duplicates across splits are a warning (a threshold cannot be certain);
a group field crossing splits is an error. Near-duplicate thresholds are cosine similarities: 0.98 by default.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from sardata.index.duplicates import find_near_duplicates
from sardata.validate.findings import Finding
from sardata.views.split import leakage_check

NEAR_THRESHOLD = 0.98
#: Fields whose values identify one real object or scene: none may cross splits.
GROUP_FIELDS = ("mmsi", "tile_id")


def check_exact(ids, splits, hashes) -> list[Finding]:
    groups = defaultdict(list)
    for sid, split, digest in zip(ids, splits, hashes):
        if digest is not None:
            groups[digest].append((sid, split))
    crossing, within = [], []
    for members in groups.values():
        if len(members) > 1:
            (crossing if len({s for _, s in members}) > 1 else within).append(members)
    findings = []
    if crossing:
        findings.append(Finding(
            "exact_duplicate_across_splits", "error",
            f"{len(crossing)} groups of byte-identical images span more than one split",
            [sid for g in crossing for sid, _ in g], details={"groups": [[sid for sid, _ in g] for g in crossing[:20]]}))
    if within:
        findings.append(Finding(
            "exact_duplicate", "warning", f"{len(within)} groups of byte-identical images within one split",
            [sid for g in within for sid, _ in g], details={"groups": [[sid for sid, _ in g] for g in within[:20]]}))
    return findings


def check_near(ids, splits, vectors, source: str, threshold: float = NEAR_THRESHOLD,
               exclude_pairs: set | None = None) -> list[Finding]:
    """Near-duplicate pairs across splits among rows with a vector (``None`` rows are skipped)."""
    rows = [i for i, v in enumerate(vectors) if v is not None]
    if len(rows) < 2:
        return []
    x = np.stack([np.asarray(vectors[i], dtype=np.float32) for i in rows])
    pairs = []
    for a, b, score in find_near_duplicates(x, threshold=threshold, metric="cosine", kind="flat"):
        i, j = rows[a], rows[b]
        if splits[i] != splits[j] and (ids[i], ids[j]) not in (exclude_pairs or set()):
            pairs.append((ids[i], ids[j], splits[i], splits[j], round(score, 4)))
    if not pairs:
        return []
    return [Finding("near_duplicate_across_splits", "warning",
                    f"{len(pairs)} near-duplicate pairs (cosine ≥ {threshold:g} on {source}) span two splits",
                    [p[0] for p in pairs] + [p[1] for p in pairs],
                    details={"source": source, "threshold": threshold, "pairs": pairs[:20]})]


def check_groups(samples, split_field: str = "split", group_fields=GROUP_FIELDS) -> list[Finding]:
    """Values of ``group_fields`` found in more than one split (samples without a split take no part)."""
    samples = samples.exists(split_field)
    findings = []
    for group_field in group_fields:
        if not samples.has_field(group_field):
            continue
        report = leakage_check(samples, group_field, split_field=split_field)
        if report.crossing_groups:
            values = list(report.crossing_groups)
            ids = [sid for sid, g in zip(*samples.values(["id", group_field])) if g in report.crossing_groups]
            findings.append(Finding(
                f"shared_{group_field}_across_splits", "error",
                f"{len(values)} {group_field} values occur in more than one split",
                ids, details={"crossing": {str(k): v for k, v in list(report.crossing_groups.items())[:20]}}))
    return findings


def exact_pairs(ids, hashes) -> set:
    """All ordered id pairs with identical content (so that near-duplicate reports do not repeat them)."""
    groups = defaultdict(list)
    for sid, digest in zip(ids, hashes):
        if digest is not None:
            groups[digest].append(sid)
    return {(a, b) for g in groups.values() for a in g for b in g if a != b}

"""Train/val/test splits: the official one, stratified by class, or grouped so no group crosses splits; leakage check.

Grouping matters for SAR: OpenSARShip and FUSAR hold several chips of the same ship (same MMSI), WHU-OPT-SAR patches
of one tile share the scene, and a merged dataset can hold the same ship from two sources. A random split then puts
the same ship in train and test and inflates accuracy. ``method="group"`` assigns whole groups, choosing for each
group (largest first) the split that most lacks its class, so the split is grouped and stratified at once.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from sardata.views.balance import group_values

METHODS = ("official", "stratified", "group")


def split_names(ratios) -> tuple[str, ...]:
    """Split names for a ratio tuple: 2 → (train, test), 3 → (train, val, test)."""
    if len(ratios) == 2:
        return ("train", "test")
    if len(ratios) == 3:
        return ("train", "val", "test")
    raise ValueError(f"ratios {ratios!r}: give (train, test) or (train, val, test)")


def _normalised(ratios) -> np.ndarray:
    r = np.asarray(ratios, dtype=float)
    if (r < 0).any() or r.sum() <= 0:
        raise ValueError(f"ratios {ratios!r} must be non-negative with a positive sum")
    return r / r.sum()


def _strata(samples, by) -> list:
    """One stratum key per sample: the class, or a tuple over several fields (``by=("ground_truth.label", "scene")``)."""
    if by is None:
        return [None] * len(samples)
    paths = [by] if isinstance(by, str) else list(by)
    columns = [group_values(samples, p) for p in paths]
    return list(zip(*columns)) if len(columns) > 1 else columns[0]


def _allocate(n: int, ratios: np.ndarray) -> np.ndarray:
    """Integer counts per split summing to ``n``, by largest remainder."""
    exact = ratios * n
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    return counts


def split(
    samples,
    method: str = "stratified",
    ratios=(0.8, 0.2),
    by="ground_truth.label",
    group_field: str = "id",
    seed: int = 0,
    field: str = "split",
) -> dict:
    """Writes a split into ``field`` (with ``set_values``) and returns ``{split: sample count}``.

    Args:
        samples: FiftyOne dataset or view.
        method ("stratified"): ``official`` (keep what the loader set: SSDD 1/9 rule, WHU tile list, SAR-Aircraft
            ImageSets; raises when samples lack it), ``stratified`` (per class, or per tuple of fields in ``by``) or
            ``group`` (whole groups of ``group_field`` per split, stratified by their majority class).
        ratios ((0.8, 0.2)): (train, test) or (train, val, test).
        by ("ground_truth.label"): stratify by this field/label path, a tuple of them (e.g. also ``scene``,
            ``source``), or None.
        group_field ("id"): ``mmsi``, ``tile_id``, ``id`` (each image its own group), ...; samples with no value are
            each their own group.
        seed (0): random seed.
        field ("split"): the field written.
    """
    if method not in METHODS:
        raise ValueError(f"method {method!r}; expected one of {METHODS}")
    if method == "official":
        if field not in samples.get_field_schema():
            raise ValueError(f"no {field!r} field: this dataset has no official split; use method='stratified' or 'group'")
        missing = samples.count() - samples.count(field)
        if missing:
            raise ValueError(f"{missing} samples have no official {field!r}; use method='stratified' or 'group'")
        return dict(sorted(samples.count_values(field).items()))
    names = split_names(ratios)
    r = _normalised(ratios)
    rng = np.random.default_rng(seed)
    strata = _strata(samples, by)
    assigned: list = [None] * len(strata)
    if method == "stratified":
        members = defaultdict(list)
        for i, s in enumerate(strata):
            members[s].append(i)
        for key in sorted(members, key=str):
            idx = rng.permutation(members[key])
            start = 0
            for name, n in zip(names, _allocate(len(idx), r)):
                for i in idx[start : start + n]:
                    assigned[i] = name
                start += n
    else:
        keys = _group_keys(samples, group_field)
        groups = defaultdict(list)
        for i, k in enumerate(keys):
            groups[k].append(i)
        _assign_groups(groups, strata, r, names, rng, assigned)
    samples.set_values(field, assigned)
    return dict(sorted(Counter(assigned).items()))


def _group_keys(samples, group_field: str) -> list:
    ids = samples.values("id")
    if group_field == "id":
        return ids
    if group_field not in samples.get_field_schema() and "." not in group_field:
        raise ValueError(f"group field {group_field!r} not found on {samples._dataset.name!r}")
    values = samples.values(group_field)
    # samples without a group value are their own group
    return [("_id", i) if v is None else v for v, i in zip(values, ids)]


def _assign_groups(groups: dict, strata: list, ratios, names, rng, assigned: list) -> None:
    """Greedy grouped + stratified assignment: biggest groups first, each to the split that most lacks its class."""
    total_by_class = Counter(strata)
    order = list(groups)
    rng.shuffle(order)
    order.sort(key=lambda g: -len(groups[g]))  # stable: random order among equal sizes
    count = np.zeros(len(names))
    class_count: dict = defaultdict(lambda: np.zeros(len(names)))
    total = len(strata)
    for g in order:
        idx = groups[g]
        cls = Counter(strata[i] for i in idx).most_common(1)[0][0]
        class_deficit = ratios * total_by_class[cls] - class_count[cls]
        deficit = ratios * total - count
        # the class deficit decides; the overall deficit breaks ties
        best = max(range(len(names)), key=lambda s: (round(class_deficit[s], 6), deficit[s]))
        for i in idx:
            assigned[i] = names[best]
        count[best] += len(idx)
        for i in idx:
            class_count[strata[i]][best] += 1


@dataclass
class LeakageReport:
    """Groups and duplicate pairs found on more than one split.

    Attributes:
        group_field: the grouping field checked.
        crossing_groups: ``{group value: {split: sample count}}`` for groups in more than one split.
        crossing_duplicates: ``[(sample_id_a, sample_id_b, split_a, split_b)]`` for duplicates in different splits.
    """

    group_field: str
    crossing_groups: dict = field(default_factory=dict)
    crossing_duplicates: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.crossing_groups and not self.crossing_duplicates

    def __str__(self) -> str:
        if self.ok:
            return f"no leakage: no {self.group_field} group and no duplicate crosses splits"
        lines = [f"{len(self.crossing_groups)} {self.group_field} groups and {len(self.crossing_duplicates)} "
                 "duplicate pairs cross splits"]
        lines += [f"  {self.group_field}={g}: {s}" for g, s in list(self.crossing_groups.items())[:20]]
        lines += [f"  duplicate {a} ({sa}) ~ {b} ({sb})" for a, b, sa, sb in self.crossing_duplicates[:20]]
        return "\n".join(lines)


def leakage_check(samples, group_field: str, split_field: str = "split", duplicates=None) -> LeakageReport:
    """Lists groups and duplicates that cross splits.

    Args:
        samples: FiftyOne dataset or view.
        group_field: ``mmsi``, ``tile_id``, ... (``id`` checks nothing but duplicates).
        split_field ("split"): the split field.
        duplicates (None): duplicate sample ids, as groups ``[[id, id, ...], ...]`` or pairs ``[(id, id[, score])]``
            (e.g. ``MergeReport.exact_groups`` / ``near_pairs``).
    """
    ids = samples.values("id")
    splits = samples.values(split_field)
    keys = _group_keys(samples, group_field)
    per_group: dict = defaultdict(Counter)
    for k, s in zip(keys, splits):
        if not (isinstance(k, tuple) and k and k[0] == "_id"):
            per_group[k][s] += 1
    crossing = {k: dict(c) for k, c in per_group.items() if len(c) > 1}
    split_of = dict(zip(ids, splits))
    pairs = []
    for dup in duplicates or []:
        members = [d for d in dup if isinstance(d, str) and d in split_of]
        for a_i, a in enumerate(members):
            for b in members[a_i + 1 :]:
                if split_of[a] != split_of[b]:
                    pairs.append((a, b, split_of[a], split_of[b]))
    return LeakageReport(group_field=group_field, crossing_groups=crossing, crossing_duplicates=pairs)

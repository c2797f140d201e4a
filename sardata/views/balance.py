"""Balanced views by replication (BSLM) or undersampling, stored as named balance runs.

A FiftyOne view cannot repeat a sample, so replication is a per-sample integer count: ``2`` means "this image twice",
``0`` means "dropped". The counts of a run named ``KEY`` live in the sample field ``balance_KEY`` (an int), and the
run's parameters and before/after counts in a FiftyOne custom run ``KEY`` (``dataset.list_runs(method=
"sardata.balance")``, the same storage as :mod:`sardata.scenes` runs). A sample field rather than a hidden dict keeps
the counts queryable in the App (``F("balance_bslm") > 1``), makes them survive clones and merges, and lets several
runs coexist. Samples never get duplicated; exporters and training loaders honour the count.

Samples outside the balanced splits (test/val by default) get count 1: they are never replicated nor dropped. Samples
that were not in the collection passed to :func:`balance` have no value, which every reader treats as 1.
"""

from __future__ import annotations

import datetime
import math
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np

RUN_METHOD = "sardata.balance"
MODES = ("replicate", "undersample")


@dataclass
class BalanceRun:
    """One named balance run.

    Attributes:
        run_key: the run's name; counts live in sample field :attr:`count_field`.
        by: the field or label path whose values were balanced (e.g. ``scene.label``).
        mode: ``replicate`` or ``undersample``.
        target: wanted ratio of minority to majority count.
        splits: the splits balanced (None = all samples).
        seed: random seed of the remainder/undersample draw.
        before: count per group value over the balanced samples, before.
        after: the same, counting replicas.
        created_at: ISO time of the run.
    """

    run_key: str
    by: str
    mode: str
    target: float
    splits: list | None
    seed: int
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)
    created_at: str = ""

    @property
    def count_field(self) -> str:
        return count_field(self.run_key)

    def to_dict(self) -> dict:
        return asdict(self)


def count_field(run_key: str) -> str:
    """The sample field holding the replication counts of run ``run_key``."""
    if not run_key or not run_key.replace("_", "").isalnum():
        raise ValueError(f"run_key {run_key!r} must be a non-empty snake_case name (letters, digits, underscores)")
    return f"balance_{run_key}"


def resolve_label_path(samples, path: str) -> str:
    """Turns a field name or ``field.label`` into the path FiftyOne's ``values()`` understands.

    ``scene`` (a Classification) → ``scene.label``; ``ground_truth.label`` on Detections → ``ground_truth.detections.label``.
    """
    import fiftyone as fo

    root, _, rest = path.partition(".")
    schema = samples.get_field_schema()
    if root not in schema:
        hint = " (scene tags come from `sardata scenes`)" if root == "scene" else ""
        raise ValueError(f"field {root!r} not found on {samples._dataset.name!r}{hint}; fields: {sorted(schema)}")
    doc_type = getattr(schema[root], "document_type", None)
    list_types = {fo.Detections: "detections", fo.Polylines: "polylines", fo.Keypoints: "keypoints", fo.Classifications: "classifications"}
    if doc_type in list_types:
        return f"{root}.{list_types[doc_type]}.{rest or 'label'}"
    if doc_type is not None and issubclass(doc_type, fo.Label) and not rest:
        return f"{root}.label"
    return path


def group_values(samples, by: str) -> list:
    """One hashable group value per sample; for list labels (detections) the rarest class in the image, so that
    oversampling by class raises the minority classes."""
    path = resolve_label_path(samples, by)
    values = samples.values(path)
    if not any(isinstance(v, list) for v in values):
        return list(values)
    totals = Counter(x for v in values if v for x in v)
    return [min(v, key=lambda x: (totals[x], str(x))) if v else None for v in values]


def balance(
    samples,
    by: str = "scene",
    mode: str = "replicate",
    target: float = 1.0,
    splits=("train",),
    seed: int = 0,
    run_key: str = "balance",
    split_field: str = "split",
    overwrite: bool = True,
) -> BalanceRun:
    """Balances the groups of ``by`` in the given splits by replication or undersampling; stores a named run.

    Replicate: every group smaller than ``target`` × the majority count is raised to that count: each of its samples
    gets ``wanted // n`` copies and a seeded draw of ``wanted % n`` samples one more (BSLM: ``by="scene"`` replicates
    inshore training images until they match offshore). Undersample: every group larger than the minority count /
    ``target`` keeps a seeded draw of that many samples; the others get count 0.

    Args:
        samples: a FiftyOne dataset or view.
        by ("scene"): field or label path to balance (``scene``, ``ground_truth.label``, ``source``, ...).
        mode ("replicate"): ``replicate`` or ``undersample``.
        target (1.0): wanted minority / majority ratio, in (0, 1].
        splits (("train",)): splits to balance; others get count 1. None balances every sample.
        seed (0): random seed of the draws.
        run_key ("balance"): name of the run; counts go to sample field ``balance_<run_key>``.
        split_field ("split"): the split field.
        overwrite (True): replace an existing run of that name.

    Returns:
        the :class:`BalanceRun`.
    """
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}; expected one of {MODES}")
    if not 0 < target <= 1:
        raise ValueError(f"target {target!r} must be in (0, 1] (ratio of minority to majority count)")
    dataset = samples._dataset
    fname = count_field(run_key)
    if run_key in list_runs(dataset) and not overwrite:
        raise ValueError(f"balance run {run_key!r} exists on {dataset.name!r}; pass overwrite=True or another run_key")
    if run_key in dataset.list_runs() and run_key not in list_runs(dataset):
        raise ValueError(f"run key {run_key!r} on {dataset.name!r} belongs to another kind of run "
                         f"({dataset.get_run_info(run_key).config.method}); choose another run_key")
    ids = samples.values("id")
    groups = group_values(samples, by)
    if splits is not None:
        splits = [splits] if isinstance(splits, str) else list(splits)
        if split_field not in samples.get_field_schema():
            raise ValueError(f"split field {split_field!r} not found; run sardata split first or pass splits=None")
        split_values = samples.values(split_field)
        eligible = [s in splits for s in split_values]
    else:
        eligible = [True] * len(ids)

    members: dict = defaultdict(list)
    for i, (group, ok) in enumerate(zip(groups, eligible)):
        if ok and group is not None:
            members[group].append(i)
    counts = np.ones(len(ids), dtype=np.int64)
    rng = np.random.default_rng(seed)
    if members:
        sizes = {g: len(m) for g, m in members.items()}
        for group in sorted(members, key=str):  # sorted: same draws whatever the dict order
            idx = np.asarray(members[group])
            n = len(idx)
            if mode == "replicate":
                wanted = int(round(target * max(sizes.values())))
                if n >= wanted:
                    continue
                whole, remainder = divmod(wanted, n)
                counts[idx] = whole
                counts[rng.choice(idx, size=remainder, replace=False)] += 1
            else:
                keep = max(1, int(math.ceil(min(sizes.values()) / target)))
                if n <= keep:
                    continue
                counts[idx] = 0
                counts[rng.choice(idx, size=keep, replace=False)] = 1

    before = Counter(str(groups[i]) for m in members.values() for i in m)
    after = Counter()
    for m in members.values():
        for i in m:
            after[str(groups[i])] += int(counts[i])
    samples.set_values(fname, counts.tolist())
    run = BalanceRun(
        run_key=run_key,
        by=by,
        mode=mode,
        target=float(target),
        splits=splits,
        seed=int(seed),
        before=dict(sorted(before.items())),
        after=dict(sorted(after.items())),
        created_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )
    store_run(dataset, run)
    return run


def store_run(dataset, run: BalanceRun) -> None:
    """Stores ``run`` as the FiftyOne custom run ``run.run_key`` (replacing a balance run of that key)."""
    config = dataset.init_run(method=RUN_METHOD, **run.to_dict())
    dataset.register_run(run.run_key, config, overwrite=True)


def list_runs(samples) -> list[str]:
    """Keys of the balance runs stored on the dataset."""
    return sorted(samples._dataset.list_runs(method=RUN_METHOD))


def load_run(samples, run_key: str) -> BalanceRun:
    """The stored :class:`BalanceRun` named ``run_key``."""
    dataset = samples._dataset
    runs = list_runs(dataset)
    if run_key not in runs:
        raise ValueError(f"no balance run {run_key!r} on {dataset.name!r}; runs: {runs}")
    config = dataset.get_run_info(run_key).config
    return BalanceRun(**{name: getattr(config, name) for name in BalanceRun.__dataclass_fields__
                         if hasattr(config, name)})


def delete_run(samples, run_key: str) -> None:
    """Deletes a balance run: its count field and the run."""
    dataset = samples._dataset
    load_run(dataset, run_key)  # the error names the runs there are
    fname = count_field(run_key)
    if fname in dataset.get_field_schema():
        dataset.delete_sample_field(fname)
    dataset.delete_run(run_key)


def replication_counts(samples, run_key: str | None) -> dict[str, int]:
    """``{sample_id: count}`` of a run over ``samples`` (missing values count 1; ``run_key=None`` → all 1)."""
    ids = samples.values("id")
    if run_key is None:
        return dict.fromkeys(ids, 1)
    load_run(samples, run_key)
    values = samples.values(count_field(run_key))
    return {i: (1 if c is None else int(c)) for i, c in zip(ids, values)}


def balanced_view(samples, run_key: str):
    """The view of ``samples`` whose count in run ``run_key`` is at least 1 (undersampled samples left out)."""
    from fiftyone import ViewField as F

    load_run(samples, run_key)
    fname = count_field(run_key)
    return samples.match((F(fname) >= 1) | ~F(fname).exists())

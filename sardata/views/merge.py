"""Merge several datasets into one: labels mapped by a taxonomy, duplicates found and resolved, shared ships reported.

``merge([opensarship, fusar], "mix", taxonomy="ships3")`` makes the "Mix" dataset of the ship-classification papers.
Every merged sample keeps ``source`` (the loader's dataset key, else the input dataset's name) and its label before
mapping (``original_label``: a sample field for classifications, an attribute of each object for detections), and
keeps its FiftyOne id (so predictions on the merge map back to the inputs). Two kinds of leakage are looked for:
the same image twice (exact content hash, or near-duplicate embeddings) and the same ship in two sources (a shared
``mmsi``); the first is resolved by ``policy``, both are reported so a grouped split can keep them on one side.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np

DEDUP = ("exact", "near", "both", "none")
POLICIES = ("keep_first", "drop_all", "report_only")
DUPLICATE_TAG = "duplicate"


@dataclass
class MergeReport:
    """What a merge did.

    Attributes:
        name: the merged dataset's name.
        inputs: ``{input dataset name: samples added}``.
        label_counts: ``{"source:original → target": count}`` (target ``None`` = dropped).
        dropped_samples: samples dropped because their (classification) label maps to None.
        dropped_objects: objects dropped because their label maps to None.
        exact_groups: groups of sample ids with identical file content.
        near_pairs: ``(id_a, id_b, similarity)`` of near-duplicate embeddings.
        removed: sample ids removed by the duplicate policy.
        shared_groups: ``{group value: [sources]}`` for ``group_field`` values (MMSI) found in several sources.
        policy: the duplicate policy applied.
    """

    name: str
    inputs: dict = field(default_factory=dict)
    label_counts: dict = field(default_factory=dict)
    dropped_samples: int = 0
    dropped_objects: int = 0
    exact_groups: list = field(default_factory=list)
    near_pairs: list = field(default_factory=list)
    removed: list = field(default_factory=list)
    shared_groups: dict = field(default_factory=dict)
    policy: str = "keep_first"

    def duplicate_groups(self) -> list[list[str]]:
        """Exact groups and near pairs as lists of ids (input for :func:`sardata.views.split.leakage_check`)."""
        return [list(g) for g in self.exact_groups] + [[a, b] for a, b, _ in self.near_pairs]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shared_groups"] = {str(k): v for k, v in self.shared_groups.items()}
        d["near_pairs"] = [list(p) for p in self.near_pairs]
        return d

    def __str__(self) -> str:
        return (
            f"merged {sum(self.inputs.values())} samples of {list(self.inputs)} into {self.name!r}: "
            f"{self.dropped_samples} samples and {self.dropped_objects} objects dropped by the taxonomy, "
            f"{len(self.exact_groups)} exact duplicate groups, {len(self.near_pairs)} near-duplicate pairs, "
            f"{len(self.removed)} samples removed ({self.policy}), {len(self.shared_groups)} groups shared by sources"
        )


def resolve_taxonomy(taxonomy) -> dict | None:
    """A taxonomy name/path (via :func:`sardata.datasets.taxonomy.load_taxonomy`), a dict, or None (identity)."""
    if taxonomy is None or isinstance(taxonomy, dict):
        return taxonomy
    if isinstance(taxonomy, (str, os.PathLike)):
        from sardata.datasets.taxonomy import load_taxonomy

        return load_taxonomy(taxonomy)
    raise ValueError(f"taxonomy must be a name, a file path, a dict or None, got {type(taxonomy).__name__}")


def _map(taxonomy: dict | None, label, source):
    if taxonomy is None:
        return label
    if label is None:
        return None
    if source is not None and f"{source}:{label}" in taxonomy:  # dataset-qualified keys win ("fusar:Other")
        return taxonomy[f"{source}:{label}"]
    return taxonomy.get(label)


def merge(
    datasets: list,
    name: str,
    taxonomy="ships3",
    dedup: str = "exact",
    policy: str = "keep_first",
    near_threshold: float = 0.95,
    embedding_field: str | None = None,
    label_field: str = "ground_truth",
    group_field: str = "mmsi",
    overwrite: bool = False,
):
    """Merges datasets (or views, or dataset names) into a new persistent dataset.

    Args:
        datasets: the inputs, in priority order (``keep_first`` keeps the earliest copy of a duplicate).
        name: name of the new dataset.
        taxonomy ("ships3"): ``ships3``/``ships4``, a JSON/YAML mapping file, a dict ``{label: target or None}``
            (keys may be qualified as ``"<source>:<label>"``), or None to keep labels. Unlisted labels map to None:
            those samples (classification) or objects (detection) are dropped and counted in the report.
        dedup ("exact"): ``exact`` (sha256 of the original file), ``near`` (embedding cosine similarity), ``both``,
            ``none``.
        policy ("keep_first"): ``keep_first`` (remove all but the earliest of each duplicate cluster), ``drop_all``
            (remove every member), ``report_only`` (keep all, tag them ``duplicate``).
        near_threshold (0.95): minimum cosine similarity of near duplicates.
        embedding_field (None): sample field holding embeddings; required for ``near``/``both``.
        label_field ("ground_truth"): the label field mapped.
        group_field ("mmsi"): field whose values shared by several sources are reported (skipped when absent).
        overwrite (False): replace an existing dataset called ``name``.

    Returns:
        ``(dataset, MergeReport)``; the report is also stored in ``dataset.info["merge_report"]``.
    """
    import fiftyone as fo

    if dedup not in DEDUP:
        raise ValueError(f"dedup {dedup!r}; expected one of {DEDUP}")
    if policy not in POLICIES:
        raise ValueError(f"policy {policy!r}; expected one of {POLICIES}")
    if dedup in ("near", "both") and not embedding_field:
        raise ValueError(f"dedup={dedup!r} needs embedding_field (a field holding one embedding per sample)")
    mapping = resolve_taxonomy(taxonomy)
    inputs = [fo.load_dataset(d) if isinstance(d, str) else d for d in datasets]
    if not inputs:
        raise ValueError("merge needs at least one dataset")
    seen = set()
    for d in inputs:
        if d._dataset.name in seen:
            raise ValueError(f"dataset {d._dataset.name!r} is listed twice")
        seen.add(d._dataset.name)
    doc_types = {d._dataset.name: getattr(d.get_field_schema().get(label_field), "document_type", None) for d in inputs}
    if None in doc_types.values() or len(set(doc_types.values())) > 1:
        found = {name: getattr(t, "__name__", None) for name, t in doc_types.items()}
        raise ValueError(f"every input needs the same label type in {label_field!r}; found {found}")
    if fo.dataset_exists(name):
        if not overwrite:
            raise ValueError(f"dataset {name!r} exists; pass overwrite=True (--overwrite) to replace it")
        fo.delete_dataset(name)

    merged = fo.Dataset(name, persistent=True)
    report = MergeReport(name=name, policy=policy)
    try:
        order: list[str] = []  # sample ids in input priority order
        for d in inputs:
            ids = merged.add_collection(d, include_info=False)
            order.extend(ids)
            report.inputs[d._dataset.name] = len(ids)
            view = merged.select(ids, ordered=True)
            if "source" not in merged.get_field_schema() or view.count("source") < len(ids):
                sources = view.values("source") if "source" in merged.get_field_schema() else [None] * len(ids)
                view.set_values("source", [s or d._dataset.name for s in sources])
        _map_labels(merged, mapping, label_field, report)
        _resolve_duplicates(merged, order, dedup, policy, near_threshold, embedding_field, report)
        if group_field in merged.get_field_schema():
            sources_of = defaultdict(set)
            for g, s in zip(merged.values(group_field), merged.values("source")):
                if g is not None:
                    sources_of[g].add(s)
            report.shared_groups = {g: sorted(s) for g, s in sources_of.items() if len(s) > 1}
        targets = sorted({t for t in (mapping or {}).values() if t is not None}) if mapping else None
        if targets:
            merged.default_classes = targets
        merged.info["merge_report"] = report.to_dict()
        merged.info["merged_from"] = list(report.inputs)
        merged.save()
    except BaseException:
        merged.delete()
        raise
    return merged, report


def _map_labels(merged, mapping, label_field: str, report: MergeReport) -> None:
    import fiftyone as fo

    labels = merged.values(label_field)
    sources = merged.values("source")
    ids = merged.values("id")
    counts: Counter = Counter()
    drop_ids = []
    originals = []
    for sid, label, source in zip(ids, labels, sources):
        if label is None:
            originals.append(None)
            continue
        if isinstance(label, fo.Classification):
            target = _map(mapping, label.label, source)
            counts[f"{source}:{label.label} → {target}"] += 1
            originals.append(label.label)
            if target is None:
                drop_ids.append(sid)
            label.label = target
            continue
        originals.append(None)
        objects_attr = next((a for a in ("detections", "polylines", "classifications") if hasattr(label, a)), None)
        if objects_attr is None:  # segmentation masks: nothing to map per label here
            continue
        kept = []
        for obj in getattr(label, objects_attr):
            target = _map(mapping, obj.label, source)
            counts[f"{source}:{obj.label} → {target}"] += 1
            if target is None:
                report.dropped_objects += 1
                continue
            obj["original_label"] = obj.label
            obj.label = target
            kept.append(obj)
        setattr(label, objects_attr, kept)
    merged.set_values(label_field, labels)
    if any(o is not None for o in originals):
        merged.set_values("original_label", originals)
    report.label_counts = dict(sorted(counts.items()))
    if counts and all(key.endswith("→ None") for key in counts):
        import warnings

        warnings.warn(f"the taxonomy maps every label to None ({sorted(counts)[:5]}...): nothing is left; "
                      "pass taxonomy=None (--taxonomy none) to keep the labels")
    if drop_ids:
        merged.delete_samples(drop_ids)
        report.dropped_samples = len(drop_ids)


def _union_find_clusters(n_items: int, pairs) -> list[list[int]]:
    parent = list(range(n_items))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    clusters = defaultdict(list)
    for i in range(n_items):
        clusters[find(i)].append(i)
    return [sorted(c) for c in clusters.values() if len(c) > 1]


def _resolve_duplicates(merged, order, dedup, policy, near_threshold, embedding_field, report: MergeReport) -> None:
    if dedup == "none":
        return
    remaining = set(merged.values("id"))
    ids = [i for i in order if i in remaining]  # input priority order
    view = merged.select(ids, ordered=True)
    pairs = []
    if dedup in ("exact", "both"):
        from sardata.index.duplicates import exact_duplicates

        schema = merged.get_field_schema()
        sar = view.values("sar_path") if "sar_path" in schema else [None] * len(ids)
        paths = [s or f for s, f in zip(sar, view.values("filepath"))]
        groups = exact_duplicates(paths)
        report.exact_groups = [[ids[i] for i in g] for g in groups]
        pairs += [(g[0], j) for g in groups for j in g[1:]]
    if dedup in ("near", "both"):
        from sardata.index.duplicates import find_near_duplicates

        if embedding_field not in merged.get_field_schema():
            raise ValueError(f"embedding field {embedding_field!r} not found on the merged dataset")
        vectors = view.values(embedding_field)
        have = [i for i, v in enumerate(vectors) if v is not None]
        if len(have) < len(ids):
            import warnings

            warnings.warn(f"{len(ids) - len(have)} samples have no {embedding_field!r}; left out of near-dedup")
        if len(have) >= 2:
            emb = np.stack([np.asarray(vectors[i], dtype=np.float32).ravel() for i in have])
            near = find_near_duplicates(emb, threshold=near_threshold, metric="cosine")
            report.near_pairs = [(ids[have[a]], ids[have[b]], float(s)) for a, b, s in near]
            pairs += [(have[a], have[b]) for a, b, _ in near]
    clusters = _union_find_clusters(len(ids), pairs)
    if not clusters:
        return
    if policy == "report_only":
        merged.select([ids[i] for c in clusters for i in c]).tag_samples(DUPLICATE_TAG)
        return
    remove = [ids[i] for c in clusters for i in (c[1:] if policy == "keep_first" else c)]
    merged.delete_samples(remove)
    report.removed = remove

"""Splits (official, stratified, grouped), leakage check, and merges with taxonomy and duplicate handling."""

import shutil
from collections import Counter

import numpy as np
import pytest

from test_views_data import delete_datasets, make_classification_dataset, make_detection_dataset


def test_official_split_kept_and_missing_split_named(tmp_path, fo_dataset_name):
    from sardata.views.split import split

    ds = make_detection_dataset(tmp_path, fo_dataset_name, inshore=1, offshore=3, test=2)
    assert split(ds, method="official") == {"test": 2, "train": 4}
    first = ds.first()
    first["split"] = None
    first.save()
    with pytest.raises(ValueError, match="no official"):
        split(ds, method="official")


def test_stratified_split_keeps_class_ratios(tmp_path, fo_dataset_name):
    from sardata.views.split import split

    labels = ["Cargo"] * 20 + ["Tanker"] * 10 + ["Fishing"] * 5
    ds = make_classification_dataset(tmp_path, fo_dataset_name, labels, tiff=False)
    counts = split(ds, method="stratified", ratios=(0.6, 0.2, 0.2), seed=3)
    assert counts == {"test": 7, "train": 21, "val": 7}
    per = Counter(zip(ds.values("ground_truth.label"), ds.values("split")))
    assert per[("Cargo", "train")] == 12 and per[("Tanker", "train")] == 6 and per[("Fishing", "train")] == 3
    first = ds.values("split")
    split(ds, method="stratified", ratios=(0.6, 0.2, 0.2), seed=3)
    assert ds.values("split") == first


def test_group_split_never_splits_a_ship_and_leakage_check_finds_crossings(tmp_path, fo_dataset_name):
    from sardata.views.split import leakage_check, split

    rng = np.random.default_rng(0)
    mmsis = rng.integers(0, 12, size=60)
    labels = ["Cargo" if m % 3 else "Tanker" for m in mmsis]
    ds = make_classification_dataset(tmp_path, fo_dataset_name, labels, mmsis=mmsis, tiff=False)
    counts = split(ds, method="group", group_field="mmsi", ratios=(0.75, 0.25))
    assert set(counts) == {"train", "test"} and counts["test"] >= 6
    assert leakage_check(ds, "mmsi").ok
    per_mmsi = {}
    for m, s in zip(ds.values("mmsi"), ds.values("split")):
        per_mmsi.setdefault(m, set()).add(s)
    assert all(len(s) == 1 for s in per_mmsi.values())
    # force a crossing
    sample = ds.select_by("split", ["train"]).first()
    sample["split"] = "test"
    sample.save()
    report = leakage_check(ds, "mmsi")
    assert not report.ok and list(report.crossing_groups) == [sample.mmsi]
    assert "cross splits" in str(report)


def test_leakage_check_reports_duplicates_across_splits(tmp_path, fo_dataset_name):
    from sardata.views.split import leakage_check

    ds = make_classification_dataset(tmp_path, fo_dataset_name, ["Cargo"] * 3, splits=["train", "test", "train"], tiff=False)
    a, b, c = ds.values("id")
    report = leakage_check(ds, "id", duplicates=[[a, b], (a, c, 0.99)])
    assert report.crossing_duplicates == [(a, b, "train", "test")]


def _ships(tmp_path, name, labels, mmsis, source, seed):
    return make_classification_dataset(tmp_path, name, labels, mmsis=mmsis, source=source, seed=seed)


def test_merge_maps_taxonomy_catches_duplicates_and_shared_mmsi(tmp_path, fo_dataset_name):
    import fiftyone as fo

    from sardata.views.merge import merge
    from sardata.views.split import leakage_check, split

    a = _ships(tmp_path, fo_dataset_name + "-a", ["Cargo", "Tanker", "Fishing", "Tug"], [1, 2, 3, 4], "opensarship", 0)
    b = _ships(tmp_path, fo_dataset_name + "-b", ["Cargo", "Other", "Cargo", "Tanker"], [5, 6, 7, 2], "fusar", 50)
    # plant an exact duplicate: b's first chip is a byte copy of a's first chip
    shutil.copyfile(a.first().sar_path, b.first().sar_path)
    mapping = {"Cargo": "Cargo", "Tanker": "Tanker", "Fishing": "Fishing", "Tug": None, "Other": None}
    name = fo_dataset_name + "-mix"
    try:
        merged, report = merge([a, b], name, taxonomy=mapping, dedup="exact")
        assert report.inputs == {a.name: 4, b.name: 4}
        assert report.dropped_samples == 2  # Tug, Other
        assert report.exact_groups == [[a.first().id, b.first().id]]
        assert report.removed == [b.first().id]  # keep_first keeps the copy of the first input
        assert len(merged) == 5
        assert sorted(merged.values("ground_truth.label")) == ["Cargo", "Cargo", "Fishing", "Tanker", "Tanker"]
        assert set(merged.values("original_label")) == {"Cargo", "Tanker", "Fishing"}
        assert merged.count_values("source") == {"opensarship": 3, "fusar": 2}
        assert report.shared_groups == {2: ["fusar", "opensarship"]}
        assert merged.info["merge_report"]["removed"] == report.removed
        assert fo.load_dataset(name).persistent
        # a grouped split keeps the shared MMSI on one side
        split(merged, method="group", group_field="mmsi", ratios=(0.5, 0.5))
        assert len(set(merged.select_by("mmsi", [2]).values("split"))) == 1
        assert leakage_check(merged, "mmsi").ok
    finally:
        delete_datasets(name, a.name, b.name)


def test_merge_near_duplicates_policies_and_builtin_taxonomy(tmp_path, fo_dataset_name):
    from sardata.views.merge import DUPLICATE_TAG, merge

    a = _ships(tmp_path, fo_dataset_name + "-a", ["Cargo", "Tanker"], [1, 2], "opensarship", 0)
    b = _ships(tmp_path, fo_dataset_name + "-b", ["Cargo", "Fishing"], [3, 4], "fusar", 10)
    a.set_values("emb", [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    b.set_values("emb", [[0.99, 0.05, 0.0], [0.0, 0.0, 1.0]])
    name = fo_dataset_name + "-mix"
    try:
        merged, report = merge([a, b], name, taxonomy="ships3", dedup="near", embedding_field="emb", policy="report_only")
        assert [(p[0], p[1]) for p in report.near_pairs] == [(a.first().id, b.first().id)]
        assert report.removed == [] and merged.count_sample_tags() == {DUPLICATE_TAG: 2}
        merged, report = merge([a, b], name, taxonomy="ships3", dedup="both", embedding_field="emb",
                               policy="drop_all", overwrite=True)
        assert len(merged) == 2 and sorted(report.removed) == sorted([a.first().id, b.first().id])
        with pytest.raises(ValueError, match="exists"):
            merge([a, b], name)
        with pytest.raises(ValueError, match="embedding_field"):
            merge([a, b], name + "2", dedup="near")
    finally:
        delete_datasets(name, name + "2", a.name, b.name)


def test_merge_refuses_mixed_label_types(tmp_path, fo_dataset_name):
    import fiftyone as fo

    from sardata.views.merge import merge

    det = make_detection_dataset(tmp_path, fo_dataset_name + "-det", inshore=1, offshore=1, test=0)
    cls = make_classification_dataset(tmp_path, fo_dataset_name + "-cls", ["Cargo"], tiff=False)
    try:
        with pytest.raises(ValueError, match="same label type"):
            merge([det, cls], fo_dataset_name + "-mix", taxonomy=None)
        assert not fo.dataset_exists(fo_dataset_name + "-mix")
    finally:
        delete_datasets(det.name, cls.name)

"""Balance runs: BSLM replication, undersampling, run bookkeeping."""

import pytest
from fiftyone import ViewField as F

from test_views_data import make_classification_dataset, make_detection_dataset


def test_bslm_replication_matches_offshore_and_leaves_test_alone(tmp_path, fo_dataset_name):
    from sardata.views.balance import balance, replication_counts

    ds = make_detection_dataset(tmp_path, fo_dataset_name, inshore=3, offshore=8, test=4)
    run = balance(ds, by="scene", mode="replicate", run_key="bslm")
    counts = replication_counts(ds, "bslm")
    inshore_train = ds.match((F("scene.label") == "inshore") & (F("split") == "train")).values("id")
    assert sum(counts[i] for i in inshore_train) == 8  # 3 images → 8 copies: 2 each + 2 seeded extras
    assert sorted(counts[i] for i in inshore_train) == [2, 3, 3]
    for sid in ds.match(F("split") == "test").values("id"):
        assert counts[sid] == 1
    assert run.before == {"inshore": 3, "offshore": 8} and run.after == {"inshore": 8, "offshore": 8}
    assert len(ds) == 15  # nothing duplicated in the dataset


def test_target_ratio_and_seed(tmp_path, fo_dataset_name):
    from sardata.views.balance import balance, replication_counts

    ds = make_detection_dataset(tmp_path, fo_dataset_name, inshore=3, offshore=10, test=1)
    run = balance(ds, by="scene.label", target=0.5, run_key="half", seed=1)
    assert run.after["inshore"] == 5
    first = replication_counts(ds, "half")
    balance(ds, by="scene.label", target=0.5, run_key="half", seed=1)
    assert replication_counts(ds, "half") == first


def test_undersample_drops_majority_only_in_train(tmp_path, fo_dataset_name):
    from sardata.views.balance import balance, balanced_view, replication_counts

    ds = make_classification_dataset(
        tmp_path, fo_dataset_name, ["Cargo"] * 6 + ["Tanker"] * 2 + ["Cargo"] * 3,
        splits=["train"] * 8 + ["test"] * 3, tiff=False,
    )
    run = balance(ds, by="ground_truth.label", mode="undersample", run_key="under")
    assert run.after == {"Cargo": 2, "Tanker": 2}
    view = balanced_view(ds, "under")
    assert view.match(F("split") == "train").count_values("ground_truth.label") == {"Cargo": 2, "Tanker": 2}
    assert view.match(F("split") == "test").count() == 3
    assert set(replication_counts(ds, "under").values()) == {0, 1}


def test_runs_coexist_list_load_delete(tmp_path, fo_dataset_name):
    from sardata.views import balance as B

    ds = make_detection_dataset(tmp_path, fo_dataset_name)
    B.balance(ds, by="scene", run_key="a")
    B.balance(ds, by="scene", mode="undersample", run_key="b")
    assert B.list_runs(ds) == ["a", "b"]
    assert B.load_run(ds, "a").mode == "replicate" and B.load_run(ds, "b").mode == "undersample"
    assert max(B.replication_counts(ds, "a").values()) > 1 and min(B.replication_counts(ds, "b").values()) == 0
    with pytest.raises(ValueError, match="exists"):
        B.balance(ds, by="scene", run_key="a", overwrite=False)
    B.delete_run(ds, "a")
    assert B.list_runs(ds) == ["b"] and "balance_a" not in ds.get_field_schema()
    with pytest.raises(ValueError, match="no balance run"):
        B.replication_counts(ds, "a")


def test_runs_are_fiftyone_custom_runs_that_survive_a_reload(tmp_path, fo_dataset_name):
    import fiftyone as fo

    from sardata.views import balance as B

    ds = make_detection_dataset(tmp_path, fo_dataset_name, inshore=3, offshore=8, test=4)
    run = B.balance(ds, by="scene", run_key="bslm", seed=3)
    assert ds.list_runs(method=B.RUN_METHOD) == ["bslm"] and "balance_runs" not in ds.info
    fresh = fo.load_dataset(ds.name)
    fresh.reload()
    assert B.load_run(fresh, "bslm") == run  # every field, before/after counts included
    assert B.load_run(fresh.match(F("split") == "train"), "bslm") == run  # views read their dataset's runs
    # another kind of run under the same key is never overwritten
    fresh.register_run("scenes", fresh.init_run(method="sardata.scenes", k=2))
    with pytest.raises(ValueError, match="another kind of run"):
        B.balance(fresh, by="scene", run_key="scenes")
    assert fresh.get_run_info("scenes").config.method == "sardata.scenes" and B.list_runs(fresh) == ["bslm"]
    B.delete_run(fresh, "bslm")
    assert fresh.list_runs() == ["scenes"] and "balance_bslm" not in fresh.get_field_schema()
    with pytest.raises(ValueError, match="no balance run 'bslm'"):
        B.delete_run(fresh, "bslm")


def test_bad_arguments_are_named(tmp_path, fo_dataset_name):
    from sardata.views.balance import balance

    ds = make_detection_dataset(tmp_path, fo_dataset_name)
    with pytest.raises(ValueError, match="mode"):
        balance(ds, mode="oversmp")
    with pytest.raises(ValueError, match="target"):
        balance(ds, target=2)
    with pytest.raises(ValueError, match="nope"):
        balance(ds, by="nope")

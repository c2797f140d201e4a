"""The one dataset table: every row resolves to a real importer, generator and FiftyOne type."""

import inspect

import pytest

from sardata import registry


def test_every_row_resolves_to_an_importer_a_generator_and_a_type():
    import fiftyone.utils.data as foud

    import sardata.types as sartypes
    from sardata.datasets import dataset_type

    assert set(registry.DATASETS) == {"ssdd", "opensarship", "fusar", "whu_opt_sar", "sar_aircraft"}
    for key, spec in registry.DATASETS.items():
        assert issubclass(spec.importer_cls(), foud.DatasetImporter), key
        assert "n" in inspect.signature(spec.generator_module().generate).parameters, key
        cls = dataset_type(key)
        assert cls is getattr(sartypes, spec.type_name) and cls.__module__ == "sardata.types"
        assert cls().get_dataset_importer_cls() is spec.importer_cls()
    assert set(sartypes.__all__) == {"SarDataset"} | {s.type_name for s in registry.DATASETS.values()}


def test_unknown_key_names_the_key_and_the_known_ones():
    from sardata.synth import synthesize

    with pytest.raises(ValueError, match=r"unknown dataset 'ssd'.*'ssdd'"):
        registry.get("ssd")
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        synthesize("nope", "/tmp/never-written")

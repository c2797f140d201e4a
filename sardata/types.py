"""FiftyOne dataset types of the SAR datasets, so ``fo.Dataset.from_dir(root, dataset_type=sardata.types.SSDD)``.

One class per row of :data:`sardata.registry.DATASETS` (``SSDD``, ``OpenSARShip``, ``FUSARShip``, ``WHUOptSar``,
``SARAircraft``). The importer class is imported inside ``get_dataset_importer_cls``, as FiftyOne's own
``fiftyone/types/dataset_types.py`` does, so importing this module stays cheap.
"""

import fiftyone.types as fot

from sardata.registry import DATASETS


class SarDataset(fot.Dataset):
    """Base of the sardata dataset types; ``KEY`` names the row of :data:`sardata.registry.DATASETS`."""

    KEY = ""

    def get_dataset_importer_cls(self):
        return DATASETS[self.KEY].importer_cls()


def _make_type(spec):
    loader = spec.importer.partition(":")[0]
    doc = f"{spec.summary} See :mod:`{loader}`."
    return type(spec.type_name, (SarDataset,), {"KEY": spec.key, "__doc__": doc, "__module__": __name__})


for _spec in DATASETS.values():
    globals()[_spec.type_name] = _make_type(_spec)

__all__ = ["SarDataset"] + [spec.type_name for spec in DATASETS.values()]
del _spec

"""The one table of datasets: key → FiftyOne type name, importer, synthetic generator, demo tour size.

The lowest floor of the package: it imports nothing from sardata (nor FiftyOne), so the loaders, the generators,
:mod:`sardata.types`, the demo and the CLI all read the same rows without importing upward. Importers and
generators are named by dotted path and imported only when asked for.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset.

    Attributes:
        key: CLI/dataset key (``sardata ingest KEY``).
        type_name: name of its FiftyOne dataset type in :mod:`sardata.types` (``sardata.types.SSDD``).
        importer: ``module:Class`` of its FiftyOne importer.
        generator: module of its synthetic generator (``generate(out_dir, n=None, seed=0, full=False)``).
        tour_size: synthetic size in the demo's ingest tour (None: the generator's small default).
        summary: one line for the type's docstring.
    """

    key: str
    type_name: str
    importer: str
    generator: str
    tour_size: int | None
    summary: str

    def importer_cls(self) -> type:
        """The importer class (imports the loader module, hence FiftyOne)."""
        module, _, name = self.importer.partition(":")
        return getattr(importlib.import_module(module), name)

    def generator_module(self):
        """The generator module (has ``generate``)."""
        return importlib.import_module(self.generator)


DATASETS: dict[str, DatasetSpec] = {
    spec.key: spec
    for spec in (
        DatasetSpec("ssdd", "SSDD", "sardata.datasets.ssdd:SSDDImporter", "sardata.synth.ssdd", 12,
                    "Official-SSDD ship detection (BBox/RBox/PSeg VOC-style and COCO-style)."),
        DatasetSpec("opensarship", "OpenSARShip", "sardata.datasets.opensarship:OpenSARShipImporter",
                    "sardata.synth.opensarship", None, "OpenSARShip Sentinel-1 ship chips with AIS."),
        DatasetSpec("fusar", "FUSARShip", "sardata.datasets.fusar:FUSARShipImporter", "sardata.synth.fusar", 12,
                    "FUSAR-Ship Gaofen-3 ship chips."),
        DatasetSpec("whu_opt_sar", "WHUOptSar", "sardata.datasets.whu_opt_sar:WHUOptSarImporter",
                    "sardata.synth.whu_opt_sar", 2,
                    "WHU-OPT-SAR land-cover segmentation tiles, sliced into patches."),
        DatasetSpec("sar_aircraft", "SARAircraft", "sardata.datasets.sar_aircraft:SARAircraftImporter",
                    "sardata.synth.sar_aircraft", 6, "SAR-AIRcraft-1.0 fine-grained aircraft detection."),
    )
}


def get(key: str) -> DatasetSpec:
    """The row of dataset ``key``.

    Raises:
        ValueError: unknown key (the message lists the known ones).
    """
    try:
        return DATASETS[key]
    except KeyError:
        raise ValueError(f"unknown dataset {key!r}; expected one of {sorted(DATASETS)}") from None

"""FiftyOne dataset types of the five SAR datasets, so ``fo.Dataset.from_dir(root, dataset_type=sardata.types.SSDD)``.

Importer classes are imported inside the methods, as FiftyOne's own ``fiftyone/types/dataset_types.py`` does, so
importing this module stays cheap.
"""

import fiftyone.types as fot


class SSDD(fot.Dataset):
    """Official-SSDD ship detection (BBox/RBox/PSeg VOC-style and COCO-style). See :mod:`sardata.datasets.ssdd`."""

    def get_dataset_importer_cls(self):
        from sardata.datasets.ssdd import SSDDImporter

        return SSDDImporter


class OpenSARShip(fot.Dataset):
    """OpenSARShip Sentinel-1 ship chips with AIS. See :mod:`sardata.datasets.opensarship`."""

    def get_dataset_importer_cls(self):
        from sardata.datasets.opensarship import OpenSARShipImporter

        return OpenSARShipImporter


class FUSARShip(fot.Dataset):
    """FUSAR-Ship Gaofen-3 ship chips. See :mod:`sardata.datasets.fusar`."""

    def get_dataset_importer_cls(self):
        from sardata.datasets.fusar import FUSARShipImporter

        return FUSARShipImporter


class WHUOptSar(fot.Dataset):
    """WHU-OPT-SAR land-cover segmentation tiles, sliced into patches. See :mod:`sardata.datasets.whu_opt_sar`."""

    def get_dataset_importer_cls(self):
        from sardata.datasets.whu_opt_sar import WHUOptSarImporter

        return WHUOptSarImporter


class SARAircraft(fot.Dataset):
    """SAR-AIRcraft-1.0 fine-grained aircraft detection. See :mod:`sardata.datasets.sar_aircraft`."""

    def get_dataset_importer_cls(self):
        from sardata.datasets.sar_aircraft import SARAircraftImporter

        return SARAircraftImporter

"""sardata: a data engine for synthetic aperture radar (SAR) computer vision on FiftyOne.

``sardata.load("ssdd", root)`` ingests a dataset; ``sardata.types`` holds the FiftyOne dataset types.
"""

__version__ = "0.1.0"


def load(key, root, name=None, overwrite=False, strict=False, progress=None, **importer_kwargs):
    """Ingests a dataset into a persistent FiftyOne dataset; see :func:`sardata.datasets.load`."""
    from sardata.datasets import load as _load

    return _load(key, root, name=name, overwrite=overwrite, strict=strict, progress=progress, **importer_kwargs)


def __getattr__(attr):
    if attr == "types":  # lazy: importing fiftyone takes seconds
        import importlib

        return importlib.import_module("sardata.types")
    raise AttributeError(attr)

"""sardata: a data engine for synthetic aperture radar (SAR) computer vision on FiftyOne.

``sardata.load("ssdd", root)`` ingests a dataset; ``sardata.types`` holds the FiftyOne dataset types. Importing
sardata registers its ``"faiss"`` similarity backend with fiftyone-brain (lazily: see :mod:`sardata._similarity`),
so ``fob.compute_similarity(ds, embeddings=..., backend="faiss")`` works after ``import sardata``.
"""

from sardata._similarity import register_when_brain_is_imported as _register_faiss

__version__ = "0.1.0"

_register_faiss()


def load(key, root, name=None, overwrite=False, strict=False, progress=None, **importer_kwargs):
    """Ingests a dataset into a persistent FiftyOne dataset; see :func:`sardata.datasets.load`."""
    from sardata.datasets import load as _load

    return _load(key, root, name=name, overwrite=overwrite, strict=strict, progress=progress, **importer_kwargs)


def __getattr__(attr):
    if attr == "types":  # lazy: importing fiftyone takes seconds
        import importlib

        return importlib.import_module("sardata.types")
    raise AttributeError(attr)

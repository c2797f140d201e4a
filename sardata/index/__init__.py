"""FAISS index and the ``"faiss"`` fiftyone-brain similarity backend.

``import sardata`` registers the backend in the running process (as soon as ``fiftyone.brain`` is imported; see
:mod:`sardata._similarity`)::

    import fiftyone.brain as fob
    import sardata  # noqa: F401

    fob.compute_similarity(dataset, embeddings="dcgan_embedding", backend="faiss", brain_key="faiss_dcgan")

Other processes find the backend in one of two ways (both used by :func:`backend_env` for the App server):

- ``~/.fiftyone/brain_config.json`` (or the file named by ``FIFTYONE_BRAIN_CONFIG_PATH``)::

      {"similarity_backends": {"faiss": {"config_cls": "sardata.index.faiss.FaissSimilarityConfig"}}}

- environment variables ``FIFTYONE_BRAIN_SIMILARITY_BACKENDS=*,faiss`` (the ``*`` keeps the built-in backends) and
  ``FIFTYONE_BRAIN_SIMILARITY_FAISS_CONFIG_CLS=sardata.index.faiss.FaissSimilarityConfig``.

Reloading an existing run needs neither: fiftyone imports the stored config class path directly, so it only needs
``sardata`` to be importable (it is, once installed).

Modules: :mod:`~sardata.index.build` (index factory), :mod:`~sardata.index.tune` (kind and search parameters
from a recall target), :mod:`~sardata.index.refine` (IVF-PQ + refine), :mod:`~sardata.index.faiss` (the backend),
:mod:`~sardata.index.duplicates` (near/exact duplicates).
"""

from __future__ import annotations

from sardata._similarity import BACKEND_NAME, CONFIG_CLS, register_backend  # noqa: F401  (public here)


def backend_env(environ=None) -> dict:
    """Environment variables that register the backend in child processes (e.g. the FiftyOne App server).

    Keeps any backends already listed in ``FIFTYONE_BRAIN_SIMILARITY_BACKENDS`` and the built-ins (``*``).
    """
    import os

    environ = os.environ if environ is None else environ
    listed = [b for b in environ.get("FIFTYONE_BRAIN_SIMILARITY_BACKENDS", "*").split(",") if b]
    if "*" not in listed and "FIFTYONE_BRAIN_SIMILARITY_BACKENDS" not in environ:
        listed.append("*")
    if BACKEND_NAME not in listed:
        listed.append(BACKEND_NAME)
    return {
        "FIFTYONE_BRAIN_SIMILARITY_BACKENDS": ",".join(listed),
        "FIFTYONE_BRAIN_SIMILARITY_FAISS_CONFIG_CLS": CONFIG_CLS,
    }


def compute_index(
    samples,
    embedding_field: str = "dcgan_embedding",
    brain_key: str = "faiss_dcgan",
    metric: str = "cosine",
    kind: str = "auto",
    overwrite: bool = False,
    backend: str = BACKEND_NAME,
    **config_kwargs,
):
    """Builds the similarity index of ``samples`` from the vectors in ``embedding_field``.

    Samples without a value are left out (with a warning). The vectors are passed as an array, so the field is only
    read, never rewritten.

    Args:
        samples: a FiftyOne dataset or view.
        embedding_field ("dcgan_embedding"): field with one vector per sample (``sardata embed extract``).
        brain_key ("faiss_dcgan"): brain key of the similarity run.
        metric ("cosine"): ``cosine`` or ``euclidean``.
        kind ("auto"): FAISS only: ``auto``, ``flat``, ``hnsw``, ``ivf`` or ``ivfpq`` (``auto`` and the search
            parameters are chosen by measured recall, ``recall_target`` 0.95 by default).
        overwrite (False): delete an existing run (and its files) with the same key first.
        backend ("faiss"): any fiftyone-brain similarity backend (``sklearn``, ``lancedb``, ``milvus``, ...): the
            run is then that backend's, configured by ``config_kwargs`` and fiftyone-brain's own brain config.
        **config_kwargs: more config arguments of the backend (FAISS: ``recall_target``, ``nprobe``, ...).

    Returns:
        the similarity index (a :class:`~sardata.index.faiss.FaissSimilarityIndex` for FAISS).
    """
    import warnings

    import numpy as np
    import fiftyone.brain as fob

    register_backend()
    dataset = samples._dataset
    if backend not in fob.brain_config.similarity_backends:
        raise ValueError(f"unknown similarity backend {backend!r}; available: "
                         f"{sorted(fob.brain_config.similarity_backends)}")
    if not samples.has_field(embedding_field):
        raise ValueError(
            f"dataset {dataset.name!r} has no field {embedding_field!r}: compute it first "
            f"(`sardata embed extract {dataset.name} --model {embedding_field.split('_')[0]}`)"
        )
    if brain_key in dataset.list_brain_runs():
        if not overwrite:
            raise ValueError(f"brain key {brain_key!r} already exists on {dataset.name!r}; use overwrite")
        dataset.delete_brain_run(brain_key)
    view = samples.exists(embedding_field)
    missing = len(samples) - len(view)
    if missing:
        warnings.warn(f"{missing} samples have no {embedding_field!r} and are not indexed")
    if len(view) == 0:
        raise ValueError(f"no sample of {dataset.name!r} has a value in {embedding_field!r}")
    vectors = np.stack([np.asarray(v, dtype=np.float32).ravel() for v in view.values(embedding_field)])
    if backend == BACKEND_NAME:
        config_kwargs["index_kind"] = kind
    elif kind not in ("auto", None):
        raise ValueError(f"--kind {kind!r} is a FAISS option; backend {backend!r} chooses its own index")
    return fob.compute_similarity(
        view,
        embeddings=vectors,
        backend=backend,
        brain_key=brain_key,
        metric=metric,
        progress=False,
        **config_kwargs,
    )


def __getattr__(attr):
    # lazy: `import sardata.index` must not import faiss/fiftyone.brain machinery until it is used
    if attr in ("FaissSimilarityConfig", "FaissSimilarity", "FaissSimilarityIndex"):
        from sardata.index import faiss as _backend

        return getattr(_backend, attr)
    if attr in ("find_near_duplicates", "exact_duplicates"):
        from sardata.index import duplicates as _duplicates

        return getattr(_duplicates, attr)
    if attr in ("make_index", "build_index"):
        from sardata.index import build as _build

        return getattr(_build, attr)
    raise AttributeError(attr)

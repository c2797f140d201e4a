"""FAISS similarity backend for fiftyone-brain, registered as ``"faiss"`` (see :mod:`sardata.index`).

Usage::

    import fiftyone.brain as fob
    import sardata  # registers the backend

    index = fob.compute_similarity(dataset, embeddings="dcgan_embedding", backend="faiss", brain_key="faiss_dcgan")
    view = dataset.sort_by_similarity(dataset.first().id, k=10, brain_key="faiss_dcgan")

Design (see also :mod:`sardata.index.build`):

- The index lives on disk, not in the database: ``work_dir(dataset, "index")/<brain_key>.faiss`` plus
  ``<brain_key>.ids.npy`` (a structured array: FAISS int64 id, sample id, label id). Their path is the public config
  attribute ``index_path``, so a fresh process (or the App server) reloads the index from the brain run alone.
  fiftyone's run results would otherwise serialize only ``cls``, and arrays in GridFS would be reread on every load.
- The kind (flat / HNSW / IVF / IVF-PQ + refine) and its search parameters are chosen at the first
  :meth:`~FaissSimilarityIndex.add_to_index` from ``recall_target``, measured on held-out queries
  (:mod:`sardata.index.tune`); the choice and the measured recall are stored in the run's config (``tuning``).
  They are not re-measured on later adds: rebuild (``sardata index --overwrite``) to re-tune. IVF-PQ + refine keeps
  its id map in ``<brain_key>.refine.npz`` and its exact vectors in ``<brain_key>.refine-<token>.npy`` beside the
  ``.faiss`` file (:mod:`sardata.index.refine`).
- Sync on add/remove uses FAISS's own ids instead of rebuilding (HNSW excepted: FAISS cannot remove from its graph,
  so a removal rebuilds it, see :func:`sardata.index.build.remove_ids`): each indexed sample gets an int64 id, stored
  ascending and aligned with ``sample_ids``. Flat indexes are wrapped in ``IndexIDMap2``; IVF indexes keep ids
  themselves with a hash-table direct map. Removal is ``remove_ids`` and an overwrite is remove + ``add_with_ids``
  under the same id, so nothing is re-trained or re-added. An IVF index keeps the lists it was trained with: after
  the collection grows by an order of magnitude, rebuild it (``sardata index --overwrite``) to re-balance them.
- ``metric="cosine"`` stores L2-normalised vectors in an inner-product index; distances are ``1 - cosine``.
  ``metric="euclidean"`` stores raw vectors in an L2 index; distances are Euclidean (not squared).
  :meth:`get_embeddings` therefore returns unit vectors for cosine (the stored vectors, IVF-PQ included).
- Files are written atomically (:mod:`sardata._io`), ids first, index second; a reader that finds the
  two out of step (different counts) raises an error naming both files.
- ``delete_brain_run`` calls :meth:`FaissSimilarity.cleanup`, which deletes the files.
"""

from __future__ import annotations

import logging
import os

import numpy as np

import eta.core.utils as etau
import fiftyone.core.utils as fou
from fiftyone.brain.similarity import DuplicatesMixin, Similarity, SimilarityConfig, SimilarityIndex
import fiftyone.brain.internal.core.utils as fbu

from sardata._io import save_npy
from sardata.index import build
from sardata.index.files import default_index_path, delete_index_files, ids_path_for  # noqa: F401  (public here)
from sardata.runtime import faiss_use_gpu

faiss = fou.lazy_import("faiss")

logger = logging.getLogger(__name__)

_AGGREGATIONS = ("mean",)


class FaissSimilarityConfig(SimilarityConfig):
    """Configuration of the FAISS similarity backend.

    Every public attribute is persisted with the brain run and is an ``__init__`` argument (fiftyone rebuilds the
    config with ``cls(**attributes)``).

    Args:
        metric ("cosine"): ``cosine`` (inner product on L2-normalised vectors) or ``euclidean``.
        index_path (None): the ``.faiss`` file; by default ``work_dir(dataset, "index")/<brain_key>.faiss``, chosen
            when the index is created. ``None`` with ``brain_key=None`` keeps the index in memory only.
        index_kind ("auto"): ``auto``, ``flat``, ``hnsw``, ``ivf`` or ``ivfpq`` (IVF-PQ + refine); ``auto`` is chosen
            by measured recall (:mod:`sardata.index.tune`).
        recall_target (0.95): recall@10 the kind and its search parameters must reach on held-out queries.
        nprobe (None): IVF lists visited per query; ``None``: tuned to ``recall_target``.
        ef_search (None): HNSW search beam; ``None``: tuned.
        k_factor (None): IVF-PQ + refine candidates per result; ``None``: tuned.
        gpu ("auto"): search on a GPU clone when faiss sees a GPU (flat and IVF); ``False`` forces CPU.
        flat_max (FLAT_MAX): ``auto`` builds an exact index below this many vectors.
        memory_mib (MEMORY_MIB): ``auto`` builds IVF-PQ + refine when float32 vectors would take more.
        tuning (None): what the build chose and measured (kind, params, recall_at_k, queries, ...), set by the
            first :meth:`FaissSimilarityIndex.add_to_index`; shown by ``sardata index``.
        ivfpq_min (None): ignored (runs stored before tuning existed carry it).
        **kwargs: :class:`fiftyone.brain.similarity.SimilarityConfig` arguments (``embeddings_field``, ...).
    """

    def __init__(
        self,
        metric="cosine",
        index_path=None,
        index_kind="auto",
        nprobe=None,
        gpu="auto",
        flat_max=build.FLAT_MAX,
        recall_target=0.95,
        ef_search=None,
        k_factor=None,
        memory_mib=build.MEMORY_MIB,
        tuning=None,
        ivfpq_min=None,
        **kwargs,
    ):
        build.check_metric(metric)
        build.choose_kind(0, index_kind)  # validates the name
        if nprobe is not None and int(nprobe) < 1:
            raise ValueError(f"nprobe must be >= 1, got {nprobe}")
        if not 0 < float(recall_target) <= 1:
            raise ValueError(f"recall_target must be in (0, 1], got {recall_target}")
        super().__init__(**kwargs)
        self.metric = metric
        self.index_path = str(index_path) if index_path is not None else None
        self.index_kind = index_kind
        self.nprobe = int(nprobe) if nprobe is not None else None
        self.gpu = gpu
        self.flat_max = int(flat_max)
        self.recall_target = float(recall_target)
        self.ef_search = int(ef_search) if ef_search is not None else None
        self.k_factor = int(k_factor) if k_factor is not None else None
        self.memory_mib = float(memory_mib)
        self.tuning = dict(tuning) if tuning is not None else None

    @property
    def method(self):
        return "faiss"

    @property
    def max_k(self):
        return None

    @property
    def supports_least_similarity(self):
        return True

    @property
    def supported_aggregations(self):
        return _AGGREGATIONS

    @property
    def ids_path(self):
        """The ``<brain_key>.ids.npy`` file beside :attr:`index_path` (None without one)."""
        return ids_path_for(self.index_path) if self.index_path else None


class FaissSimilarity(Similarity):
    """FAISS similarity factory.

    Args:
        config: a :class:`FaissSimilarityConfig`.
    """

    def ensure_requirements(self):
        # the pip name is faiss-cpu (or faiss-gpu), so ensure the module, not a package name
        fou.ensure_import("faiss")

    def ensure_usage_requirements(self):
        fou.ensure_import("faiss")

    def initialize(self, samples, brain_key):
        return FaissSimilarityIndex(samples, self.config, brain_key, backend=self, fresh=True)

    def cleanup(self, samples, brain_key):
        # delete_brain_run() builds the run from its stored config and calls this, not the index's cleanup()
        delete_index_files(self.config.index_path)


class FaissSimilarityIndex(SimilarityIndex, DuplicatesMixin):
    """A FAISS index of sample (or label) embeddings, persisted beside the dataset.

    Args:
        samples: the :class:`fiftyone.core.collections.SampleCollection` indexed.
        config: the :class:`FaissSimilarityConfig` used.
        brain_key: the brain key (None: in memory only).
        backend (None): a :class:`FaissSimilarity`.
        fresh (False): a new index (``initialize``): files left at its path by an earlier run of the same key
            (e.g. a dataset deleted and re-created under the same name) are deleted instead of loaded.
    """

    def __init__(self, samples, config, brain_key, backend=None, fresh=False):
        self._dataset = samples._dataset
        self._index = None  # CPU master copy: add/remove/reconstruct and what is written to disk
        self._search_index = None  # GPU clone when one is used, else the master
        self._faiss_ids = np.empty(0, dtype=np.int64)  # ascending, aligned with _sample_ids
        self._sample_ids = np.empty(0, dtype="<U24")
        self._label_ids = np.empty(0, dtype="<U24") if config.patches_field is not None else None
        self._loaded_mtime = None
        self._ids_to_inds = None
        self._curr_pos_to_inds = None
        SimilarityIndex.__init__(self, samples, config, brain_key, backend=backend)
        DuplicatesMixin.__init__(self)

        if config.index_path is None and brain_key is not None:
            config.index_path = default_index_path(samples._root_dataset.name, brain_key)
            try:
                self.save_config()
            except ValueError:  # not registered (initialize() called directly): the path lives in this config only
                pass
        if fresh:
            stale = delete_index_files(config.index_path)
            if stale:
                logger.warning("Deleted stale FAISS index files of an earlier run: %s", stale)
        elif config.index_path is not None and os.path.exists(config.index_path):
            self._load()

    # -- properties ------------------------------------------------------------------------------------------

    @property
    def is_external(self):
        return True  # the index manages its own vectors (on disk), whether or not a field holds them too

    @property
    def sample_ids(self):
        return self._sample_ids

    @property
    def label_ids(self):
        return self._label_ids

    @property
    def total_index_size(self):
        return len(self._sample_ids)

    @property
    def faiss_index(self):
        """The underlying (CPU) FAISS index, or None before the first :meth:`add_to_index`."""
        return self._index

    @property
    def index_kind(self):
        """``flat``, ``hnsw``, ``ivf`` or ``ivfpq`` (None while empty)."""
        return build.index_kind(self._index) if self._index is not None else None

    # -- persistence -----------------------------------------------------------------------------------------

    def _load(self):
        path, ids_path = self.config.index_path, self.config.ids_path
        if not os.path.exists(ids_path):
            raise FileNotFoundError(f"FAISS index {path} has no ids file {ids_path}; rebuild it (sardata index)")
        index = build.read_index(path)
        ids = np.load(ids_path, allow_pickle=False)
        if index.ntotal != len(ids):
            raise ValueError(
                f"FAISS index {path} holds {index.ntotal} vectors but {ids_path} lists {len(ids)} ids; "
                "the files are out of step (interrupted write?): rebuild the index"
            )
        self._index = index
        self._faiss_ids = ids["faiss_id"].astype(np.int64)
        self._sample_ids = ids["sample_id"]
        self._label_ids = ids["label_id"] if self.config.patches_field is not None else None
        self._loaded_mtime = os.path.getmtime(path)
        self._changed()

    def _save(self):
        path = self.config.index_path
        if path is None or self._index is None:
            return
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        width = max(24, _str_width(self._sample_ids), _str_width(self._label_ids))
        dtype = [("faiss_id", "<i8"), ("sample_id", f"<U{width}"), ("label_id", f"<U{width}")]
        ids = np.zeros(len(self._faiss_ids), dtype=dtype)
        ids["faiss_id"] = self._faiss_ids
        ids["sample_id"] = self._sample_ids
        if self._label_ids is not None:
            ids["label_id"] = self._label_ids
        save_npy(self.config.ids_path, ids)
        build.write_index(self._index, path)
        self._loaded_mtime = os.path.getmtime(path)

    def reload(self):
        """Re-reads the index from disk if another process rewrote it, then refreshes the current view."""
        path = self.config.index_path
        if path is not None and os.path.exists(path) and os.path.getmtime(path) != self._loaded_mtime:
            self._load()
        super().reload()

    def cleanup(self):
        """Deletes the index files and empties this index."""
        delete_index_files(self.config.index_path)
        self._index = None
        self._faiss_ids = np.empty(0, dtype=np.int64)
        self._sample_ids = np.empty(0, dtype="<U24")
        if self._label_ids is not None:
            self._label_ids = np.empty(0, dtype="<U24")
        self._changed()

    def _changed(self):
        self._search_index = None
        self._ids_to_inds = None
        self._curr_pos_to_inds = None

    # -- modification ----------------------------------------------------------------------------------------

    def add_to_index(
        self,
        embeddings,
        sample_ids,
        label_ids=None,
        overwrite=True,
        allow_existing=True,
        warn_existing=False,
        reload=True,
    ):
        sample_ids = np.asarray(sample_ids)
        label_ids = np.asarray(label_ids) if label_ids is not None else None
        embeddings = np.asarray(embeddings)
        if embeddings.ndim != 2 or len(embeddings) != len(sample_ids):
            raise ValueError(
                f"embeddings must be a {len(sample_ids)} x dim array (one row per id), got shape {embeddings.shape}"
            )
        n = len(self._sample_ids)
        new_sample_ids, new_label_ids, ii, jj = fbu.add_ids(
            sample_ids,
            label_ids,
            self._sample_ids,
            self._label_ids,
            patches_field=self.config.patches_field,
            overwrite=overwrite,
            allow_existing=allow_existing,
            warn_existing=warn_existing,
        )
        if ii.size == 0:
            return
        x = build.prepare(embeddings[ii], self.config.metric)
        if self._index is not None and self._index.d != x.shape[1]:
            raise ValueError(f"embeddings have {x.shape[1]} dims but index {self.key!r} holds {self._index.d}")

        if self.config.embeddings_field is not None:
            fbu.add_embeddings(
                self._dataset,
                embeddings[ii],
                sample_ids[ii],
                label_ids[ii] if label_ids is not None else None,
                self.config.embeddings_field,
                patches_field=self.config.patches_field,
            )

        existing = jj < n
        next_id = int(self._faiss_ids[-1]) + 1 if n else 0
        fids = np.empty(len(jj), dtype=np.int64)
        fids[existing] = self._faiss_ids[jj[existing]]
        fids[~existing] = next_id + (jj[~existing] - n)
        if self._index is None:  # first vectors: choose the kind and its search parameters by measured recall
            self._build(x, fids)
        else:
            if existing.any():  # overwrite: same FAISS id, new vector
                self._index = build.remove_ids(self._index, fids[existing])
            self._index.add_with_ids(x, np.ascontiguousarray(fids))
        num_new = int(jj.max()) - n + 1
        if num_new > 0:
            self._faiss_ids = np.concatenate([self._faiss_ids, next_id + np.arange(num_new, dtype=np.int64)])
        self._sample_ids = new_sample_ids
        self._label_ids = new_label_ids
        self._changed()
        self._save()
        if reload:
            SimilarityIndex.reload(self)

    def _build(self, x, fids):
        from sardata.index import tune

        c = self.config
        self._index, c.tuning = tune.build(
            x, fids, metric=c.metric, kind=c.index_kind, recall_target=c.recall_target, flat_max=c.flat_max,
            memory_mib=c.memory_mib, nprobe=c.nprobe, ef_search=c.ef_search, k_factor=c.k_factor,
        )
        if self.key is not None:
            try:
                self.save_config()
            except ValueError:  # not registered (initialize() called directly)
                pass

    def remove_from_index(
        self,
        sample_ids=None,
        label_ids=None,
        allow_missing=True,
        warn_missing=False,
        reload=True,
    ):
        new_sample_ids, new_label_ids, rm_inds = fbu.remove_ids(
            sample_ids,
            label_ids,
            self._sample_ids,
            self._label_ids,
            patches_field=self.config.patches_field,
            allow_missing=allow_missing,
            warn_missing=warn_missing,
        )
        if rm_inds.size == 0:
            return
        rm_inds = rm_inds.astype(np.int64)
        self._index = build.remove_ids(self._index, self._faiss_ids[rm_inds])
        self._faiss_ids = np.delete(self._faiss_ids, rm_inds)
        self._sample_ids = new_sample_ids
        self._label_ids = new_label_ids
        self._changed()
        self._save()
        if reload:
            SimilarityIndex.reload(self)

    def use_view(self, *args, **kwargs):
        self._curr_pos_to_inds = None
        return super().use_view(*args, **kwargs)

    # -- reading ---------------------------------------------------------------------------------------------

    def _vectors(self, positions) -> np.ndarray:
        """Stored vectors at index positions (normalised for cosine; PQ-decoded for IVF-PQ)."""
        positions = np.asarray(positions, dtype=np.int64)
        if positions.size == 0:
            dim = self._index.d if self._index is not None else 0
            return np.empty((0, dim), dtype=np.float32)
        return self._index.reconstruct_batch(np.ascontiguousarray(self._faiss_ids[positions]))

    def get_embeddings(self, sample_ids=None, label_ids=None, allow_missing=True, warn_missing=False):
        if label_ids is not None:
            if self.config.patches_field is None:
                raise ValueError("This index does not support label IDs")
            if sample_ids is not None:
                logger.warning("Ignoring sample IDs when label IDs are provided")
            inds = _get_inds(label_ids, self._label_ids, "label", allow_missing, warn_missing)
        elif sample_ids is not None:
            if etau.is_str(sample_ids):
                sample_ids = [sample_ids]
            if self.config.patches_field is not None:
                wanted = set(sample_ids)
                inds = np.nonzero([_id in wanted for _id in self._sample_ids])[0]
            else:
                inds = _get_inds(sample_ids, self._sample_ids, "sample", allow_missing, warn_missing)
        else:
            inds = np.arange(len(self._sample_ids))
        embeddings = self._vectors(inds)
        out_label_ids = self._label_ids[inds] if self._label_ids is not None else None
        return embeddings, self._sample_ids[inds].copy(), out_label_ids

    def _get_ids_to_inds(self):
        if self._ids_to_inds is None:
            ids = self._label_ids if self.config.patches_field is not None else self._sample_ids
            self._ids_to_inds = {_id: i for i, _id in enumerate(ids)}
        return self._ids_to_inds

    def _pos_to_current(self):
        """Array mapping full-index positions to indices in the current view (-1 outside it)."""
        if self._curr_pos_to_inds is None:
            keep = self._current_inds
            if keep is None:
                self._curr_pos_to_inds = np.arange(len(self._sample_ids), dtype=np.int64)
            else:
                mapping = np.full(len(self._sample_ids), -1, dtype=np.int64)
                mapping[np.asarray(keep, dtype=np.int64)] = np.arange(len(keep), dtype=np.int64)
                self._curr_pos_to_inds = mapping
        return self._curr_pos_to_inds

    def _parse_neighbors_query(self, query):
        """→ (query vectors, query current indices or None, full_index, single_query)."""
        if query is None:
            keep = self._current_inds
            positions = np.arange(len(self._sample_ids)) if keep is None else np.asarray(keep)
            return self._vectors(positions), np.arange(len(positions)), True, False
        if etau.is_str(query):
            query_ids, single = [query], True
        else:
            query = np.asarray(query)
            if np.issubdtype(query.dtype, np.number):
                single = query.ndim == 1
                return build.prepare(query, self.config.metric), None, False, single
            query_ids, single = list(query), False
        ids_to_inds = self._get_ids_to_inds()
        bad_ids = [_id for _id in query_ids if _id not in ids_to_inds]
        if bad_ids:
            raise ValueError("Query IDs %s do not exist in this index" % bad_ids)
        positions = np.array([ids_to_inds[_id] for _id in query_ids], dtype=np.int64)
        return self._vectors(positions), None, False, single

    def _searcher(self, restricted):
        """The index to search: a GPU clone when available and no id filter is needed, else the CPU master."""
        if restricted or not faiss_use_gpu(self.config.gpu):
            return self._index
        if self._search_index is None:
            self._search_index = build.to_gpu(self._index)
        return self._search_index

    def _search_params(self):
        """(search parameters restricting to the current view or None, restricted?)."""
        keep = self._current_inds
        if keep is None:
            return None, False
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(self._faiss_ids[np.asarray(keep, dtype=np.int64)]))
        kind = build.index_kind(self._index)
        if kind == "flat":
            params = faiss.SearchParameters(sel=selector)
        elif kind == "hnsw":
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=build.search_params(self._index)["ef_search"])
        else:
            params = faiss.SearchParametersIVF(sel=selector, nprobe=build.search_params(self._index)["nprobe"])
        params._sardata_selector = selector  # keep the selector alive while FAISS uses it
        return params, True

    def _to_current(self, faiss_ids: np.ndarray) -> np.ndarray:
        """FAISS ids (-1 = no result) → current-view indices (-1 = none/outside the view)."""
        out = np.full(faiss_ids.shape, -1, dtype=np.int64)
        if len(self._faiss_ids) == 0:
            return out
        pos = np.clip(np.searchsorted(self._faiss_ids, faiss_ids), 0, len(self._faiss_ids) - 1)
        valid = (faiss_ids >= 0) & (self._faiss_ids[pos] == faiss_ids)
        out[valid] = self._pos_to_current()[pos[valid]]
        return out

    def _to_dists(self, scores: np.ndarray) -> np.ndarray:
        if self.config.metric == "cosine":
            return 1.0 - scores  # inner product of unit vectors = cosine similarity
        return np.sqrt(np.maximum(scores, 0.0))  # faiss L2 returns squared distances

    def _kneighbors(self, query=None, k=None, reverse=False, aggregation=None, return_dists=False):
        if aggregation is not None and aggregation not in _AGGREGATIONS:
            raise ValueError(f"Unsupported aggregation method {aggregation!r}. Supported values are {_AGGREGATIONS}")
        if aggregation is not None and query is None:
            raise ValueError("Full index queries do not support aggregation")
        vectors, self_inds, full_index, single_query = self._parse_neighbors_query(query)
        if aggregation == "mean":
            vectors = build.prepare(vectors.mean(axis=0, keepdims=True), self.config.metric)
            single_query = True
        num_current = self.index_size
        if self._index is None or num_current == 0 or len(vectors) == 0:
            return self._format_output([[] for _ in vectors], [[] for _ in vectors], full_index, single_query,
                                       return_dists)
        k = num_current if k is None else min(int(k), num_current)
        params, restricted = self._search_params()
        index = self._searcher(restricted)
        extra = 1 if full_index else 0
        if reverse and self.config.metric == "cosine":
            # the least similar to q are the most similar to -q
            scores, fids = index.search(-vectors, min(k + extra, num_current), params=params)
            scores = -scores
        elif reverse:
            # L2 has no "farthest" search: rank everything, then read from the far end
            scores, fids = index.search(vectors, num_current, params=params)
            scores, fids = scores[:, ::-1], fids[:, ::-1]
        else:
            scores, fids = index.search(vectors, min(k + extra, num_current), params=params)
        inds, dists = [], []
        current = self._to_current(fids)
        for row in range(len(vectors)):
            keep = current[row] >= 0
            if full_index:
                keep &= current[row] != self_inds[row]
            inds.append(current[row][keep][:k])
            dists.append(self._to_dists(scores[row][keep][:k]))
        return self._format_output(inds, dists, full_index, single_query, return_dists)

    def _radius_neighbors(self, query=None, thresh=None, return_dists=False):
        vectors, self_inds, full_index, single_query = self._parse_neighbors_query(query)
        if self._index is None or len(vectors) == 0:
            return self._format_output([[] for _ in vectors], [[] for _ in vectors], full_index, single_query,
                                       return_dists)
        thresh = float(thresh)
        # FAISS keeps IP scores > radius and squared L2 < radius; nudge so that dist == thresh is included
        if self.config.metric == "cosine":
            radius = 1.0 - thresh - 1e-6
        else:
            radius = thresh * thresh + 1e-6
        params, restricted = self._search_params()
        lims, scores, fids = self._index.range_search(vectors, radius, params=params)
        current = self._to_current(fids)
        inds, dists = [], []
        for row in range(len(vectors)):
            lo, hi = lims[row], lims[row + 1]
            cur, sc = current[lo:hi], scores[lo:hi]
            keep = cur >= 0
            if full_index:
                keep &= cur != self_inds[row]
            order = np.argsort(self._to_dists(sc[keep]), kind="stable")
            inds.append(cur[keep][order])
            dists.append(self._to_dists(sc[keep])[order])
        return self._format_output(inds, dists, full_index, single_query, return_dists)

    def _format_output(self, inds, dists, full_index, single_query, return_dists):
        if full_index:
            return (inds, dists) if return_dists else inds
        curr_sample_ids = self.current_sample_ids
        sample_ids = [[str(curr_sample_ids[i]) for i in _inds] for _inds in inds]
        label_ids = None
        if self.config.patches_field is not None:
            curr_label_ids = self.current_label_ids
            label_ids = [[str(curr_label_ids[i]) for i in _inds] for _inds in inds]
        if single_query:
            sample_ids = sample_ids[0] if sample_ids else []
            if label_ids is not None:
                label_ids = label_ids[0] if label_ids else []
        if return_dists:
            dists = [[float(d) for d in _d] for _d in dists]
            if single_query:
                dists = dists[0] if dists else []
            return sample_ids, label_ids, dists
        return sample_ids, label_ids

    @classmethod
    def _from_dict(cls, d, samples, config, brain_key):
        index = cls(samples, config, brain_key)
        if config.index_path is not None and not os.path.exists(config.index_path):
            logger.warning("FAISS index file %s is missing; the index %r is empty", config.index_path, brain_key)
        return index


def _get_inds(ids, index_ids, ftype, allow_missing, warn_missing):
    if etau.is_str(ids):
        ids = [ids]
    ids_map = {_id: i for i, _id in enumerate(index_ids)}
    inds = [ids_map[_id] for _id in ids if _id in ids_map]
    num_missing = len(ids) - len(inds)
    if num_missing:
        if not allow_missing:
            raise ValueError(f"Found {num_missing} {ftype} IDs that are not present in the index")
        if warn_missing:
            logger.warning("Ignoring %d %s IDs that are not present in the index", num_missing, ftype)
    return np.array(inds, dtype=np.int64)


def _str_width(ids) -> int:
    if ids is None or len(ids) == 0:
        return 0
    return int(np.char.str_len(np.asarray(ids, dtype=str)).max())

"""IVF-PQ with a compact refine stage: candidates from a coarse IVF-PQ, re-ranked with a finer residual code.

Why not faiss's ``IndexRefineFlat``: its refine store is the float32 vectors (1 KiB per 256-d vector, 1 GiB for
10⁶), and an SQ8 or fp16 store is still 256 or 512 bytes per vector — none fits the memory an IVF-PQ index is
chosen for. ``IndexIVFPQR`` (faiss's own residual refine) needs sequential ids and cannot remove. Here:

- **coarse**: ``IndexIVFPQ`` with ``m1 = dim/32`` sub-quantizers (8 bytes for 256-d) and no direct map, so any
  int64 ids and ``remove_ids`` work; it stores 8 + 8 bytes per vector (code + id);
- **refine store** (numpy, ascending faiss ids): the vector's IVF list (``uint16``) and a ``dim/8``-byte product
  code of its residual to that list's centroid (32 bytes for 256-d), plus the id (8 bytes): 42 bytes per vector.

A search takes ``k · k_factor`` candidates from the coarse index (its ``nprobe``) and re-ranks them with distances
to the decoded refine vectors (centroid + residual PQ). Everything is counted in :meth:`RefinedIVFPQ.nbytes`:
≈ 58 bytes per 256-d vector plus the centroids, ~60 MiB for 10⁶ vectors. Distances returned are those of the refine
codes (approximate), for ``search`` and ``range_search`` alike.
"""

from __future__ import annotations

import os

import numpy as np


def _faiss():
    import faiss

    return faiss


def refine_path_for(index_path) -> str:
    """``…/<key>.faiss`` → ``…/<key>.refine.npz`` (the refine store beside the coarse index)."""
    index_path = str(index_path)
    stem = index_path[: -len(".faiss")] if index_path.endswith(".faiss") else index_path
    return stem + ".refine.npz"


class RefinedIVFPQ:
    """IVF-PQ candidates re-ranked by a residual product code; quacks like the faiss indexes sardata uses.

    Args:
        coarse: an untrained or trained ``faiss.IndexIVFPQ`` (no direct map).
        refine_m: sub-quantizers of the refine code (bytes per vector at 8 bits).
        k_factor (16): candidates per result taken from the coarse index.
    """

    kind = "ivfpq"

    def __init__(self, coarse, refine_m: int, k_factor: int = 16, refine_nbits: int = 8):
        faiss = _faiss()
        self.coarse = coarse
        self.pq = faiss.ProductQuantizer(coarse.d, int(refine_m), int(refine_nbits))
        # 10 Lloyd iterations on ≤ 64 points per centroid: the sub-spaces are small, so more buys no recall
        self.pq.cp.niter, self.pq.cp.max_points_per_centroid, self.pq.cp.seed = 10, 64, 0
        self.k_factor = int(k_factor)
        self.ids = np.empty(0, dtype=np.int64)
        self.lists = np.empty(0, dtype=self._list_dtype())
        self.codes = np.empty((0, self.pq.code_size), dtype=np.uint8)
        self._centroids = None
        self._codebook = None

    # -- faiss-like attributes -------------------------------------------------------------------------------

    @property
    def d(self):
        return self.coarse.d

    @property
    def ntotal(self):
        return int(self.coarse.ntotal)

    @property
    def is_trained(self):
        return bool(self.coarse.is_trained)

    @property
    def metric_type(self):
        return self.coarse.metric_type

    @property
    def nprobe(self):
        return int(self.coarse.nprobe)

    @nprobe.setter
    def nprobe(self, value):
        self.coarse.nprobe = int(value)

    def _list_dtype(self):
        return np.uint16 if self.coarse.nlist <= np.iinfo(np.uint16).max else np.int32

    def _centroid_table(self) -> np.ndarray:
        if self._centroids is None:
            self._centroids = self.coarse.quantizer.reconstruct_n(0, self.coarse.nlist)
        return self._centroids

    def _assign(self, x: np.ndarray) -> np.ndarray:
        _, lists = self.coarse.quantizer.search(x, 1)
        return lists[:, 0]

    # -- building --------------------------------------------------------------------------------------------

    def train(self, x: np.ndarray) -> None:
        """Trains the coarse IVF-PQ, then the refine PQ on the residuals of ``x`` to their list centroids."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        self.coarse.train(x)
        self._centroids = None
        lists = self._assign(x)
        self.pq.train(np.ascontiguousarray(x - self._centroid_table()[lists]))
        self._codebook = None

    def add_with_ids(self, x: np.ndarray, ids: np.ndarray) -> None:
        x = np.ascontiguousarray(x, dtype=np.float32)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        lists = self._assign(x)
        codes = self.pq.compute_codes(np.ascontiguousarray(x - self._centroid_table()[lists]))
        self.coarse.add_with_ids(x, ids)
        all_ids = np.concatenate([self.ids, ids])
        all_lists = np.concatenate([self.lists, lists.astype(self.lists.dtype)])
        all_codes = np.concatenate([self.codes, codes])
        if len(self.ids) and len(ids) and ids.min() <= self.ids[-1]:
            order = np.argsort(all_ids, kind="stable")
            all_ids, all_lists, all_codes = all_ids[order], all_lists[order], all_codes[order]
        self.ids, self.lists, self.codes = all_ids, all_lists, all_codes

    def remove_ids(self, ids: np.ndarray) -> int:
        """Removes ``ids`` from the coarse lists and the refine store; returns how many were removed."""
        faiss = _faiss()
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        removed = self.coarse.remove_ids(faiss.IDSelectorArray(ids))
        keep = ~np.isin(self.ids, ids)
        self.ids, self.lists, self.codes = self.ids[keep], self.lists[keep], self.codes[keep]
        return int(removed)

    # -- reading ---------------------------------------------------------------------------------------------

    def _rows(self, ids: np.ndarray) -> np.ndarray:
        rows = np.clip(np.searchsorted(self.ids, ids), 0, max(len(self.ids) - 1, 0))
        if len(self.ids) == 0 or not np.array_equal(self.ids[rows], ids):
            missing = np.setdiff1d(ids, self.ids)
            raise KeyError(f"ids not in the index: {missing[:5].tolist()}")
        return rows

    def _decode_rows(self, rows: np.ndarray) -> np.ndarray:
        if len(rows) == 0:
            return np.empty((0, self.d), dtype=np.float32)
        residuals = self._decode_codes(self.codes[rows])
        return self._centroid_table()[self.lists[rows].astype(np.int64)] + residuals

    def _decode_codes(self, codes: np.ndarray) -> np.ndarray:
        """PQ-decoded residuals; small batches by table lookup in numpy (faiss's decode starts an OpenMP team,
        which costs milliseconds per single query on a busy machine)."""
        if len(codes) > 4096 or self.pq.nbits != 8:
            return self.pq.decode(np.ascontiguousarray(codes))
        if getattr(self, "_codebook", None) is None:
            faiss = _faiss()
            self._codebook = faiss.vector_to_array(self.pq.centroids).reshape(self.pq.M, self.pq.ksub, self.pq.dsub)
        parts = self._codebook[np.arange(self.pq.M)[None, :], codes.astype(np.intp)]  # n × M × dsub
        return parts.reshape(len(codes), self.d)

    def reconstruct_batch(self, ids) -> np.ndarray:
        """Refine-code approximations of the vectors with these ids (centroid + decoded residual)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        return self._decode_rows(self._rows(ids))

    def _scores(self, q: np.ndarray, fids: np.ndarray) -> np.ndarray:
        """Refine scores of candidates ``fids`` (nq × c, -1 = none): inner products, or squared L2."""
        faiss = _faiss()
        ip = self.metric_type == faiss.METRIC_INNER_PRODUCT
        valid = fids >= 0
        out = np.full(fids.shape, -np.inf if ip else np.inf, dtype=np.float32)
        if not valid.any():
            return out
        vec = self._decode_rows(self._rows(fids[valid]))
        qrep = np.repeat(q, valid.sum(axis=1), axis=0)
        out[valid] = (vec * qrep).sum(1) if ip else ((vec - qrep) ** 2).sum(1)
        return out

    def search(self, x, k, params=None, k_factor=None, batch=256):
        """Top ``k`` by refine distance among ``k · k_factor`` coarse candidates; like ``faiss.Index.search``."""
        faiss = _faiss()
        x = np.ascontiguousarray(x, dtype=np.float32)
        k = int(k)
        kk = int(min(max(k, k * (k_factor or self.k_factor)), max(self.ntotal, 1)))
        ip = self.metric_type == faiss.METRIC_INNER_PRODUCT
        dist = np.full((len(x), k), -np.inf if ip else np.inf, dtype=np.float32)
        labels = np.full((len(x), k), -1, dtype=np.int64)
        for start in range(0, len(x), batch):
            q = x[start:start + batch]
            _, cand = self.coarse.search(q, kk, params=params)
            scores = self._scores(q, cand)
            order = np.argsort(-scores if ip else scores, axis=1, kind="stable")[:, :k]
            take = min(k, order.shape[1])
            dist[start:start + len(q), :take] = np.take_along_axis(scores, order, 1)
            labels[start:start + len(q), :take] = np.take_along_axis(cand, order, 1)
        labels[~np.isfinite(dist)] = -1
        return dist, labels

    def range_search(self, x, radius, params=None):
        """Coarse range search, then kept by refine distance (IP > radius, squared L2 < radius)."""
        faiss = _faiss()
        x = np.ascontiguousarray(x, dtype=np.float32)
        lims, _, fids = self.coarse.range_search(x, radius, params=params)
        ip = self.metric_type == faiss.METRIC_INNER_PRODUCT
        out_lims, out_d, out_i = [0], [], []
        for row in range(len(x)):
            cand = fids[lims[row]:lims[row + 1]][None, :]
            scores = self._scores(x[row:row + 1], cand)[0] if cand.size else np.empty(0, np.float32)
            keep = scores > radius if ip else scores < radius
            out_d.append(scores[keep])
            out_i.append(cand[0][keep])
            out_lims.append(out_lims[-1] + int(keep.sum()))
        cat = (lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.empty(0, dt))
        return np.array(out_lims, dtype=np.int64), cat(out_d, np.float32), cat(out_i, np.int64)

    # -- persistence -----------------------------------------------------------------------------------------

    def nbytes(self) -> int:
        """Bytes of the whole index as written: the coarse faiss index plus the refine store."""
        faiss = _faiss()
        return int(faiss.serialize_index(self.coarse).nbytes + self._refine_arrays_nbytes())

    def _refine_arrays(self) -> dict:
        faiss = _faiss()
        return {
            "ids": self.ids, "lists": self.lists, "codes": self.codes,
            "pq_centroids": faiss.vector_to_array(self.pq.centroids),
            "pq_shape": np.array([self.pq.M, self.pq.nbits], dtype=np.int64),
            "k_factor": np.array(self.k_factor, dtype=np.int64),
        }

    def _refine_arrays_nbytes(self) -> int:
        return int(sum(np.asarray(v).nbytes for v in self._refine_arrays().values()))

    def write(self, index_path) -> None:
        """Writes the coarse index to ``index_path`` and the refine store to :func:`refine_path_for` (atomic)."""
        from sardata._io import atomic_path

        faiss = _faiss()
        with atomic_path(refine_path_for(index_path)) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **self._refine_arrays())
        with atomic_path(index_path) as tmp:
            faiss.write_index(self.coarse, str(tmp))

    @classmethod
    def read(cls, index_path) -> "RefinedIVFPQ":
        faiss = _faiss()
        coarse = faiss.read_index(str(index_path))  # already the IndexIVFPQ (and owned: never downcast_index it)
        with np.load(refine_path_for(index_path), allow_pickle=False) as z:
            m, nbits = (int(v) for v in z["pq_shape"])
            index = cls(coarse, m, int(z["k_factor"]), refine_nbits=nbits)
            faiss.copy_array_to_vector(np.ascontiguousarray(z["pq_centroids"], dtype=np.float32), index.pq.centroids)
            index._codebook = None
            index.ids = z["ids"].astype(np.int64)
            index.lists = z["lists"].astype(index._list_dtype())
            index.codes = np.ascontiguousarray(z["codes"], dtype=np.uint8)
        if len(index.ids) != index.ntotal:
            raise ValueError(f"IVF-PQ index {index_path} holds {index.ntotal} vectors but its refine store "
                             f"{refine_path_for(index_path)} holds {len(index.ids)}: rebuild the index")
        return index


def is_refined_file(index_path) -> bool:
    """Whether ``index_path`` has a refine store beside it."""
    return os.path.exists(refine_path_for(index_path))

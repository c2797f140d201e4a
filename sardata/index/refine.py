"""IVF-PQ whose candidates are re-ranked with the exact vectors, read from a file on disk.

The same layout as LanceDB's IVF_PQ with ``refine_factor`` or DiskANN's re-ranking: what stays in memory is small,
the exact vectors are read only for the few candidates a query re-ranks.

- **coarse** (in memory): ``IndexIVFPQ`` with ``dim/8`` sub-quantizers (32 bytes for 256-d) and no direct map, so
  any int64 ids and ``remove_ids`` work: code + id = 40 bytes per 256-d vector;
- **id map** (in memory): the ids in ascending order and each one's row in the vector file (16 bytes per vector);
- **vector file** (on disk, memory-mapped once read): the float32 vectors, ``<key>.refine-<token>.npy``.

A search takes ``k · k_factor`` candidates from the coarse index (its ``nprobe``) and re-ranks them by their exact
distance: ``k · k_factor`` rows read per query (160 KiB for k=10, k_factor=16, 256-d), from the page cache once warm.
:meth:`RefinedIVFPQ.nbytes` counts what stays in memory (≈ 56 bytes per 256-d vector plus the centroids: ~57 MiB for
10⁶); :meth:`RefinedIVFPQ.vector_file_nbytes` the file. Distances returned are exact, for ``search`` and
``range_search`` alike.

Why not the alternatives: faiss's ``IndexRefineFlat`` keeps the float32 vectors in memory (1 GiB per 10⁶ × 256), an
SQ8 or fp16 refine store still 256 or 512 bytes per vector; a compressed refine code within the same budget (48–64
bytes of PQ, with or without OPQ) stops at recall@10 0.72–0.84 on the benchmark's clustered vectors.
``IndexIVFPQR`` needs sequential ids and cannot remove.

Writes: the vector file is rewritten (live rows only, in id order) when vectors were added or removed since it was
written, under a new token, before the id map and the coarse index are replaced: a crash at any point leaves the
previous files consistent (a coarse index and id map that disagree are refused on read).
"""

from __future__ import annotations

import glob
import os
import secrets

import numpy as np


def _faiss():
    import faiss

    return faiss


def _stem(index_path) -> str:
    index_path = str(index_path)
    return index_path[: -len(".faiss")] if index_path.endswith(".faiss") else index_path


def refine_path_for(index_path) -> str:
    """``…/<key>.faiss`` → ``…/<key>.refine.npz`` (the id map, beside the coarse index)."""
    return _stem(index_path) + ".refine.npz"


def vector_files_for(index_path) -> list[str]:
    """Every vector file of the index at ``index_path`` (one, unless a write was interrupted)."""
    return sorted(glob.glob(glob.escape(_stem(index_path)) + ".refine-*.npy"))


def _vector_path(index_path, token: str) -> str:
    return f"{_stem(index_path)}.refine-{token}.npy"


class RefinedIVFPQ:
    """IVF-PQ candidates re-ranked by exact distance; quacks like the faiss indexes sardata uses.

    Args:
        coarse: an untrained or trained ``faiss.IndexIVFPQ`` (no direct map).
        k_factor (16): candidates per result taken from the coarse index.
    """

    kind = "ivfpq"

    def __init__(self, coarse, k_factor: int = 16):
        self.coarse = coarse
        self.k_factor = int(k_factor)
        self.ids = np.empty(0, dtype=np.int64)  # ascending
        self.rows = np.empty(0, dtype=np.int64)  # row of each id in the vector store
        self._file = None  # memory-mapped vector file (read-only) once written or read
        self._file_path = None
        self._memory = np.empty((0, coarse.d), dtype=np.float32)  # rows added since, after the file's rows
        self._dirty = True  # the file on disk does not hold exactly the live rows in id order

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

    def _file_rows(self) -> int:
        return 0 if self._file is None else len(self._file)

    # -- building --------------------------------------------------------------------------------------------

    def train(self, x: np.ndarray) -> None:
        self.coarse.train(np.ascontiguousarray(x, dtype=np.float32))

    def add_with_ids(self, x: np.ndarray, ids: np.ndarray) -> None:
        x = np.ascontiguousarray(x, dtype=np.float32)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        self.coarse.add_with_ids(x, ids)
        start = self._file_rows() + len(self._memory)
        self._memory = np.concatenate([self._memory, x]) if len(self._memory) else x.copy()
        all_ids = np.concatenate([self.ids, ids])
        all_rows = np.concatenate([self.rows, np.arange(start, start + len(ids), dtype=np.int64)])
        order = np.argsort(all_ids, kind="stable")
        self.ids, self.rows = all_ids[order], all_rows[order]
        self._dirty = True

    def remove_ids(self, ids: np.ndarray) -> int:
        """Removes ``ids`` from the coarse lists and the id map (their rows leave the file at the next write)."""
        faiss = _faiss()
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        removed = self.coarse.remove_ids(faiss.IDSelectorArray(ids))
        keep = ~np.isin(self.ids, ids)
        self.ids, self.rows = self.ids[keep], self.rows[keep]
        self._dirty = self._dirty or not keep.all()
        return int(removed)

    # -- reading ---------------------------------------------------------------------------------------------

    def _rows_of(self, ids: np.ndarray) -> np.ndarray:
        pos = np.clip(np.searchsorted(self.ids, ids), 0, max(len(self.ids) - 1, 0))
        if len(self.ids) == 0 or not np.array_equal(self.ids[pos], ids):
            missing = np.setdiff1d(ids, self.ids)
            raise KeyError(f"ids not in the index: {missing[:5].tolist()}")
        return self.rows[pos]

    def _vectors(self, rows: np.ndarray) -> np.ndarray:
        """Rows of the vector store; file rows are read in ascending order (sequential where they cluster)."""
        out = np.empty((len(rows), self.d), dtype=np.float32)
        n_file = self._file_rows()
        in_file = rows < n_file
        if in_file.any():
            where = np.flatnonzero(in_file)
            order = np.argsort(rows[where], kind="stable")
            out[where[order]] = self._file[rows[where][order]]
        if (~in_file).any():
            out[~in_file] = self._memory[rows[~in_file] - n_file]
        return out

    def reconstruct_batch(self, ids) -> np.ndarray:
        """The exact vectors with these ids."""
        return self._vectors(self._rows_of(np.ascontiguousarray(ids, dtype=np.int64)))

    def _scores(self, q: np.ndarray, fids: np.ndarray) -> np.ndarray:
        """Exact scores of candidates ``fids`` (nq × c, -1 = none): inner products, or squared L2."""
        faiss = _faiss()
        ip = self.metric_type == faiss.METRIC_INNER_PRODUCT
        valid = fids >= 0
        out = np.full(fids.shape, -np.inf if ip else np.inf, dtype=np.float32)
        if not valid.any():
            return out
        vec = self.reconstruct_batch(fids[valid])
        qrep = np.repeat(q, valid.sum(axis=1), axis=0)
        out[valid] = (vec * qrep).sum(1) if ip else ((vec - qrep) ** 2).sum(1)
        return out

    def search(self, x, k, params=None, k_factor=None, batch=256):
        """Top ``k`` by exact distance among ``k · k_factor`` coarse candidates; like ``faiss.Index.search``."""
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
        """Coarse range search, then kept by exact distance (IP > radius, squared L2 < radius)."""
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

    # -- size and persistence --------------------------------------------------------------------------------

    def nbytes(self) -> int:
        """Bytes kept in memory once read: the coarse index as written plus the id map (not the vector file)."""
        faiss = _faiss()
        return int(faiss.serialize_index(self.coarse).nbytes + self.ids.nbytes + self.rows.nbytes)

    def vector_file_nbytes(self) -> int:
        """Bytes of the vector file on disk (float32, live rows)."""
        return int(len(self.ids) * self.d * 4)

    def _write_vectors(self, path: str) -> None:
        """Live rows, in id order, to a new ``.npy`` at ``path`` (written to a temporary name, then renamed)."""
        from sardata._io import atomic_path

        chunk = max(1, (64 << 20) // (4 * self.d))  # 64 MiB at a time: memory stays flat in n
        with atomic_path(path) as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(self.rows), self.d))
            for start in range(0, len(self.rows), chunk):
                out[start:start + chunk] = self._vectors(self.rows[start:start + chunk])
            out.flush()
            del out

    def write(self, index_path) -> None:
        """Writes the vector file (when changed), the id map (:func:`refine_path_for`) and the coarse index."""
        from sardata._io import atomic_path

        faiss = _faiss()
        old_files = vector_files_for(index_path)
        current = self._file_path if self._file_path in old_files and not self._dirty else None
        if current is None:
            current = _vector_path(index_path, secrets.token_hex(4))
            self._write_vectors(current)
        with atomic_path(refine_path_for(index_path)) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, ids=self.ids, vector_file=np.array(os.path.basename(current)),
                         k_factor=np.array(self.k_factor, dtype=np.int64))
        with atomic_path(index_path) as tmp:
            faiss.write_index(self.coarse, str(tmp))
        for stale in old_files:
            if stale != current:
                os.remove(stale)
        self._open(current)

    def _open(self, path: str) -> None:
        self._file = np.load(path, mmap_mode="r")
        self._file_path = path
        self._memory = np.empty((0, self.d), dtype=np.float32)
        self.rows = np.arange(len(self.ids), dtype=np.int64)  # the file holds the live rows in id order
        self._dirty = False

    @classmethod
    def read(cls, index_path) -> "RefinedIVFPQ":
        faiss = _faiss()
        coarse = faiss.read_index(str(index_path))  # already the IndexIVFPQ (and owned: never downcast_index it)
        with np.load(refine_path_for(index_path), allow_pickle=False) as z:
            index = cls(coarse, int(z["k_factor"]))
            index.ids = z["ids"].astype(np.int64)
            vector_file = os.path.join(os.path.dirname(str(index_path)), str(z["vector_file"]))
        if len(index.ids) != index.ntotal:
            raise ValueError(f"IVF-PQ index {index_path} holds {index.ntotal} vectors but its id map "
                             f"{refine_path_for(index_path)} holds {len(index.ids)}: rebuild the index")
        if not os.path.exists(vector_file):
            raise FileNotFoundError(f"IVF-PQ index {index_path}: its vector file {vector_file} is missing: rebuild "
                                    "the index")
        index._open(vector_file)
        if len(index._file) != len(index.ids) or index._file.shape[1] != index.d:
            raise ValueError(f"IVF-PQ index {index_path}: vector file {vector_file} has shape {index._file.shape}, "
                             f"expected ({len(index.ids)}, {index.d}): rebuild the index")
        return index


def is_refined_file(index_path) -> bool:
    """Whether ``index_path`` has a refine id map beside it."""
    return os.path.exists(refine_path_for(index_path))

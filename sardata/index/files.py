"""Where a FAISS similarity run keeps its files: ``<brain_key>.faiss``, ``.ids.npy`` and (IVF-PQ) ``.refine.npz`` and
``.refine-<token>.npy``."""

from __future__ import annotations

import os
from pathlib import Path


def ids_path_for(index_path) -> str:
    """``…/<key>.faiss`` → ``…/<key>.ids.npy``."""
    path = Path(index_path)
    stem = path.name[: -len(".faiss")] if path.name.endswith(".faiss") else path.name
    return str(path.with_name(stem + ".ids.npy"))


def default_index_path(dataset_name: str, brain_key: str) -> str:
    """``work_dir(dataset_name, "index")/<brain_key>.faiss``."""
    from sardata.paths import work_dir
    from sardata.safepath import safe_component

    return str(work_dir(dataset_name, "index") / f"{safe_component(brain_key)}.faiss")


def delete_index_files(index_path) -> list[str]:
    """Deletes a ``.faiss`` file, its ``.ids.npy``, ``.refine.npz`` and vector files; returns the paths that existed."""
    from sardata.index.refine import refine_path_for, vector_files_for

    removed = []
    if not index_path:
        return removed
    for path in (str(index_path), ids_path_for(index_path), refine_path_for(index_path), *vector_files_for(index_path)):
        if os.path.exists(path):
            os.remove(path)
            removed.append(path)
    return removed

"""The 2-D map of a collection's embeddings for the App's embeddings panel (a brain visualization run), coloured by
scene, plus a scatter PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sardata.scenes.cluster import to_space
from sardata.scenes.report import scatter_png
from sardata.scenes.runs import load_embeddings, load_scene_run, scenes_dir


def compute_visualization(
    samples,
    embeddings=None,
    embedding_field: str = "dcgan_embedding",
    method: str = "pca",
    brain_key: str = "scenes_viz",
    color_field: str = "scene",
    seed: int = 0,
    overwrite: bool = True,
    png_path=None,
    run_key: str | None = None,
):
    """2-D map of the embeddings for the App's embeddings panel (a brain visualization run) plus a scatter PNG.

    With ``run_key``, the map is made in the feature space that scene run clustered in (same variant and
    normalisation), so the colours of the map and its geometry agree.

    Args:
        samples: a FiftyOne dataset or view.
        embeddings (None): array in ``samples`` order; default: the ``embedding_field`` values.
        embedding_field ("dcgan_embedding"): field to read when ``embeddings`` is None.
        method ("pca"): ``pca``, ``umap`` (first call spends 10–20 s in numba JIT) or ``tsne``.
        brain_key ("scenes_viz"): brain key of the visualization run.
        color_field ("scene"): field (label or string) colouring the PNG.
        seed (0): reducer seed.
        overwrite (True): replace an existing run with the same key.
        png_path (None): default ``work_dir(dataset, "scenes")/<brain_key>_scatter.png``.
        run_key (None): a scene run whose feature space to use.

    Returns:
        ``(results, png_path)``: the fiftyone VisualizationResults and the scatter PNG.
    """
    import fiftyone.brain as fob

    methods = ("pca", "umap", "tsne")
    if method not in methods:
        raise ValueError(f"unsupported method {method!r}; allowed: {methods}")
    dataset = samples._dataset
    ids, x = load_embeddings(samples, embeddings, embedding_field if embeddings is None else None)
    if run_key is not None:
        run = load_scene_run(dataset, run_key)
        x = to_space(x, run.variant, run.normalize or "none", run.positions)
    view = samples.select(ids, ordered=True)
    if brain_key in dataset.list_brain_runs():
        if not overwrite:
            raise ValueError(f"brain key {brain_key!r} exists on {dataset.name!r}; pass overwrite=True")
        dataset.delete_brain_run(brain_key)
    kwargs = {"seed": seed} if method != "pca" else {}
    results = fob.compute_visualization(
        view, embeddings=x, method=method, brain_key=brain_key, num_dims=2, progress=False, **kwargs
    )
    png_path = Path(png_path or (scenes_dir(dataset.name) / f"{brain_key}_scatter.png"))
    colors = _color_values(view, color_field)
    scatter_png(np.asarray(results.current_points), colors, png_path, title=f"{dataset.name}: {method} ({color_field})")
    return results, png_path


def _color_values(view, color_field):
    if not color_field or not view.has_field(color_field):
        return None
    values = view.values(color_field)
    return [getattr(v, "label", v) if v is not None else "none" for v in values]

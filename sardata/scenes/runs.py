"""Scene runs: cluster a collection's embeddings into a ``scene`` label, tags, a saved view of the uncertain samples,
stored as a FiftyOne custom run.

Each sample gets ``scene`` = ``fo.Classification(label, confidence)`` with ``confidence = d2 / (d1 + d2)`` from the
distances ``d1 ≤ d2`` to its nearest and second-nearest centroids (0.5 on a boundary, 1.0 at a centroid). A run is
stored as a FiftyOne custom run (``dataset.list_runs(method="sardata.scenes")``) holding its parameters, the chosen
feature space and its unsupervised score, cluster names and sizes; the centroids and the report (``report.json``,
montages, ``scatter.png``) are written to ``work_dir(dataset.name, "scenes")/<run_key>/``. The least certain
samples are saved as the view ``<field>_uncertain`` (``scene_uncertain``), least certain first.
"""

from __future__ import annotations

import datetime
import math
import shutil
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from sardata._io import save_npy
from sardata.scenes import cluster as _cluster

RUN_METHOD = "sardata.scenes"
#: Share of the clustered samples (or a count, when ≥ 1) in the saved view of uncertain samples.
UNCERTAIN = 0.1


@dataclass
class SceneRun:
    """One scene clustering run.

    Attributes:
        run_key: the run's name (a FiftyOne custom run key).
        k: number of clusters.
        seed: k-means seed.
        embedding_field: the sample field holding the embeddings (None if passed as an array).
        field: the ``fo.Classification`` sample field written.
        tag: whether sample tags were added.
        labels: the cluster names, by cluster index (``labels[i]`` names ``centroids[i]``).
        sizes: samples per cluster name.
        silhouette: silhouette score in the chosen space (at most 5000 points; None if k < 2).
        inertia: k-means objective (sum of squared distances to the nearest centroid) in the chosen space.
        num_samples: samples clustered (samples without an embedding are skipped).
        report_dir: directory of the report, montages and centroids.
        created_at: ISO time of the run.
        n_init, niter: k-means restarts and iterations.
        normalize: the normalisation applied before k-means (``"none"``, ``"l2"``, ``"standardize"``).
        variant: the feature variant (``"trimmed"``, ``"spread"`` or ``"pooled"``: trimmed std, std or mean over the
            spatial positions;
            ``"flat"``: the paper's ``F``).
        criterion: ``"stability"`` (chosen without labels among candidates) or ``"fixed"`` (asked for).
        score: the chosen space's stability (mean bootstrap ARI); None when fixed.
        reliable: :attr:`sardata.scenes.cluster.SpaceChoice.reliable` (stable, and nameable at k = 2); False: the
            tags are not to be trusted (a warning is issued); None when fixed.
        candidates: every candidate space's stability, silhouette, smallest-cluster share, tail skewness (k = 2,
            :func:`sardata.scenes.cluster.tail_skew`) and directions deflated.
        deflated: directions projected out of the chosen space before its split (0: none; see
            :func:`sardata.scenes.cluster.split_space`).
        guard: the k = 2 guard applied (``"tail"`` or ``"size"``; None: a run stored before guards were named).
        positions: spatial positions per channel of the input features (1: no layout known).
        uncertain_view: name of the saved view of the least certain samples.
        uncertain_count: samples in that view.
        centroids: ``k × dim`` array in the chosen space (stored in ``report_dir/centroids.npy``).
    """

    run_key: str
    k: int
    seed: int
    embedding_field: str | None
    field: str
    tag: bool
    labels: list
    sizes: dict
    silhouette: float | None
    inertia: float
    num_samples: int
    report_dir: str
    created_at: str = ""
    n_init: int = 5
    niter: int = 50
    normalize: str | None = None
    variant: str = "flat"
    criterion: str = "fixed"
    score: float | None = None
    candidates: dict = field(default_factory=dict)
    reliable: bool | None = None
    deflated: int = 0
    guard: str | None = None
    positions: int = 1
    uncertain_view: str | None = None
    uncertain_count: int = 0
    centroids: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("centroids")
        return d


def assign_scenes(
    samples,
    embeddings=None,
    embedding_field: str = "dcgan_embedding",
    k: int = 2,
    seed: int = 0,
    run_key: str = "scenes",
    field: str = "scene",
    tag: bool = True,
    n_init: int = 5,
    niter: int = 50,
    report: bool = True,
    normalize: str | None = "auto",
    variant: str = "auto",
    positions: int | None = None,
    uncertain: float = UNCERTAIN,
    deflate: int = _cluster.DEFLATE_ROUNDS,
    guard: str = _cluster.GUARD,
) -> SceneRun:
    """Clusters the samples' embeddings and writes scene labels, tags, the uncertain-samples view and a report.

    This function holds the scene policy: the CLI, the recipes and the demo call it with its defaults.

    Args:
        samples: a FiftyOne dataset or view.
        embeddings (None): ``len(samples) × dim`` array in ``samples`` order; default: read ``embedding_field``.
        embedding_field ("dcgan_embedding"): field holding one vector per sample (written by ``sardata embed``).
        k (2): clusters; 2 applies the BSLM naming (smaller → ``inshore``).
        seed (0): k-means seed.
        run_key ("scenes"): name of the run; re-running a key replaces its labels, tags, view and report.
        field ("scene"): ``fo.Classification`` field to write.
        tag (True): also tag each sample with its scene name.
        n_init (5), niter (50): k-means restarts and iterations.
        report (True): write montages and report.json.
        normalize ("auto"): ``"auto"`` (chosen by stability behind the balance guard,
            :func:`sardata.scenes.cluster.select_space`),
            ``"l2"``, ``"standardize"`` or ``"none"``/None.
        variant ("auto"): ``"auto"`` (``spread`` when the layout is known, else ``flat``), ``"trimmed"`` /
            ``"spread"`` / ``"pooled"`` (trimmed std / std / mean over the spatial positions of the BSLM ``F``; need
            the layout) or ``"flat"`` (the paper's ``F``; ``variant="flat", normalize="none"`` is
            the paper's exact clustering, with ``deflate=0``).
        positions (None): spatial positions per channel of the vectors; None → the embedding field's ``info``
            (written by :func:`sardata.embed.extract.extract_features`: 16 for a DCGAN ``F``), else 1.
        uncertain (0.1): share (or count, when ≥ 1) of least-confident samples in the saved view
            ``<field>_uncertain``; 0 → no view.
        deflate (2): k = 2: times a split that fails the balance guard may have its direction projected out before
            re-clustering (:func:`sardata.scenes.cluster.split_space`); 0 → plain k-means in the chosen space.
        guard ("tail"): k = 2: what a split must pass to be named by size
            (:func:`sardata.scenes.cluster.passes_guard`): ``"tail"`` (smaller cluster at most 40 % *and* the long
            tail of the projection onto the centroid direction) or ``"size"`` (the 40 % alone: the rule before).

    Returns:
        the :class:`SceneRun` (also stored on the dataset).
    """
    import fiftyone as fo

    dataset = samples._dataset
    ids, x = load_embeddings(samples, embeddings, embedding_field if embeddings is None else None)
    if positions is None:
        positions = _field_positions(dataset, embedding_field) if embeddings is None else 1
    choice, z, (labels, centroids, distances) = _cluster.select_space(
        x, k, positions=positions, variant=variant, normalize=normalize, seed=seed, n_init=n_init, niter=niter,
        rounds=deflate, guard=guard,
    )
    if choice.reliable is False:
        cell = choice.candidates[f"{choice.variant}/{choice.normalize}"]
        tail = guard != "size" and cell.get("tail") is not None
        shape, rule = "", f"at most {_cluster.BALANCE_MAX:.0%}"
        if tail:
            shape, rule = f", tail skewness {cell['tail']:.2f}", f"{rule}, skewness ≥ {_cluster.TAIL_MIN}"
        why = (f"stability {choice.score} < {_cluster.STABLE_MIN}: resamples of these images do not reproduce it"
               if choice.score < _cluster.STABLE_MIN else
               f"every candidate split is near-even{' or not a long tail' if tail else ''}"
               f"{' even after deflation' if deflate else ''} (chosen: smaller cluster {cell['minority']:.0%}{shape}; "
               f"nameable: {rule}), which the size rule cannot name")
        warnings.warn(f"scene run {run_key!r}: the chosen split ({choice.variant}/{choice.normalize}) is unreliable: "
                      f"{why} (review the uncertain view; more GAN training or other features may help)",
                      stacklevel=2)
    names = _cluster.name_clusters(labels, k)
    confidence = _cluster.margin_confidence(distances)
    scene_names = [names[c] for c in labels]

    if run_key in list_scene_runs(dataset):
        _remove_tags(dataset, load_scene_run(dataset, run_key))
    values = {
        _id: fo.Classification(label=name, confidence=float(conf))
        for _id, name, conf in zip(ids, scene_names, confidence)
    }
    dataset.set_values(field, values, key_field="id")  # one batched write
    if tag:
        for name in sorted(set(names)):
            dataset.select([i for i, s in zip(ids, scene_names) if s == name]).tag_samples(name)
    view_name, view_count = _save_uncertain_view(dataset, ids, field, uncertain)

    report_dir = scenes_dir(dataset.name, run_key)
    save_npy(report_dir / "centroids.npy", centroids)
    sizes = {name: int((np.asarray(scene_names) == name).sum()) for name in names}
    run = SceneRun(
        run_key=run_key,
        k=k,
        seed=seed,
        embedding_field=embedding_field if embeddings is None else None,
        field=field,
        tag=tag,
        labels=list(names),
        sizes=sizes,
        silhouette=choice.silhouette,
        inertia=float((distances.min(axis=1) ** 2).sum()),
        num_samples=len(ids),
        report_dir=str(report_dir),
        created_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        n_init=n_init,
        niter=niter,
        normalize=choice.normalize,
        variant=choice.variant,
        criterion=choice.criterion,
        score=choice.score,
        candidates=choice.candidates,
        reliable=choice.reliable,
        deflated=choice.deflated,
        guard=choice.guard,
        positions=int(positions),
        uncertain_view=view_name,
        uncertain_count=view_count,
        centroids=centroids,
    )
    config = dataset.init_run(method=RUN_METHOD, **run.to_dict())
    dataset.register_run(run_key, config, overwrite=True)
    if report:
        from sardata.scenes.report import write_report

        write_report(samples.select(ids, ordered=True), run, labels, distances)
    return run


def load_embeddings(samples, embeddings=None, embedding_field: str | None = None):
    """``(ids, matrix)`` of the samples that have an embedding (from ``embeddings`` or ``embedding_field``)."""
    ids = samples.values("id")
    if embeddings is not None:
        matrix = np.asarray(embeddings, dtype=np.float32)
        if len(matrix) != len(ids):
            raise ValueError(f"got {len(matrix)} embeddings for {len(ids)} samples")
        return ids, matrix
    if not samples.has_field(embedding_field):
        raise ValueError(
            f"dataset {samples._dataset.name!r} has no field {embedding_field!r}: compute it first "
            f"(e.g. `sardata embed extract {samples._dataset.name} --model {embedding_field.split('_')[0]}`)"
        )
    values = samples.values(embedding_field)
    keep = [i for i, v in enumerate(values) if v is not None]
    if len(keep) < len(values):
        warnings.warn(f"{len(values) - len(keep)} samples have no {embedding_field!r}; they get no scene")
    if not keep:
        raise ValueError(f"no sample of {samples._dataset.name!r} has a value in {embedding_field!r}")
    return [ids[i] for i in keep], np.stack([np.asarray(values[i], dtype=np.float32).ravel() for i in keep])


def list_scene_runs(samples) -> list[str]:
    """Keys of the scene runs stored on the dataset."""
    return sorted(samples._dataset.list_runs(method=RUN_METHOD))


def load_scene_run(samples, run_key: str) -> SceneRun:
    """The stored :class:`SceneRun` named ``run_key`` (with its centroids if the file still exists)."""
    dataset = samples._dataset
    if run_key not in list_scene_runs(dataset):
        raise ValueError(f"no scene run {run_key!r} on {dataset.name!r}; runs: {list_scene_runs(dataset)}")
    config = dataset.get_run_info(run_key).config
    known = set(SceneRun.__dataclass_fields__) - {"centroids"}
    run = SceneRun(**{name: getattr(config, name) for name in known if hasattr(config, name)})
    path = Path(run.report_dir) / "centroids.npy"
    if path.exists():
        run.centroids = np.load(path, allow_pickle=False)
    return run


def delete_scene_run(samples, run_key: str, delete_field: bool = True) -> None:
    """Deletes a scene run: its tags, uncertain view, report directory, field (unless another scene run writes it)."""
    dataset = samples._dataset
    run = load_scene_run(dataset, run_key)
    _remove_tags(dataset, run)
    others = [load_scene_run(dataset, key) for key in list_scene_runs(dataset) if key != run_key]
    if delete_field and run.field not in [o.field for o in others] and dataset.has_sample_field(run.field):
        dataset.delete_sample_field(run.field)
    if run.uncertain_view and run.uncertain_view not in [o.uncertain_view for o in others] \
            and dataset.has_saved_view(run.uncertain_view):
        dataset.delete_saved_view(run.uncertain_view)
    shutil.rmtree(run.report_dir, ignore_errors=True)
    dataset.delete_run(run_key)


def scenes_dir(dataset_name: str, run_key: str | None = None) -> Path:
    """``work_dir(dataset, "scenes")[/<run_key>]`` (created)."""
    from sardata.paths import work_dir
    from sardata.safepath import safe_component

    path = work_dir(dataset_name, "scenes")
    if run_key is not None:
        path = path / safe_component(run_key)
        path.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------------------------------- helpers


def _field_positions(dataset, embedding_field: str) -> int:
    """Spatial positions recorded by the extractor in the field's ``info`` (1 when unknown)."""
    try:
        info = dataset.get_field(embedding_field).info or {}
    except (AttributeError, KeyError):
        return 1
    return int(info.get("positions") or 1)


def _uncertain_count(n: int, uncertain: float) -> int:
    if uncertain <= 0:
        return 0
    return min(n, int(uncertain) if uncertain >= 1 else max(1, math.ceil(uncertain * n)))


def _save_uncertain_view(dataset, ids: list, field: str, uncertain: float) -> tuple[str | None, int]:
    """Saves ``<field>_uncertain``: the run's samples by increasing confidence, the first ``uncertain`` of them."""
    from fiftyone import ViewField as F

    count = _uncertain_count(len(ids), uncertain)
    name = f"{field}_uncertain"
    if dataset.has_saved_view(name):
        dataset.delete_saved_view(name)
    if not count:
        return None, 0
    view = dataset.select(ids).sort_by(F(f"{field}.confidence")).limit(count)
    dataset.save_view(name, view, description=f"the {count} samples whose {field!r} is least certain "
                                              "(closest to a cluster boundary), least certain first")
    return name, count


def _remove_tags(dataset, run: SceneRun) -> None:
    if run.tag and run.labels:
        dataset.untag_samples(list(run.labels))

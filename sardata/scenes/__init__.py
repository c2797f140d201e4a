"""Scene clustering → ``scene`` labels, tags, a saved view of uncertain samples, a report and a 2-D map.

- :mod:`sardata.scenes.cluster`: k-means (FAISS, all points), BSLM naming, margin confidence, and the feature-space
  policy (variant — local ``spread``, ``trimmed`` spread, ``pooled``, the paper's ``flat`` — × normalisation, chosen
  by bootstrap stability behind a balance guard and a tail test, never by labels; unstable or unnameable splits are
  flagged).
- :mod:`sardata.scenes.runs`: :func:`assign_scenes` (the one entry point of CLI, recipes and demo), scene runs as
  FiftyOne custom runs, the ``scene_uncertain`` saved view.
- :mod:`sardata.scenes.report`: ``report.json``, review montages (typical beside boundary), scatter PNGs,
  :func:`scene_accuracy` against known scenes.
- :mod:`sardata.scenes.viz`: :func:`compute_visualization`, the 2-D map for the App's embeddings panel.
"""

from sardata.scenes.cluster import (
    BALANCE_MAX,
    BSLM_NAMES,
    DEFLATE_ROUNDS,
    GUARD,
    GUARDS,
    LAYOUT_VARIANTS,
    NORMALIZATIONS,
    SILHOUETTE_MAX_POINTS,
    STABLE_MIN,
    TAIL_MIN,
    VARIANTS,
    SpaceChoice,
    candidate_spaces,
    centroid_distances,
    cluster_embeddings,
    deflate,
    deflation_splits,
    feature_variant,
    margin_confidence,
    minority_share,
    name_clusters,
    normalize_features,
    passes_guard,
    select_space,
    silhouette,
    split_space,
    stability,
    tail_skew,
    to_space,
    trim_count,
)
from sardata.scenes.report import (
    MONTAGE_IMAGES,
    MONTAGE_TILE,
    make_montage,
    make_review_montage,
    scatter_png,
    scene_accuracy,
    write_report,
)
from sardata.scenes.runs import (
    RUN_METHOD,
    UNCERTAIN,
    SceneRun,
    assign_scenes,
    delete_scene_run,
    list_scene_runs,
    load_embeddings,
    load_scene_run,
    scenes_dir,
)
from sardata.scenes.viz import compute_visualization

__all__ = [
    "BALANCE_MAX", "BSLM_NAMES", "DEFLATE_ROUNDS", "GUARD", "GUARDS", "LAYOUT_VARIANTS", "MONTAGE_IMAGES",
    "MONTAGE_TILE", "NORMALIZATIONS", "RUN_METHOD", "SILHOUETTE_MAX_POINTS", "STABLE_MIN", "TAIL_MIN", "UNCERTAIN",
    "VARIANTS", "assign_scenes", "candidate_spaces", "centroid_distances", "cluster_embeddings",
    "compute_visualization", "deflate", "deflation_splits", "delete_scene_run", "feature_variant", "list_scene_runs",
    "load_embeddings", "load_scene_run", "make_montage", "make_review_montage", "margin_confidence", "minority_share",
    "name_clusters", "normalize_features", "passes_guard", "scatter_png", "scene_accuracy", "SceneRun", "scenes_dir",
    "select_space", "silhouette", "SpaceChoice", "split_space", "stability", "tail_skew", "to_space", "trim_count",
    "write_report",
]

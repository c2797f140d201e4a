"""k-means on scene features, the BSLM naming rule, confidence, and the one feature-space policy (no ground truth).

BSLM (seed 000): k-means with k=2 on the DCGAN discriminator features; the smaller cluster is ``inshore``, the larger
``offshore``. For other k the clusters are named ``scene_0`` … ``scene_{k-1}`` by decreasing size.

**Feature space policy** (:func:`select_space`). Before k-means the features are put into one of a few candidate
spaces: a *variant* of the BSLM ``F`` (channel-major, ``F[c·P + p]`` over ``P`` = 4×4 positions) and a
*normalisation* (``none``; ``l2``: rows to unit length; ``standardize``: columns to zero mean, unit variance):

- ``trimmed`` (by name): ``spread`` after dropping, per channel, the most extreme
  position at each end (:func:`trim_count`: one per 16 positions). A ship fills about one of the 16 cells (at 128–256
  px a cell is 32–64 px; most SSDD ships are smaller), a coast several: one bright ship no longer reads as land, a
  coast still does (and so does a sliver covering two cells or more; one covering a single cell does not). Local.
- ``spread`` (the default when the layout is known): per channel, the standard deviation of ``F`` over its
  positions (1792-d), i.e. the RMS of ``F`` after subtracting the image's own mean over the positions. A
  homogeneous image scores 0 whatever its level; a region that answers differently from the rest of the image (a
  coast, even a sliver at the border) raises it; so does a large bright ship. Local.
- ``pooled``: the mean over the positions (1792-d). Global.
- ``flat``: the paper's 28672-d ``F`` as is. Global and local mixed; dominated by where things sit.

``trimmed``, ``spread`` and ``pooled`` need the layout (``positions > 1``, recorded by the extractor; ``trimmed`` at
least 4). **The variant is a rule, not a score**: ``variant="auto"`` is ``spread`` when the layout is known, else
``flat`` (cc features, PCA-reduced features); the others stay available by name. The normalisation is chosen among
the candidates: each is clustered and scored by its **stability**: the mean adjusted Rand index between the k-means
partition of all points and the partitions of ``bootstrap`` resamples (each resample clustered afresh, with other
seeds, then every point assigned to its nearest resample centroid). Ties (within 0.01) go to the higher silhouette,
then to the order of :data:`NORMALIZATIONS`. The selection reads the features only: no truth field, no label.

**Balance guard** (k = 2; with the tail test below, the default guard). A partition whose smaller cluster holds more
than :data:`BALANCE_MAX` of the points is ranked after every other candidate (and deflated first, below): BSLM names
the clusters by size, so a near-even split cannot be named by its rule (a 101/99 split on the wrong factor is what
the demo produced: accuracy 0.34), and an even split is also what k-means makes of a continuum such as overall sea
brightness. SSDD has 18 % inshore images.

Why these choices (measured with ``benchmarks/scenes.py``-style runs on 200 synthetic SSDD images per condition,
DCGAN 60 steps at 128 px; diagnosis in its docstring): land is a *local* property, so the global spaces split on
sea state / overall level, stably (``pooled`` stability 0.85–0.94, minority 46–49 %) and wrongly (accuracy
0.32–0.35 on ``default`` and real SL-SSDD coastlines: the land images sit in the *larger* half, so the naming
inverts them). ``spread`` removes the image's own level and keeps the local contrast: 0.86 (default) and 0.945
(SL-SSDD coastlines) with k-means, against 0.81 / 0.86 for the ``stats`` baseline. Scored against each other,
the global spaces win on stability *because* sea state is a strong, smooth factor (``pooled`` 0.93 against
``spread`` 0.81 on ``default``): stability compares partitions of one description well, and descriptions of
different things badly, hence the rule for the variant. Within ``spread``, stability alone would pick a balanced
L2 split on ``default`` (0.85, minority 49 %); the guard removes it. Reading of the paper: BSLM clusters the flat ``F``
with k-means; the default here is still k-means on that same discriminator feature, only summarised per channel over
its 4×4 positions. ``variant="flat", normalize="none"`` is the paper's exact space.

**Deflation** (k = 2, :func:`split_space`, :data:`DEFLATE_ROUNDS`). A split that fails the balance guard is a
strong factor that about half of the images share, not BSLM's minority scene; at full size (1160 ``default``
images, DCGAN 60 steps) it is calm near-empty sea against textured sea with ships, land in the textured half, in
every space. Its direction (between the two centroids) is projected out of the candidate space and the rest is
re-clustered, up to twice, until a split passes the guard; when none does the first split is kept (and the run is
flagged, below). A split found that way competes only when **no** candidate passes the guard without it, so on
data where the previous policy had a nameable split nothing changes: the rule only acts where that policy flagged
the run as unnameable. Reading: the guard says *which* splits the size rule cannot name; deflation says what to do
then (look past that factor), instead of naming noise. Measured (seed 0, cached features; accuracy / ARI):
``default``-1160 0.668/0.102 (flagged) → 0.890/0.483 (``spread/standardize``, one direction removed, stability
0.87, reliable): 105 of the 106 images tagged inshore are inshore, but 127 of 232 inshore images are missed, at
every land fraction (2 % … 60 %+): the split is precise, its recall is 45 %. On 5 bootstrap resamples of those
images: 0.47–0.70 (4 of 5 flagged) → 0.70–0.90 (none flagged; mean 0.53 → 0.86; the 0.70 resample has a nameable,
wrong split that the rule leaves alone). ``trimmed`` at 1160: 0.475 → 0.880/0.436. On ``default`` and SL-SSDD
coastlines at 200 images the tags are identical to the previous policy's, also on each of 10 bootstrap resamples,
and on SL-SSDD coastlines at 1160 (0.852/0.465: its first split already passes the guard); on ``coast_hard`` (at
chance either way) 1 of 10 resamples changes (0.40 → 0.67, still flagged).
Letting deflated splits compete with nameable ones on stability was worse: on one SL-SSDD resample a deflated L2
split (stability 0.93) outranked the nameable one (0.89) and accuracy fell from 0.975 to 0.535.
With the balance guard alone (``guard="size"``, the rule before the tail test below) this was not a fix for every
budget: with 180 GAN steps instead of 60 on the same 1160 ``default`` images the ``spread/none`` split was 38 % / 62 %
on the same calm/textured factor, just inside the guard, stable (0.95) and wrong (0.533/−0.018); deflation did not
act, although the deflated ``spread/standardize`` candidate would have been 0.915/0.632 (17.5 % minority).
``deflate=0`` in :func:`sardata.scenes.assign_scenes` turns deflation off (``variant="flat", normalize="none",
deflate=0`` is the paper's exact k-means).

**Tail test** (k = 2, :data:`GUARD` ``"tail"``, the default; :func:`tail_skew`, :data:`TAIL_MIN`). The balance guard
asks how big the smaller cluster is, which is the wrong question: a 34–38 % cut through a continuum passes it. The
tail test asks what *shape* the split has along the direction joining its two centroids: the points' projection on
it must be skewed towards the smaller cluster by at least 1 (sample skewness; the smaller cluster is the
distribution's long tail, as a rare scene is) and the smaller cluster at most 40 %. A cut through the bulk of a
continuum (a symmetric one is cut near 50 %, skewness ≈ 0; the nuisance splits measured here have 0.33–0.70) fails
it, a minority that stands out passes (two compact blobs with share π give (1 − 2π)/√(π(1 − π)): ≥ 1 up to π ≈ 28 %;
a well-separated 30 % blob therefore fails, a limit of the test). Under it **every** deflation depth 0 … 2 of every
candidate space competes on stability (:func:`deflation_splits`), not only the depths reached while a split fails.
Tried first and rejected: bimodality along the centroid direction. On the cached features no split is bimodal,
the land splits included: Hartigan's dip test p ≥ 0.69 for every split at 1160 images and ≥ 0.1 at 200 (land
splits 0.9–0.99), a kernel-density valley between the two clusters' medians is absent (lowest density / lower peak
0.98–1.02 everywhere); the land split is a skewed tail, not a second mode. The dip is also blind to minorities of
10–18 % at these sizes and reads high-dimensional noise as bimodal in-sample (p = 0 for 200 isotropic points in 1792
dimensions, 0.95 when the direction is fitted on half of the points and the other half projected).
Measured 2026-12-01 20:40–22:10 (machine shared, load 5–8 on 2 cores), seed 0, features cached once by
``benchmarks/scenes.py``'s own functions (synthesis, ``train_gan`` at the benchmark's budget, ``extract_features``:
DCGAN 60 steps at 128 px, and 180 steps resumed from that checkpoint), then :func:`select_space` on the arrays
(accuracy / ARI; these GAN runs are not bit-identical to the earlier ones above, hence other numbers at 1160):

    condition               size guard (before)   tail test (default)          stats (size / tail guard)
    default 200             0.870/0.475           0.870/0.475 (same tags)      0.840/0.364 / 0.840/0.364
    coast_hard 200          0.495/-0.018 (!)      0.850/0.370 (!) defl 2       0.630/0.020 / 0.495/-0.006 (!)
    sl_ssdd 200             0.950/0.789           0.950/0.789 (same tags)      0.855/0.492 / 0.880/0.523
    default 1160            0.689/0.105           0.878/0.430 defl 1           0.838/0.356 / 0.838/0.356
    default 1160, 180 steps 0.669/0.080           0.856/0.469 defl 1           0.838/0.356 / 0.838/0.356
    sl_ssdd 1160            0.852/0.465           0.852/0.465 (!) (same tags)  0.866/0.467 / 0.866/0.467

(!) flagged ``reliable: false``. At 1160 (60 steps) a 33 % ``spread/l2`` split (skewness 0.70, stability 0.97)
passed the size guard in this GAN run: the fragile case at 60 steps too. With the tail test it fails; the chosen
split is ``spread/standardize`` after one deflation (8.6 % minority, skewness 2.20, stability 0.87). At 180 steps a
34 % ``spread/l2`` split (skewness 0.66, stability 0.97) passed the size guard (0.669); the tail test rejects it, and
the undeflated ``spread/none`` and ``spread/standardize`` splits pass it (26 % and 22 %, skewness 1.9 and 2.0) but are
also wrong (0.689, 0.732: a heavy-tailed nuisance); their deflated splits are more stable (0.94, 0.92) and are land
(0.856, 0.872), which is why every depth competes: the tail test alone, with deflation only while a split fails,
gives 0.689 there. On ``coast_hard`` the gain (0.495 → 0.850) rests on an unstable split (stability 0.46, flagged):
read it as chance until it holds on resamples. On bootstrap resamples of the images (policy rerun on each): SL-SSDD
200, 3 resamples, identical tags under both guards (0.955, 0.94, 0.96); 1160 ``default`` at 180 steps, 2 resamples,
size guard 0.675 / 0.682, tail test 0.884 / 0.682 (one fixed, one not: the fix is not guaranteed). SL-SSDD coastlines at 1160 images (cached 22:35, same
pipeline): the same tags under both guards, 0.852/0.465 (``spread/standardize``, 30 % minority, stability 0.99), but
no split passes the tail test (skewness 0.90 < 1), so the tail guard flags it ``reliable: false`` (352 tagged for
232 inshore: land or wind-roughened sea); stats 0.866/0.467 under both. The ``stats``
baseline goes through the same policy: the tail test moves it on ``coast_hard`` (0.630 → 0.495) and SL-SSDD
(0.855 → 0.880). Targets (0.97 / 0.85) still missed everywhere.

**Reliability** (:data:`STABLE_MIN`). k-means always returns k clusters, also where nothing separates. A chosen
partition whose stability is below 0.75 is stored with ``reliable=False`` and :func:`sardata.scenes.assign_scenes`
warns: resamples of the same images do not reproduce it. Measured (same runs): 0.85 (``default``) and 0.98 (SL-SSDD
coastlines), where the tags are 0.885 / 0.965 accurate, against 0.62 on ``coast_hard``, where they are at chance
(ARI −0.06); the threshold sits between these. It is a warning sign, not a test: on 8 bootstrap resamples of each
condition's images the chosen stability was 0.60–0.99 (``default``), 0.81–1.00 (SL-SSDD) and 0.46–0.86
(``coast_hard``), so the flag caught 5 of the 8 chance-level runs and also flagged 2 of the 16 good ones. A run is
also flagged when, at k = 2, every candidate fails the balance guard even after deflation (all splits near-even, so
the size rule names noise): without deflation that was the case at full size (1160 default images, same 60 GAN
steps), where every DCGAN space split 39–50 % / 50–61 % on a factor that is not the scene (accuracy 0.36–0.71, ARI ≤
0.16, although a probe with labels is still 0.94). It never changes the tags.

Why ``spread`` stays the default and ``trimmed`` is only available by name (same runs, the features of the previous
rule's measurement; accuracy / ARI, normalisation chosen by the policy): ``spread`` 0.875/0.51 (default), 0.950/0.79
(SL-SSDD), 0.490/−0.02 (coast_hard); ``trimmed`` 0.885/0.53, 0.965/0.85, 0.545/−0.06: 2 and 3 images of 200 where
there is a split, chance either way on ``coast_hard``. That gain is within noise: over 10 bootstrap resamples of the
images (policy rerun on each) the paired accuracy difference is −0.002 ± 0.058, −0.001 ± 0.039 and −0.009 ± 0.098.
What changes is the kind of error (``default``: offshore images with a big bright ship tagged inshore 10 → 6,
inshore images missed 15 → 17: coasts in one cell, mostly-land images; SL-SSDD: 3 → 2 and 7 → 5). At full size (1160
``default`` images) ``trimmed`` was worse before deflation (0.475/0.00 against 0.668/0.10; both flagged unreliable);
with it the two tie again (0.880/0.436 against 0.890/0.483, and 0.855/0.476 against 0.852/0.465 on SL-SSDD
coastlines at 1160): within noise everywhere, so the default stays. Tried on cached C12 (16×16), C13 (8×8) and C14
maps and not better on every condition (``default`` / SL-SSDD / ``coast_hard`` accuracy with the best of the three
normalisations, which flatters them): spread at 8×8 0.85/0.955/0.575 and at 16×16 0.825/0.91/0.60; spread
concatenated with ``pooled`` after per-block standardisation 0.345/0.945/0.58 (the global block brings the sea state
back); the spreads of C14, C13 and C12 concatenated that way 0.845/0.955/0.59; on ``default`` alone: per-channel
IQR, 90–10 % range or MAD over the positions 0.63–0.87, the share of positions beyond 2–3 MADs of the data set's
median or the RMS distance to it 0.36–0.84, quantiles of per-position distances 0.41–0.85, spectral clustering, Ward
or a GMM on PCA instead of k-means 0.36–0.90 (and unstable across conditions); patch-level (multiple-instance)
clustering of the 16 position vectors on the demo's cached features (2026-12-03: k-means k = 2 over all 3200
patches, with or without each image's mean removed, each normalisation; an image inshore by its share of
minority patches, or by its largest patch distance to the median patch cut by Otsu) 0.43–0.875, against 0.870 for
``spread`` on the same features. A 5-fold logistic probe *with labels*
on these summaries, the diagnostic ceiling, is 0.85–0.95 (``default``), 0.94–0.98 (SL-SSDD) and 0.74–0.86
(``coast_hard``): at this GAN budget the scene is only weakly in ``F``, on ``coast_hard`` barely (all-offshore
scores 0.775), so no clustering of it can reach 0.97 there.

Why stability and not silhouette alone: silhouettes of differently normalised spaces are not on one scale, whereas
the agreement of resampled partitions is a property of the partition, comparable across spaces.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BSLM_NAMES = ("inshore", "offshore")  # smaller cluster first
SILHOUETTE_MAX_POINTS = 5000
NORMALIZATIONS = ("l2", "standardize", "none")
VARIANTS = ("trimmed", "spread", "pooled", "flat")
#: Variants computed over the spatial positions of ``F`` (they need ``positions > 1``; ``trimmed`` at least 4).
LAYOUT_VARIANTS = ("trimmed", "spread", "pooled")
#: Bootstrap resamples of the stability score, and the score gap under which two candidates count as tied.
BOOTSTRAP = 10
TIE = 0.01
#: k-means fits its centroids on at most this many points (a seeded uniform sample, at least 256 per cluster), then
#: assigns every point: at 10⁶ × 256 the sample's centroids match the full fit to well within the clusters' spread, in
#: a tenth of the time (FAISS itself samples 256 points per centroid by default).
TRAIN_MAX_POINTS = 100_000
#: k = 2: a partition whose smaller cluster holds more than this share is ranked last (see the module docstring).
BALANCE_MAX = 0.4
#: A chosen partition less stable than this is flagged ``reliable=False`` (see the module docstring).
STABLE_MIN = 0.75
#: k = 2: how many times a candidate whose split fails the balance guard has that split's direction projected out
#: and is re-clustered (:func:`deflate`; see the module docstring). 0 turns it off.
DEFLATE_ROUNDS = 2
#: k = 2, guard ``"tail"``: a split passes only if the points' projection onto the direction from the larger
#: cluster's centroid to the smaller one's is skewed towards the smaller one by at least this much (sample skewness,
#: :func:`tail_skew`; 1 is the textbook "highly skewed"): the smaller cluster is the distribution's long tail, not one
#: side of a cut through its bulk (see the module docstring).
TAIL_MIN = 1.0
#: The guards a k = 2 split must pass to be named by size: ``"tail"`` (the balance guard and the tail test) or
#: ``"size"`` (the balance guard alone: the rule before the tail test).
GUARDS = ("tail", "size")
GUARD = "tail"


@dataclass
class SpaceChoice:
    """The feature space a scene run clustered in, and why.

    Attributes:
        variant: ``"spread"``, ``"pooled"`` or ``"flat"``.
        normalize: ``"none"``, ``"l2"`` or ``"standardize"``.
        criterion: ``"stability"`` (chosen among candidates) or ``"fixed"`` (one candidate was asked).
        score: stability of the chosen space (mean bootstrap ARI; None when fixed and not scored).
        silhouette: silhouette of the chosen space's partition.
        candidates: ``{"<variant>/<normalize>": {"stability": s, "silhouette": s, "minority": share, "tail": t,
            "deflated": d}}`` for every candidate scored (``minority``: share of the smallest cluster; ``tail``: its
            :func:`tail_skew`, k = 2; ``deflated``: directions removed before its split).
        deflated: directions projected out of the chosen space before its split (:func:`deflate`; 0: none).
        reliable: ``score >= STABLE_MIN`` and (k = 2) some candidate passed the guard (after deflation, if
            needed); None when not scored. False: resamples do not reproduce the split, or no split is one the BSLM
            size rule can name (near-even, or a cut through the bulk); the tags are then not to be trusted.
        guard: the k = 2 guard applied (:data:`GUARDS`).
    """

    variant: str
    normalize: str
    criterion: str
    score: float | None
    silhouette: float | None
    candidates: dict = field(default_factory=dict)
    reliable: bool | None = None
    deflated: int = 0
    guard: str = GUARD


# --------------------------------------------------------------------------------------------------- k-means


def cluster_embeddings(features, k: int, seed: int = 0, n_init: int = 5, niter: int = 50, gpu="auto"):
    """k-means on all points with FAISS: k-means++ seeding, ``n_init`` restarts, best objective kept.

    The centroids are fitted on every point up to :data:`TRAIN_MAX_POINTS` (FAISS's own default of 256·k points is
    not used: it would fit k = 2 on 512 points), on a seeded uniform sample of that many beyond it; every point is
    then assigned. Seeds ``seed, seed+1, …`` drive the restarts, so a given seed gives the same result.

    Args:
        features: ``n × dim`` array.
        k: number of clusters (1 ≤ k ≤ n).
        seed (0): random seed.
        n_init (5): restarts; the one with the lowest objective is kept.
        niter (50): Lloyd iterations per restart.
        gpu ("auto"): use a GPU when faiss sees one.

    Returns:
        ``(labels, centroids, distances)``: ``n`` int64 cluster indices, ``k × dim`` float32 centroids and the
        ``n × k`` Euclidean distances of every point to every centroid.
    """
    import faiss
    from sklearn.cluster import kmeans_plusplus

    from sardata.runtime import faiss_use_gpu

    x = np.ascontiguousarray(features, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"features must be a 2-D array, got shape {x.shape}")
    n, dim = x.shape
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of points ({n}), got {k}")
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or infinite values")
    train_n = min(n, max(TRAIN_MAX_POINTS, 256 * k))
    train = x if train_n == n else x[np.sort(np.random.default_rng(seed).choice(n, train_n, replace=False))]
    best_obj, best_centroids = np.inf, None
    for restart in range(max(1, n_init)):
        init, _ = kmeans_plusplus(train, k, random_state=seed + restart)
        km = faiss.Kmeans(
            dim,
            k,
            niter=niter,
            seed=seed + restart,
            max_points_per_centroid=train_n // k + 1,  # FAISS subsamples no further
            min_points_per_centroid=1,
            gpu=faiss_use_gpu(gpu),
            verbose=False,
        )
        km.train(train, init_centroids=np.ascontiguousarray(init, dtype=np.float32))
        obj = float(km.obj[-1]) if len(km.obj) else np.inf
        if obj < best_obj or best_centroids is None:
            best_obj, best_centroids = obj, km.centroids.copy()
    distances = centroid_distances(x, best_centroids)
    return distances.argmin(axis=1).astype(np.int64), best_centroids, distances


def centroid_distances(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """``n × k`` Euclidean distances of the rows of ``x`` to the centroids."""
    x = np.asarray(x, dtype=np.float32)
    sq = (x * x).sum(1)[:, None] - 2.0 * x @ centroids.T + (centroids * centroids).sum(1)[None, :]
    return np.sqrt(np.maximum(sq, 0.0))


def name_clusters(labels: np.ndarray, k: int) -> list[str]:
    """Cluster names by cluster index: BSLM ``inshore``/``offshore`` for k=2, else ``scene_i`` by decreasing size."""
    sizes = np.bincount(labels, minlength=k)
    if k == 2:
        smaller = int(np.argmin(sizes))  # ties: cluster 0 is inshore
        return [BSLM_NAMES[0] if i == smaller else BSLM_NAMES[1] for i in range(2)]
    order = sorted(range(k), key=lambda i: (-sizes[i], i))
    names = [""] * k
    for rank, i in enumerate(order):
        names[i] = f"scene_{rank}"
    return names


def margin_confidence(distances: np.ndarray) -> np.ndarray:
    """``d2 / (d1 + d2)`` per row (nearest and second-nearest centroid distances); 1.0 when k = 1.

    0.5 on the boundary between two clusters, 1.0 at a centroid (a softmax of negative distances would saturate at
    1.0 for 28672-d features).
    """
    if distances.shape[1] < 2:
        return np.ones(len(distances))
    part = np.sort(distances, axis=1)[:, :2]
    total = part.sum(axis=1)
    return np.where(total > 0, part[:, 1] / np.where(total > 0, total, 1.0), 0.5)


# --------------------------------------------------------------------------------------------------- spaces


def normalize_features(x: np.ndarray, how: str | None) -> np.ndarray:
    """Feature normalisation before clustering: None/``"none"`` (as is), ``"l2"`` (rows) or ``"standardize"``
    (columns)."""
    x = np.asarray(x, dtype=np.float32)
    if how is None or how == "none":
        return x
    if how == "l2":
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    if how == "standardize":
        return (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), 1e-12)
    raise ValueError(f"unknown normalize {how!r}; expected None, 'none', 'l2' or 'standardize'")


def trim_count(positions: int) -> int:
    """Positions dropped at *each* end, per channel, by the ``trimmed`` variant: one per 16 positions (at least 1)."""
    return max(1, positions // 16)


def feature_variant(x: np.ndarray, variant: str, positions: int = 1) -> np.ndarray:
    """A variant of channel-major features (``x[:, c·positions + p]``, as the BSLM ``F``): ``"flat"``: ``x`` as is;
    ``"pooled"``: the mean over the ``positions``; ``"spread"``: the standard deviation over them (the RMS of the
    per-image-centred feature); ``"trimmed"``: that standard deviation after dropping, per channel, the
    :func:`trim_count` highest and lowest positions. All but ``flat`` are ``n × dim/positions``."""
    x = np.asarray(x, dtype=np.float32)
    if variant == "flat":
        return x
    if variant in LAYOUT_VARIANTS:
        need = 2 * trim_count(positions) + 2 if variant == "trimmed" else 2
        if positions < need or x.shape[1] % positions:
            raise ValueError(f"cannot pool {x.shape[1]}-d features over {positions} positions (variant {variant!r})")
        grid = x.reshape(len(x), -1, positions)
        if variant == "pooled":
            return grid.mean(axis=2)
        if variant == "trimmed":
            t = trim_count(positions)
            grid = np.sort(grid, axis=2)[:, :, t:positions - t]
        return grid.std(axis=2)
    raise ValueError(f"unknown feature variant {variant!r}; expected one of {VARIANTS}")


def candidate_spaces(positions: int = 1, variant: str = "auto", normalize: str | None = "auto") -> list[tuple]:
    """``(variant, normalize)`` pairs to try: variant ``"auto"`` is ``spread`` when ``positions > 1``, else
    ``flat``; normalize ``"auto"`` expands to every :data:`NORMALIZATIONS`; an explicit value
    is the only one."""
    if variant == "auto":
        variant = "spread" if positions > 1 else "flat"
    variants = [variant]
    if normalize is None:
        normalize = "none"
    norms = list(NORMALIZATIONS) if normalize == "auto" else [normalize]
    for v in variants:
        if v not in VARIANTS:
            raise ValueError(f"unknown feature variant {v!r}; expected 'auto' or one of {VARIANTS}")
        if v in LAYOUT_VARIANTS and positions < (4 if v == "trimmed" else 2):
            raise ValueError(f"variant {v!r} needs features with a known spatial layout "
                             f"(positions {'≥ 4' if v == 'trimmed' else '> 1'}), got positions={positions}")
    for n in norms:
        if n not in NORMALIZATIONS:
            raise ValueError(f"unknown normalize {n!r}; expected 'auto' or one of {NORMALIZATIONS}")
    return [(v, n) for v in variants for n in norms]


def to_space(x: np.ndarray, variant: str, normalize: str, positions: int = 1) -> np.ndarray:
    """Features in a candidate space: :func:`feature_variant`, then :func:`normalize_features`."""
    return normalize_features(feature_variant(x, variant, positions), normalize)


def stability(x: np.ndarray, labels: np.ndarray, k: int, seed: int = 0, bootstrap: int = BOOTSTRAP,
              n_init: int = 2, niter: int = 30) -> float:
    """Mean ARI between ``labels`` (a partition of all of ``x``) and ``bootstrap`` re-clusterings of resamples.

    Resample ``b`` draws ``n`` rows with replacement (seeded by ``seed + 1000 + b``), runs k-means on them and
    assigns every row of ``x`` to the nearest of its centroids; the score is the mean ARI of those assignments
    with ``labels``. 1.0: every resample finds the same split.
    """
    from sklearn.metrics import adjusted_rand_score

    if k < 2:
        return 1.0
    n = len(x)
    scores = []
    for b in range(bootstrap):
        rng = np.random.default_rng(seed + 1000 + b)
        idx = rng.integers(0, n, n)
        if len(np.unique(idx)) < k:
            continue
        _, centroids, _ = cluster_embeddings(x[idx], k, seed=seed + 1000 + b, n_init=n_init, niter=niter)
        scores.append(adjusted_rand_score(labels, centroid_distances(x, centroids).argmin(axis=1)))
    return float(np.mean(scores)) if scores else 0.0


def silhouette(x: np.ndarray, labels: np.ndarray, seed: int = 0, max_points: int = SILHOUETTE_MAX_POINTS):
    """sklearn silhouette score on at most ``max_points`` points (None when fewer than 2 clusters are used)."""
    from sklearn.metrics import silhouette_score

    if len(np.unique(labels)) < 2 or len(np.unique(labels)) >= len(labels):
        return None
    sample_size = min(len(x), max_points)
    return float(silhouette_score(x, labels, sample_size=sample_size if sample_size < len(x) else None,
                                  random_state=seed))


def minority_share(labels: np.ndarray, k: int) -> float:
    """Share of the points in the smallest of the ``k`` clusters."""
    return float(np.bincount(labels, minlength=k).min() / max(len(labels), 1))


def tail_skew(z: np.ndarray, labels: np.ndarray, centroids: np.ndarray) -> float:
    """k = 2: sample skewness of the rows of ``z`` projected onto the direction from the larger cluster's centroid to
    the smaller one's (> 0: the smaller cluster lies in the long tail; about 0 for a cut through a symmetric bulk;
    0.0 when the centroids coincide or the projection is constant)."""
    small = int(np.argmin(np.bincount(labels, minlength=2)))
    u = np.asarray(centroids[small], dtype=np.float64) - np.asarray(centroids[1 - small], dtype=np.float64)
    if not np.linalg.norm(u) > 0:
        return 0.0
    p = np.asarray(z, dtype=np.float64) @ u
    p -= p.mean()
    sd = float(np.sqrt((p * p).mean()))
    if not sd > 1e-12 * max(1.0, float(np.abs(p).max())):
        return 0.0
    return float((p ** 3).mean() / sd ** 3)


def passes_guard(z: np.ndarray, labels: np.ndarray, centroids: np.ndarray, k: int, guard: str = GUARD) -> bool:
    """Whether a k-means split can be named by the BSLM size rule: always for k ≠ 2; at k = 2 its smaller cluster
    holds at most :data:`BALANCE_MAX` of the points and, for guard ``"tail"``, :func:`tail_skew` ≥ :data:`TAIL_MIN`."""
    if guard not in GUARDS:
        raise ValueError(f"unknown guard {guard!r}; expected one of {GUARDS}")
    if k != 2:
        return True
    if minority_share(labels, k) > BALANCE_MAX:
        return False
    return guard == "size" or tail_skew(z, labels, centroids) >= TAIL_MIN


def deflate(z: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """``z`` with the direction between the two ``centroids`` projected out (every row moved onto the hyperplane
    through the origin orthogonal to ``centroids[1] - centroids[0]``)."""
    u = np.asarray(centroids[1] - centroids[0], dtype=np.float32)
    norm = float(np.linalg.norm(u))
    if norm == 0.0:
        return z
    u = u / norm
    return z - np.outer(z @ u, u).astype(np.float32)


def split_space(z: np.ndarray, k: int, seed: int = 0, n_init: int = 5, niter: int = 50,
                rounds: int = DEFLATE_ROUNDS, guard: str = GUARD):
    """k-means in ``z``; at k = 2, a split that fails the guard (:func:`passes_guard`) has its direction projected
    out (:func:`deflate`) and the rest is re-clustered, up to ``rounds`` times, until a split passes the guard.

    Returns:
        ``(z, (labels, centroids, distances), deflated)``: the space of the split kept, its k-means result and how
        many directions were removed. When no round yields a split that passes the guard, the first split is kept
        (``deflated`` 0): deflation only ever replaces an unnameable split by a nameable one.
    """
    first = clustered = cluster_embeddings(z, k, seed=seed, n_init=n_init, niter=niter)
    space = z
    for done in range(1, rounds + 1 if k == 2 else 1):
        if passes_guard(space, clustered[0], clustered[1], k, guard):
            break
        space = deflate(space, clustered[1])
        clustered = cluster_embeddings(space, k, seed=seed, n_init=n_init, niter=niter)
        if passes_guard(space, clustered[0], clustered[1], k, guard):
            return space, clustered, done
    return z, first, 0


def deflation_splits(z: np.ndarray, k: int, seed: int = 0, n_init: int = 5, niter: int = 50,
                     rounds: int = DEFLATE_ROUNDS) -> list[tuple]:
    """k-means in ``z`` and, at k = 2, again after each split's direction is projected out (:func:`deflate`),
    ``rounds`` times whatever the splits: ``[(space, (labels, centroids, distances), deflated), …]`` for ``deflated``
    = 0 … ``rounds`` (only 0 for k ≠ 2)."""
    out = [(z, cluster_embeddings(z, k, seed=seed, n_init=n_init, niter=niter), 0)]
    for done in range(1, rounds + 1 if k == 2 else 1):
        space = deflate(out[-1][0], out[-1][1][1])
        out.append((space, cluster_embeddings(space, k, seed=seed, n_init=n_init, niter=niter), done))
    return out


def _split_record(z, clustered, deflated: int, k: int, guard: str, seed: int) -> dict:
    labels, centroids, _ = clustered
    return {"z": z, "clustered": clustered, "deflated": deflated, "stability": None,
            "passes": passes_guard(z, labels, centroids, k, guard), "minority": minority_share(labels, k),
            "tail": tail_skew(z, labels, centroids) if k == 2 else None, "silhouette": silhouette(z, labels, seed=seed)}


def _most_stable(records: list[dict]) -> dict:
    """The most stable record; within :data:`TIE` of it, the highest silhouette; then the first."""
    best = max(r["stability"] for r in records)
    tied = [r for r in records if r["stability"] >= best - TIE]
    return max(tied, key=lambda r: r["silhouette"] if r["silhouette"] is not None else -1.0)


def _rounded(value):
    return None if value is None else round(value, 4)


def select_space(x: np.ndarray, k: int, positions: int = 1, variant: str = "auto", normalize: str | None = "auto",
                 seed: int = 0, n_init: int = 5, niter: int = 50, bootstrap: int = BOOTSTRAP,
                 rounds: int = DEFLATE_ROUNDS, guard: str = GUARD):
    """Chooses the feature space and split by stability behind the guard (:func:`passes_guard`); reads nothing but
    ``x`` (see the module docstring).

    Guard ``"tail"``, several candidates: every candidate space is split at every deflation depth 0 … ``rounds``
    (:func:`deflation_splits`) and the most stable split that passes the guard is chosen, whatever its depth.
    Guard ``"size"`` (the rule before the tail test), or one candidate: each candidate is split by
    :func:`split_space` (deflated only while its split fails the guard) and, with several, a deflated split competes
    only when no candidate passes the guard without deflation. When no split passes, the most stable undeflated
    split is kept and the choice is flagged ``reliable=False``.

    Returns:
        ``(choice, z, (labels, centroids, distances))``: the :class:`SpaceChoice`, the features in that space and
        the k-means result there.
    """
    if guard not in GUARDS:
        raise ValueError(f"unknown guard {guard!r}; expected one of {GUARDS}")
    spaces = candidate_spaces(positions, variant, normalize)
    scored = len(spaces) > 1
    every_depth = scored and guard == "tail" and k == 2
    kept = {}
    for v, norm in spaces:
        z = to_space(x, v, norm, positions)
        splits = (deflation_splits(z, k, seed, n_init, niter, rounds) if every_depth
                  else [split_space(z, k, seed, n_init, niter, rounds, guard)])
        chain = [_split_record(*split, k, guard, seed) for split in splits]
        for rec in chain:
            if scored and (rec["passes"] or rec["deflated"] == 0):
                rec["stability"] = stability(rec["z"], rec["clustered"][0], k, seed=seed, bootstrap=bootstrap)
        passing = [rec for rec in chain if rec["passes"]]
        kept[(v, norm)] = _most_stable(passing) if every_depth and passing else chain[0]
        if every_depth:
            kept[(v, norm)]["splits"] = [{key: _rounded(rec[key]) if key != "deflated" else rec[key]
                                          for key in ("deflated", "minority", "tail", "stability")} for rec in chain]
    candidates = {f"{v}/{norm}": {"stability": _rounded(rec["stability"]), "silhouette": _rounded(rec["silhouette"]),
                                  "minority": round(rec["minority"], 4), "tail": _rounded(rec["tail"]),
                                  "deflated": rec["deflated"], **({"splits": rec["splits"]} if "splits" in rec else {})}
                  for (v, norm), rec in kept.items()}
    if not scored:
        (v, norm), rec = next(iter(kept.items()))
        return (SpaceChoice(v, norm, "fixed", None, rec["silhouette"], candidates, deflated=rec["deflated"],
                            guard=guard),
                rec["z"], rec["clustered"])
    # splits that fail the guard compete only when every candidate's does; under the size guard, a split found
    # after deflation competes only when no candidate passes the guard without it
    guarded = [key for key in spaces if kept[key]["passes"]]
    if guard == "size":
        guarded_first = [key for key in guarded if kept[key]["deflated"] == 0]
        pool = guarded_first or guarded or list(spaces)
    else:
        pool = guarded or list(spaces)
    rec = _most_stable([kept[key] for key in pool])
    chosen = next(key for key in pool if kept[key] is rec)
    return (SpaceChoice(chosen[0], chosen[1], "stability", round(rec["stability"], 4), rec["silhouette"], candidates,
                        bool(rec["stability"] >= STABLE_MIN and guarded), rec["deflated"], guard),
            rec["z"], rec["clustered"])

"""Cached, resumable feature extraction with the BSLM discriminator (``dcgan``) or contrastive clustering (``cc``).

Cache layout: ``<cache_dir>/<model>-<checkpoint hash>-<input norm>/shard-*.npz``, one shard per batch holding ``ids``,
``filepaths``, ``features`` (and ``cluster_probs`` for cc). Shards are written atomically and describe themselves, so
the set of shards *is* the index: a run that is killed keeps every finished batch, and the next run computes only the
samples that no shard holds (or whose file path changed). Features come back in the order of the requested samples.

Under ``torchrun`` the samples still to compute are split across the ranks (:func:`sardata.runtime.shard`); each rank
writes its shards into the same cache folder, which must therefore be one that every rank reads (one machine, or a
shared filesystem across nodes), and after a barrier every rank assembles all features from it. Rank 0 alone writes
the FiftyOne fields. A sample's feature does not depend on its batch (eval mode), so the features of ``w`` processes
equal those of one to float tolerance.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sardata import checkpoints
from sardata._io import atomic_path, write_json
from sardata.embed import data as edata

MODELS = ("dcgan", "cc")
#: Samples per ``set_values`` call when writing embeddings to FiftyOne.
_WRITE_CHUNK = 1000


@dataclass
class FeatureSet:
    """Features of a sample collection.

    Attributes:
        sample_ids: sample ids, in the order of the requested samples.
        features: ``(N, D)`` float32; rows of unreadable images are NaN.
        model: ``"dcgan"`` or ``"cc"``.
        checkpoint_hash: first 16 hex digits of the checkpoint's SHA-256 (``"random-init"`` without checkpoint).
        input_norm: the image → model-input normalisation (from the checkpoint's config; part of the cache key).
        positions: spatial positions per channel in the layout of ``features`` (16 for the flat BSLM ``F``,
            ``F[c·16 + p]``; 1 for cc and after PCA), so scene clustering can pool over them.
        cluster_probs: ``(N, M)`` soft cluster assignments (cc only).
        failed_ids: ids of samples whose image could not be read.
        pca: the fitted ``sklearn.decomposition.PCA`` when ``pca_dim`` was given.
    """

    sample_ids: list[str]
    features: np.ndarray
    model: str
    checkpoint_hash: str
    input_norm: str = edata.DEFAULT_INPUT_NORM
    positions: int = 1
    cluster_probs: np.ndarray | None = None
    failed_ids: list[str] = field(default_factory=list)
    pca: object | None = None


class Embedder(nn.Module):
    """Wraps a trained model as ``images in [-1, 1] → (features, cluster_probs | None)``."""

    def __init__(self, model: nn.Module, kind: str, input_norm: str = edata.DEFAULT_INPUT_NORM):
        super().__init__()
        self.model = model
        self.kind = kind
        self.input_norm = input_norm

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.kind == "dcgan":
            return self.model.features(x), None
        return self.model.embed(x)


def default_run_dir(dataset_name: str, model: str) -> Path:
    """``work_dir(dataset_name, model)``: where ``sardata embed train-*`` writes its checkpoints by default."""
    from sardata.paths import work_dir

    return work_dir(dataset_name, model, create=False)


def default_checkpoint(dataset_name: str, model: str) -> Path | None:
    """The newest checkpoint of :func:`default_run_dir` (see :func:`sardata.checkpoints.find_checkpoint`), or None."""
    return checkpoints.find_checkpoint(default_run_dir(dataset_name, model), required=False)


def file_hash(path: str | os.PathLike) -> str:
    """First 16 hex digits of a file's SHA-256.

    GAN checkpoints are ~300 MB, so the hash is remembered in ``<file>.sha256.json`` next to it, keyed by size and
    modification time, and recomputed only when the file changes (or the sidecar cannot be written).
    """
    import json

    path = Path(path)
    stat = path.stat()
    sidecar = path.with_name(path.name + ".sha256.json")
    key = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    try:
        saved = json.loads(sidecar.read_text())
        if {k: saved.get(k) for k in key} == key:
            return saved["sha256"][:16]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    try:
        write_json(sidecar, {**key, "sha256": digest.hexdigest()}, indent=None)
    except OSError:
        pass  # a read-only checkpoint folder: hash again next time
    return digest.hexdigest()[:16]


def load_embedder(
    model: str,
    checkpoint: str | os.PathLike | None,
    allow_random_init: bool = False,
    dataset_name: str | None = None,
    input_norm: str | None = None,
) -> tuple[Embedder, int, str]:
    """Builds the embedder from a checkpoint: returns ``(embedder, image_size, checkpoint_hash)``.

    Without ``checkpoint``, the dataset's default checkpoint is used; when there is none, a ``ValueError`` says how to
    make one, unless ``allow_random_init`` (then a seeded random-init model, hash ``"random-init"``).
    The embedder's ``input_norm`` is the one recorded in the checkpoint (``"none"`` for checkpoints older than input
    standardisation). Asking for another one is an error: features of a model fed differently from its training
    would be silently worse. A random-init model takes ``input_norm`` (default ``"db_zscore"``).
    """
    from sardata.embed import contrastive, dcgan

    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; expected one of {MODELS}")
    if input_norm is not None and input_norm not in edata.INPUT_NORMS:
        raise ValueError(f"unknown input_norm {input_norm!r}; expected one of {edata.INPUT_NORMS}")
    if checkpoint is None and dataset_name is not None:
        checkpoint = default_checkpoint(dataset_name, model)
    if checkpoint is None:
        if not allow_random_init:
            train = "train-gan" if model == "dcgan" else "train-cc"
            raise ValueError(
                f"no {model} checkpoint"
                + (f" in {default_run_dir(dataset_name, model)}" if dataset_name else "")
                + f": train one (`sardata embed {train} DATASET`), pass checkpoint=PATH, or pass "
                "allow_random_init=True (--random-init) to use an untrained model deliberately"
            )
        # Seeded, so that the cache key "random-init" always means the same weights; the caller's RNG is untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            if model == "dcgan":
                net, image_size = dcgan.Discriminator(), dcgan.DEFAULT_IMAGE_SIZE
            else:
                net, image_size = contrastive.ContrastiveClustering(), contrastive.DEFAULT_IMAGE_SIZE
        return Embedder(net, model, input_norm or edata.DEFAULT_INPUT_NORM).eval(), image_size, "random-init"
    checkpoint = checkpoints.find_checkpoint(checkpoint)  # a run directory: its newest checkpoint
    state = checkpoints.load_checkpoint(checkpoint, mmap=True)
    if state.get("kind") != model:
        raise ValueError(f"{checkpoint}: a {state.get('kind')!r} checkpoint, but model={model!r} was asked")
    trained_norm = edata.checkpoint_input_norm(state["config"])
    if input_norm is not None and input_norm != trained_norm:
        raise ValueError(
            f"{checkpoint} was trained with input_norm={trained_norm!r}; extracting with input_norm={input_norm!r} "
            "would mix features of differently fed models. Retrain with that input_norm or leave it unset"
        )
    try:
        net = (dcgan.discriminator_from_checkpoint(state) if model == "dcgan"
               else contrastive.model_from_checkpoint(state))
    except ValueError as error:
        raise ValueError(f"{checkpoint}: {error}") from None
    return Embedder(net, model, trained_norm).eval(), int(state["config"]["image_size"]), file_hash(checkpoint)


def cache_key(model: str, checkpoint_hash: str, input_norm: str) -> str:
    """Name of a feature cache folder: model, checkpoint and input normalisation (never shared across them)."""
    return f"{model}-{checkpoint_hash}-{input_norm}"


def extract_features(
    samples,
    model: str = "dcgan",
    checkpoint: str | os.PathLike | None = None,
    allow_random_init: bool = False,
    batch_size: int = 32,
    num_workers: int | None = None,
    device: str | torch.device | None = None,
    cache_dir: str | os.PathLike | None = None,
    pca_dim: int | None = None,
    embedding_field: str | None = None,
    cluster_field: str | None = None,
    input_norm: str | None = None,
    progress: bool = True,
) -> FeatureSet:
    """Extracts (cached, resumable) scene features for every sample.

    Args:
        samples: FiftyOne dataset/view, dataset name, or list of image paths.
        model ("dcgan"): ``"dcgan"`` (28672-d BSLM feature) or ``"cc"`` (512-d encoder feature + cluster probs).
        checkpoint (None): checkpoint file or run directory; None → the newest in ``work_dir(dataset_name, model)``.
        allow_random_init (False): use an untrained model when there is no checkpoint (never done silently).
        batch_size (32): images per forward pass and per cache shard.
        num_workers (None): DataLoader workers; None → min(4, cpu_count).
        device (None): torch device; None → CUDA when available.
        cache_dir (None): cache root; None → ``work_dir(dataset_name, "features")`` (a temporary directory for bare
            image paths).
        pca_dim (None): reduce features to this many dimensions with PCA (fitted on these samples).
        embedding_field (None): sample field to write the (reduced) vectors to (team default
            ``f"{model}_embedding"``); requires a FiftyOne collection.
        cluster_field (None): cc only: sample field for the argmax cluster (e.g. ``"cc_cluster"``).
        input_norm (None): the checkpoint's (an error if another is asked); for a random-init model, default
            ``"db_zscore"``.
        progress (True): show a progress bar.

    The cache folder is ``<model>-<checkpoint hash>-<input_norm>`` (:func:`cache_key`). The field's FiftyOne
    ``info`` records the model, checkpoint hash, input normalisation and ``positions``.
    """
    from sardata import runtime
    from sardata.paths import work_dir
    from sardata.runtime import resolve_device

    source = edata.resolve_samples(samples)
    if (embedding_field or cluster_field) and source.collection is None:
        raise ValueError("embedding_field/cluster_field need a FiftyOne dataset or view, not bare image paths")
    if cluster_field and model != "cc":
        raise ValueError("cluster_field is only available for model='cc'")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    embedder, image_size, ckpt_hash = load_embedder(model, checkpoint, allow_random_init, source.dataset_name,
                                                    input_norm)
    world = runtime.init_distributed(device)
    device = resolve_device(device)
    if world["distributed"] and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", world["local_rank"])  # one GPU per process

    temp_dir = None
    if cache_dir is None and source.dataset_name is None:
        temp_dir = tempfile.TemporaryDirectory(prefix="sardata-features-")
        cache_dir = temp_dir.name
    root = Path(cache_dir) if cache_dir is not None else work_dir(source.dataset_name, "features")
    shard_dir = root / cache_key(model, ckpt_hash, embedder.input_norm)
    shard_dir.mkdir(parents=True, exist_ok=True)
    try:
        cached = _scan_shards(shard_dir)
        todo = [
            i for i, (sid, path) in enumerate(zip(source.ids, source.filepaths))
            if cached.get(sid, (None, None))[1] != path
        ]
        failed = _compute(embedder, source, runtime.shard(todo), image_size, shard_dir, batch_size, num_workers,
                          device, progress and runtime.is_main_process())
        if world["distributed"]:
            failed = runtime.all_gather_list(failed)
            runtime.barrier()  # every rank's shards are written
        index = _scan_shards(shard_dir)
        _check_all_cached(source, index, failed, shard_dir)
        result = _assemble(source, index, failed, model, ckpt_hash)
        result.input_norm = embedder.input_norm
        result.positions = _positions(model, result.features.shape[1])
        if world["distributed"]:
            runtime.barrier()  # no rank removes a temporary cache while another still reads it
    finally:
        if world["owns_group"]:
            runtime.cleanup_distributed()
        if temp_dir is not None:
            temp_dir.cleanup()
    if failed:
        warnings.warn(f"{len(failed)} image(s) could not be read and have NaN features: {failed[:5]}", stacklevel=2)
    if pca_dim:
        _reduce(result, int(pca_dim))
    if pca_dim and result.pca is not None:
        result.positions = 1
    if world["rank"] != 0:
        return result
    if embedding_field:
        _write_field(source.collection, embedding_field, result.sample_ids, result.features)
        _describe_field(source.collection, embedding_field, result)
    if cluster_field:
        labels = [int(np.argmax(row)) if np.isfinite(row).all() else None for row in result.cluster_probs]
        _write_field(source.collection, cluster_field, result.sample_ids, labels)
    return result


# --------------------------------------------------------------------------------------------------- helpers


def _scan_shards(shard_dir: Path) -> dict[str, tuple[Path, str]]:
    """``sample id -> (shard path, file path)`` for every cached sample (later shards win)."""
    index: dict[str, tuple[Path, str]] = {}
    for shard in sorted(shard_dir.glob("shard-*.npz")):
        try:
            with np.load(shard, allow_pickle=False) as z:
                ids, paths = z["ids"], z["filepaths"]
        except Exception as e:  # noqa: BLE001 - a damaged shard is recomputed, not fatal
            warnings.warn(f"ignoring unreadable feature shard {shard}: {e}", stacklevel=2)
            continue
        for sid, path in zip(ids.tolist(), paths.tolist()):
            index[sid] = (shard, path)
    return index


def _check_all_cached(source, index, failed, shard_dir: Path) -> None:
    """Every readable sample has a cached feature; under torchrun a miss means the ranks see different folders."""
    failed_ids = set(failed)
    missing = [sid for sid, path in zip(source.ids, source.filepaths)
               if sid not in failed_ids and index.get(sid, (None, None))[1] != path]
    if missing:
        raise RuntimeError(f"{shard_dir}: no cached feature for {len(missing)} sample(s) (e.g. {missing[:3]}) after "
                           "extraction; under torchrun the cache folder must be one that every rank reads (pass "
                           "cache_dir on a shared filesystem, or $SARDATA_HOME on one)")


def _positions(model: str, dim: int) -> int:
    from sardata.embed.dcgan import FEATURE_POSITIONS

    return FEATURE_POSITIONS if model == "dcgan" and dim % FEATURE_POSITIONS == 0 else 1


def _describe_field(collection, field_name: str, result: FeatureSet) -> None:
    """Records what the vectors are in the field's ``info`` (read by :func:`sardata.scenes.assign_scenes`)."""
    dataset = collection._dataset
    field = dataset.get_field(field_name)
    field.info = {
        "model": result.model,
        "checkpoint_hash": result.checkpoint_hash,
        "input_norm": result.input_norm,
        "positions": int(result.positions),
        "dim": int(result.features.shape[1]),
        "pca_dim": None if result.pca is None else int(result.features.shape[1]),
    }
    field.save()


def _embed_batch(embedder: Embedder, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
    """Forward pass of one batch of images (uint8 or ``[0, 1]`` float) already on the model's device."""
    feats, probs = embedder(edata.to_model_input(images, embedder.input_norm))
    return feats.float().cpu().numpy(), (probs.float().cpu().numpy() if probs is not None else None)


def _write_shard(shard_dir: Path, ids, paths, feats: np.ndarray, probs: np.ndarray | None) -> Path:
    """One batch as ``shard-<time>-<pid>.npz``, written atomically."""
    arrays = {"ids": np.asarray(ids, dtype=str), "filepaths": np.asarray(paths, dtype=str), "features": feats}
    if probs is not None:
        arrays["cluster_probs"] = probs
    final = shard_dir / f"shard-{time.time_ns():020d}-{os.getpid()}.npz"
    with atomic_path(final) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    return final


def _compute(embedder, source, todo, image_size, shard_dir, batch_size, num_workers, device, progress) -> list[str]:
    """Embeds the ``todo`` sample indices, one shard per batch. Returns the ids whose image could not be read."""
    from tqdm.auto import tqdm

    if not todo:
        return []
    dataset = edata.SampleImageDataset([source.filepaths[i] for i in todo], image_size, uint8=True)
    loader = edata.make_loader(dataset, batch_size, False, num_workers, device)
    embedder.to(device).eval()
    failed: list[str] = []
    with torch.inference_mode(), tqdm(total=len(todo), desc=f"{embedder.kind} features",
                                      disable=not progress, unit="img") as bar:
        for batch in loader:
            ok = batch["ok"].numpy()
            rows = [todo[i] for i in batch["index"].tolist()]
            failed.extend(source.ids[r] for r, good in zip(rows, ok) if not good)
            keep = [r for r, good in zip(rows, ok) if good]
            if keep:
                feats, probs = _embed_batch(embedder, batch["image"].to(device, non_blocking=True))
                _write_shard(
                    shard_dir, [source.ids[r] for r in keep], [source.filepaths[r] for r in keep],
                    feats[ok], probs[ok] if probs is not None else None,
                )
            bar.update(len(rows))
    return failed


def _assemble(source, index, failed, model, ckpt_hash) -> FeatureSet:
    """Reads the needed shards into ``(N, D)`` arrays in the order of ``source.ids``."""
    position = {sid: i for i, sid in enumerate(source.ids)}
    by_shard: dict[Path, None] = {}
    for sid in source.ids:
        if sid in index and index[sid][1] == source.filepaths[position[sid]]:
            by_shard.setdefault(index[sid][0], None)
    features = probs = None
    for shard in by_shard:
        with np.load(shard, allow_pickle=False) as z:
            ids, feats = z["ids"].tolist(), z["features"]
            shard_probs = z["cluster_probs"] if "cluster_probs" in z.files else None
            if features is None:
                features = np.full((len(source.ids), feats.shape[1]), np.nan, dtype=np.float32)
                if shard_probs is not None:
                    probs = np.full((len(source.ids), shard_probs.shape[1]), np.nan, dtype=np.float32)
            for row, sid in enumerate(ids):
                i = position.get(sid)
                # A sample can sit in an older shard too; take the row from the shard the index chose.
                if i is not None and index[sid][0] == shard:
                    features[i] = feats[row]
                    if probs is not None:
                        probs[i] = shard_probs[row]
    if features is None:
        raise ValueError(f"no image could be read ({len(failed)} failed, e.g. {failed[:3]})")
    return FeatureSet(list(source.ids), features, model, ckpt_hash, cluster_probs=probs, failed_ids=failed)


def _reduce(result: FeatureSet, pca_dim: int) -> None:
    """PCA to ``pca_dim`` dimensions, fitted on the readable rows; NaN rows stay NaN."""
    from sklearn.decomposition import PCA

    good = np.isfinite(result.features).all(axis=1)
    n_good, dim = int(good.sum()), result.features.shape[1]
    if pca_dim >= dim:
        return
    if pca_dim > n_good:
        warnings.warn(f"pca_dim={pca_dim} > {n_good} samples: reducing to {n_good} dimensions", stacklevel=3)
        pca_dim = n_good
    pca = PCA(n_components=pca_dim, svd_solver="auto", random_state=0)
    reduced = np.full((len(result.sample_ids), pca_dim), np.nan, dtype=np.float32)
    reduced[good] = pca.fit_transform(result.features[good]).astype(np.float32)
    result.features = reduced
    result.pca = pca


def _write_field(collection, field_name: str, ids: list[str], values) -> None:
    """``set_values(..., key_field="id")`` in chunks; unreadable samples get None."""
    values = [None if v is None or (isinstance(v, np.ndarray) and not np.isfinite(v).all()) else v for v in values]
    for start in range(0, len(ids), _WRITE_CHUNK):
        chunk = dict(zip(ids[start : start + _WRITE_CHUNK], values[start : start + _WRITE_CHUNK]))
        collection.set_values(field_name, chunk, key_field="id")


__all__ = [
    "Embedder", "FeatureSet", "MODELS", "cache_key", "default_checkpoint", "default_run_dir", "extract_features",
    "file_hash", "load_embedder",
]

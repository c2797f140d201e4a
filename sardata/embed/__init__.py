"""Scene embeddings: BSLM DCGAN discriminator features and contrastive clustering, with cached extraction.

- :mod:`sardata.embed.dcgan`: ``Generator``, ``Discriminator`` (C8…C14, 28672-d scene feature), ``train_gan``.
- :mod:`sardata.embed.contrastive`: ResNet18 + instance/cluster heads, ``nt_xent``, ``cluster_loss``, ``train_cc``.
- :mod:`sardata.embed.augment`: SAR augmentations (speckle re-sampling, flips/rot90, crops, dB jitter).
- :mod:`sardata.embed.data`: images of FiftyOne samples as tensors; checkpoint/curve files of training runs.
- :mod:`sardata.embed.extract`: ``extract_features`` → ``FeatureSet`` (cached per checkpoint, resumable).

Names are imported lazily so that ``import sardata.embed`` (and the CLI's help) stays fast.
"""

from importlib import import_module

_EXPORTS = {
    "train_gan": "dcgan",
    "Generator": "dcgan",
    "Discriminator": "dcgan",
    "train_cc": "contrastive",
    "ContrastiveClustering": "contrastive",
    "nt_xent": "contrastive",
    "cluster_loss": "contrastive",
    "extract_features": "extract",
    "FeatureSet": "extract",
    "SarAugment": "augment",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"sardata.embed.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'sardata.embed' has no attribute {name!r}")

"""Seed 002's sequential protocol: train a ship classifier on one base dataset, then fine-tune it on the others in
turn, with frozen and unfrozen variants, scoring every stage on every dataset's test split.

Readings of the seed written down here:

* **Order.** The base dataset (FUSAR, OpenSARShip or Mix) first, then the other datasets *in turn*, each stage
  starting from the previous stage's best checkpoint (validation macro F1): ``base → second → third``.
* **Variants.** ``frozen``: in the fine-tuning stages only the classification head trains (every other layer, its
  weights and batch-norm statistics, is kept from the previous stage); ``unfrozen``: every layer trains. The base
  stage is the same ordinary training for both (the model's own rule: ``f-*`` models keep their ImageNet backbone
  frozen), so it is trained once and shared.
* **Head.** The three datasets share the ships3 classes, so the head carries over; with different classes it is
  re-initialised (:class:`~sardata.train.classifier.ClassifierConfig` ``init_from``).
* **Scores.** Each stage's model is evaluated on the test split of every dataset in the protocol (accuracy, macro and
  weighted F1 beside each test split's majority-class baseline), so the gain on the new dataset and what is kept on
  the earlier ones are both visible. Test splits must be disjoint from every training split of the protocol (for
  Mix, take each chip's split from its source dataset); that is the caller's job.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from exporters.contract import is_replica
from sardata._io import write_json
from sardata.train.classifier import (
    ChipTransform,
    ClassifierConfig,
    SarImageFolder,
    evaluate,
    load_classifier,
    split_dirs,
)
from sardata.train.classifier import train as train_classifier

#: Fine-tuning variants → the ``trainable`` setting of their fine-tuning stages.
VARIANTS = {"frozen": "head", "unfrozen": "all"}


def evaluate_checkpoint(checkpoint: str | Path, data: str | Path, split: str = "test", device=None,
                        batch_size: int = 64, max_images: int | None = None) -> dict:
    """Metrics of a classifier checkpoint on ``<data>/<split>`` (no augmentation, replicas counted once), with the
    majority-class baseline of ``<data>/train``."""
    from sardata.runtime import resolve_device

    device = resolve_device(device) if not isinstance(device, torch.device) else device
    model, args = load_classifier(checkpoint, device=device)
    kwargs = args["model_kwargs"]
    classes = list(kwargs["classes"])
    splits = split_dirs(Path(data))
    if split not in splits:
        raise FileNotFoundError(f"{data}: no {split}/ split to evaluate on")
    transform = ChipTransform(kwargs["image_size"], kwargs["image_mean"], kwargs["image_std"], train=False)
    dataset = SarImageFolder(splits[split], classes, transform)
    dataset.samples = [s for s in dataset.samples if not is_replica(s[0])][:max_images]
    train_labels = None
    if "train" in splits:
        train_labels = [t for _, t in SarImageFolder(splits["train"], classes).samples]
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size)
    return evaluate(model, loader, device, classes, train_labels)


def sequential_protocol(exports: dict[str, str | Path], base: str, config: ClassifierConfig, out_dir: str | Path,
                        order: list[str] | None = None, variants: tuple[str, ...] = tuple(VARIANTS)) -> dict:
    """Runs the protocol (module docstring) for one model.

    Args:
        exports: ``{dataset name: ImageFolder export root}``.
        base: the dataset trained on first.
        config: the training settings of every stage (``data``, ``out_dir``, ``init_from`` and ``trainable`` are
            set per stage).
        out_dir: stage runs go to ``<out_dir>/<variant>/<stage>_<dataset>``.
        order (None): the fine-tuning datasets in turn (default: the others in ``exports`` order).
        variants (("frozen", "unfrozen")): which fine-tuning variants to run.

    Returns:
        ``{"base", "order", "stages": [{"variant", "stage", "trained_on", "path", "checkpoint", "test":
        {dataset: metrics}}], "json"}``; also written to ``<out_dir>/sequential.json``.
    """
    if base not in exports:
        raise ValueError(f"base {base!r} is not one of the datasets {sorted(exports)}")
    order = list(order) if order is not None else [name for name in exports if name != base]
    unknown = [name for name in order if name not in exports or name == base]
    if unknown:
        raise ValueError(f"fine-tuning datasets {unknown} must be datasets of {sorted(exports)} other than {base!r}")
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        raise ValueError(f"unknown variants {bad}; expected some of {tuple(VARIANTS)}")
    out_dir = Path(out_dir)
    names = [base] + order

    def run(stage: int, dataset: str, variant: str, init_from: Path | None, trainable: str, path: list[str]):
        run_dir = out_dir / variant / f"{stage}_{dataset}"
        cfg = dataclasses.replace(config, data=Path(exports[dataset]), out_dir=run_dir, init_from=init_from,
                                  trainable=trainable, resume=None, test_only=False)
        trained = train_classifier(cfg)
        best = trained["best"] if Path(trained["best"]).is_file() else trained["checkpoint"]
        tests = {name: evaluate_checkpoint(best, exports[name], device=config.device, batch_size=config.batch_size,
                                           max_images=config.max_images) for name in names}
        return {"variant": variant, "stage": stage, "trained_on": dataset, "path": path + [dataset],
                "trainable": trainable, "checkpoint": str(best), "best_epoch": trained["best_epoch"], "test": tests}

    stages = [run(0, base, "base", None, "default", [])]
    for variant in variants:
        previous = stages[0]
        for stage, dataset in enumerate(order, start=1):
            previous = run(stage, dataset, variant, Path(previous["checkpoint"]), VARIANTS[variant],
                           previous["path"])
            stages.append(previous)
    result = {"base": base, "order": order, "model": config.model, "variants": list(variants), "stages": stages}
    out_dir.mkdir(parents=True, exist_ok=True)
    result["json"] = write_json(out_dir / "sequential.json", result, default=str)
    return result

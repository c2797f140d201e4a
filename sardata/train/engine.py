"""The shared detection training engine: one ``train_one_epoch`` / ``evaluate`` / ``predict``, schedules,
checkpoint / resume and history curves, for every detector trainer (detector, distillation).

Modelled on torchvision's ``references/detection`` split: ``engine.py`` (the loops, pure functions) and ``utils.py``
(checkpoints, logs). ``train_one_epoch`` stops on a non-finite loss and can stop early after ``max_iters`` steps
(schedules are counted in iterations, so a budget may end mid-epoch); ``evaluate`` runs under ``no_grad`` and scores
every detection down to :data:`SCORE_THRESHOLD` (COCO practice) with the project's one COCO evaluation.
Checkpoints are torchvision's (``model_{epoch}.pth`` + ``checkpoint.pth`` holding model / optimizer / lr_scheduler /
args / epoch, plus the metric ``history``), so ``resume`` continues at the next epoch with the same curves.

Inputs: any model with the torchvision detection interface (``model(images, targets)`` → loss dict in training,
``model(images)`` → ``[{"boxes", "scores", "labels"}]`` in eval) and loaders of
:class:`sardata.train.coco_data.CocoDetection` (evaluation/prediction need its ``images`` and ``coco``).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from tqdm.auto import tqdm

from sardata.metrics import SCORE_THRESHOLD, coco_detection_metrics  # the one evaluation threshold
from sardata.runtime import all_reduce_mean
from sardata.train import common
from sardata.train.coco_data import CocoDetection, collate, targets_to

# --------------------------------------------------------------------------------------------- schedules


#: The longest warm-up as a fraction of the run (:func:`warmup_length`).
WARMUP_MAX_FRACTION = 0.25


def warmup_length(warmup_iters: int, total_iters: int, first_step: int | None = None) -> int:
    """The warm-up a run actually gets: ``warmup_iters``, capped at ¼ of the run's ``total_iters`` and ended at the
    first lr step ``first_step`` (an iteration), whichever comes first. The one rule of every trainer's warm-up.

    torchvision's detection references cap the warm-up at one epoch (``min(1000, len(data_loader) - 1)``), which
    never bounds it relative to the run: a short run (the distillation ``--quick`` students: 120 steps, warm-up 100,
    ×0.1 at steps 80 and 110) is then still warming up when the first decay comes, peaks at 0.8 × lr and spends
    most of its steps at a tiny lr. Capping at ¼ of the run means any run spends ≥ ¾ of its steps at full or
    decaying lr; ending before the first step means the full lr is reached before it is decayed. A long run is
    unchanged (the ``--quick`` teacher: 1200 steps, warm-up 100 ≤ 300 and < the first step 800).
    """
    n = min(int(warmup_iters), int(WARMUP_MAX_FRACTION * max(0, int(total_iters))))
    if first_step is not None:
        n = min(n, int(first_step))
    return max(0, n)


def warmup_step_lambda(iters_per_epoch: int, warmup_iters: int, warmup_factor: float, lr_steps, gamma: float):
    """LR factor per iteration: linear warm-up over ``warmup_iters`` (as given: trainers pass
    :func:`warmup_length`), then ×``gamma`` at each epoch in ``lr_steps`` (mmdetection 1x)."""
    milestones = [int(s) * iters_per_epoch for s in lr_steps]

    def factor(iteration: int) -> float:
        warm = 1.0
        if iteration < warmup_iters:
            alpha = iteration / max(1, warmup_iters)
            warm = warmup_factor * (1 - alpha) + alpha
        return warm * gamma ** sum(iteration >= m for m in milestones)

    return factor


def warmup_cosine_lambda(total_iters: int, warmup_iters: int, warmup_factor: float = 0.001,
                         final_factor: float = 0.01):
    """LR factor per iteration: linear warm-up from ``warmup_factor`` over ``warmup_iters``, then cosine decay to
    ``final_factor`` at ``total_iters`` (``warmup_iters`` as given, at most ``total_iters`` − 1: trainers pass
    :func:`warmup_length`)."""
    total_iters = max(1, int(total_iters))
    warmup_iters = min(int(warmup_iters), total_iters - 1)

    def factor(iteration: int) -> float:
        if iteration < warmup_iters:
            alpha = iteration / max(1, warmup_iters)
            return warmup_factor * (1 - alpha) + alpha
        progress = min(1.0, (iteration - warmup_iters) / max(1, total_iters - warmup_iters))
        return final_factor + (1 - final_factor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def build_optimizer(model: torch.nn.Module, name: str, lr: float, momentum: float = 0.9,
                    weight_decay: float = 1e-4) -> torch.optim.Optimizer:
    """``sgd`` (the papers') or ``adamw`` (from-scratch CPU runs) over the trainable parameters.

    Norm-layer weights and biases get no weight decay under AdamW (decoupled decay would pull GroupNorm gains to 0);
    SGD decays every parameter, as torchvision's and mmdetection's detection configs do.
    """
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if name == "sgd":
        return torch.optim.SGD([p for _, p in params], lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adamw":
        decay = [p for n, p in params if p.ndim > 1]
        no_decay = [p for n, p in params if p.ndim <= 1]
        return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                  {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    raise ValueError(f"unknown optimizer {name!r}; expected sgd or adamw")


# --------------------------------------------------------------------------------------------- loops


def train_one_epoch(model, optimizer, data_loader, device, epoch: int, lr_scheduler=None, scaler=None,
                    amp: bool = False, progress: bool = True, max_iters: int | None = None,
                    grad_clip: float | None = None) -> dict[str, float]:
    """One pass over ``data_loader`` (or its first ``max_iters`` batches); ``lr_scheduler`` steps every iteration.

    Args:
        grad_clip (None): clip the gradient norm to this value (from-scratch runs with AdamW/high lr).

    Returns:
        Mean of each loss and of their sum (``loss``), the last ``lr`` and ``iters`` (steps taken). Under
        DistributedDataParallel the loss means are averaged over the ranks (one all-reduce per epoch), so they are the
        means over the global batch that the averaged gradients came from, whatever the number of processes.

    Raises:
        FloatingPointError: a loss became NaN or infinite (training cannot recover; lower the lr).
    """
    model.train()
    sums: dict[str, float] = {}
    count = 0
    total = len(data_loader) if max_iters is None else min(len(data_loader), max_iters)
    bar = tqdm(data_loader, total=total, desc=f"epoch {epoch}", disable=not progress, leave=False)
    for images, targets in bar:
        if max_iters is not None and count >= max_iters:
            break
        images = [image.to(device, non_blocking=True) for image in images]
        targets = targets_to(targets, device)
        with common.autocast(device, amp):
            loss_dict = model(images, targets)
            loss = sum(loss_dict.values())
        if not math.isfinite(loss.item()):
            raise FloatingPointError(
                f"epoch {epoch}: loss is {loss.item()} ({ {k: round(v.item(), 4) for k, v in loss_dict.items()} }); "
                "stopping training"
            )
        if grad_clip:
            _step_clipped(loss, optimizer, scaler, model, grad_clip)
        else:
            common.optimizer_step(loss, optimizer, scaler)
        if lr_scheduler is not None:
            lr_scheduler.step()
        count += 1
        sums["loss"] = sums.get("loss", 0.0) + loss.item()
        for key, value in loss_dict.items():
            sums[key] = sums.get(key, 0.0) + value.item()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    means = all_reduce_mean({k: v / max(count, 1) for k, v in sums.items()})
    means["lr"] = optimizer.param_groups[0]["lr"]
    means["iters"] = count
    return means


@torch.no_grad()
def predict_loader(model, data_loader, device, progress: bool = True, tile_size: int | None = None,
                   tile_overlap: int = 64) -> list[dict]:
    """COCO result dicts (absolute xywh) for every image of a :class:`CocoDetection` loader.

    Args:
        tile_size (None): images larger than this on either side are predicted in overlapping tiles
            (:func:`tiled_forward`); None predicts whole images.

    Each result also carries ``sample_id`` (when the export has it) and ``category_name``.
    """
    model.eval()
    dataset = data_loader.dataset
    entries = {image["id"]: image for image in dataset.images}
    names = {c["id"]: c["name"] for c in dataset.coco["categories"]}
    results = []
    for images, targets in tqdm(data_loader, desc="predict", disable=not progress, leave=False):
        images = [image.to(device, non_blocking=True) for image in images]
        if tile_size and any(max(image.shape[-2:]) > tile_size for image in images):
            outputs = [tiled_forward(model, image, tile_size, tile_overlap) for image in images]
        else:
            outputs = model(images)
        for target, output in zip(targets, outputs):
            entry = entries[target["image_id"]]
            boxes = output["boxes"].float().cpu()
            boxes[:, 2:] -= boxes[:, :2]
            for box, score, label in zip(boxes.tolist(), output["scores"].tolist(), output["labels"].tolist()):
                result = {"image_id": entry["id"], "category_id": int(label), "bbox": [round(v, 2) for v in box],
                          "score": round(float(score), 5), "category_name": names.get(int(label), str(label))}
                if "sample_id" in entry:
                    result["sample_id"] = entry["sample_id"]
                results.append(result)
    return results


def tiled_forward(model, image: torch.Tensor, tile_size: int, overlap: int = 64, iou: float = 0.5) -> dict:
    """Detections of one large ``(C, H, W)`` image from overlapping ``tile_size`` windows, merged by per-class NMS.

    Windows step by ``tile_size - overlap`` and the last window of a row/column is shifted back to end at the image
    border, so every pixel is seen at full resolution and a box up to ``overlap`` px wide lies whole in some window.
    """
    from torchvision.ops import batched_nms

    height, width = image.shape[-2:]
    step = max(1, tile_size - overlap)

    def starts(length: int) -> list[int]:
        if length <= tile_size:
            return [0]
        out = list(range(0, length - tile_size, step))
        return out + [length - tile_size]

    windows = [(y, x) for y in starts(height) for x in starts(width)]
    boxes, scores, labels = [], [], []
    for y, x in windows:
        output = model([image[:, y:y + tile_size, x:x + tile_size]])[0]
        boxes.append(output["boxes"] + torch.tensor([x, y, x, y], dtype=output["boxes"].dtype,
                                                    device=output["boxes"].device))
        scores.append(output["scores"])
        labels.append(output["labels"])
    boxes, scores, labels = torch.cat(boxes), torch.cat(scores), torch.cat(labels)
    keep = batched_nms(boxes, scores, labels, iou)
    return {"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]}


def gt_of(dataset: CocoDetection) -> dict:
    """The COCO ground truth restricted to the dataset's (deduplicated) images."""
    ids = {image["id"] for image in dataset.images}
    return {
        "images": list(dataset.images),
        "annotations": [a for a in dataset.coco["annotations"] if a["image_id"] in ids],
        "categories": dataset.coco["categories"],
    }


def coco_evaluation(gt: dict, results: list[dict], score_threshold: float = SCORE_THRESHOLD) -> dict:
    """The project's COCO evaluation of ``results`` against ``gt`` (detections below ``score_threshold`` dropped)."""
    return coco_detection_metrics(gt, results, score_threshold=score_threshold)


def evaluate(model, data_loader, device, progress: bool = True, tile_size: int | None = None,
             score_threshold: float = SCORE_THRESHOLD) -> tuple[dict, list[dict]]:
    """COCO mAP/AP50 of ``model`` on a :class:`CocoDetection` loader (one entry per sample).

    Returns:
        ``(metrics, results)``: the metric dict (``AP50``, ``mAP``, ...) and the COCO results it scored.
    """
    results = predict_loader(model, data_loader, device, progress, tile_size)
    return coco_evaluation(gt_of(data_loader.dataset), results, score_threshold), results


def predict(model, data_dir, split: str = "test", device=None, batch_size: int = 4, workers: int = 0,
            progress: bool = True, tile_size: int | None = None) -> list[dict]:
    """COCO result dicts with ``sample_id`` for one split of a COCO export, one image per FiftyOne sample."""
    from sardata.runtime import resolve_device

    device = device if isinstance(device, torch.device) else resolve_device(device)
    model.to(device)
    dataset = CocoDetection(data_dir, split, dedup=True)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate)
    return predict_loader(model, loader, device, progress, tile_size)


# --------------------------------------------------------------------------------------------- checkpoints, history


def save(out_dir, epoch: int, model, optimizer=None, lr_scheduler=None, args=None, scaler=None,
         history: list[dict] | None = None, keep_every_epoch: bool = True) -> Path | None:
    """``model_{epoch}.pth`` (unless ``keep_every_epoch`` is False) + ``checkpoint.pth`` (with the metric
    ``history``) and the curves ``metrics.{json,csv,png}``; main process only."""
    path = common.save_checkpoint(out_dir, epoch, model, optimizer, lr_scheduler, args, scaler,
                                  extra={"history": common.plain(history or [])}, keep_every_epoch=keep_every_epoch)
    if history and common.is_main_process():
        common.write_history(history, out_dir)
    return path


def resume(checkpoint: dict, model, optimizer=None, lr_scheduler=None, scaler=None) -> tuple[int, list[dict]]:
    """Loads a :func:`save` checkpoint into the training objects; returns ``(next_epoch, history)``."""
    common.unwrap(model).load_state_dict(checkpoint["model"])
    if optimizer is not None and "optimizer" in checkpoint:
        optimizer.load_state_dict(checkpoint["optimizer"])
    if lr_scheduler is not None and "lr_scheduler" in checkpoint:
        lr_scheduler.load_state_dict(checkpoint["lr_scheduler"])
    if scaler is not None and "scaler" in checkpoint:
        scaler.load_state_dict(checkpoint["scaler"])
    history = [dict(r) for r in checkpoint.get("history", [])]
    return int(checkpoint.get("epoch", -1)) + 1, history


def write_history(history: list[dict], out_dir, name: str = "metrics") -> dict[str, Path]:
    """Per-epoch records → ``<name>.json``, ``<name>.csv`` and ``<name>.png``."""
    return common.write_history(history, out_dir, name)


# --------------------------------------------------------------------------------------------- helpers


def _step_clipped(loss, optimizer, scaler, model, max_norm: float) -> None:
    optimizer.zero_grad(set_to_none=True)
    params = [p for p in model.parameters() if p.requires_grad]
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, max_norm)
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, max_norm)
        optimizer.step()

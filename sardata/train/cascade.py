"""Cascade R-CNN (Cai & Vasconcelos, CVPR 2018) from torchvision's RoI components; torchvision has no Cascade R-CNN.

A :class:`torchvision.models.detection.FasterRCNN` whose ``roi_heads`` is a :class:`CascadeRoIHeads`: three box
stages trained at IoU 0.5 / 0.6 / 0.7, each a torchvision :class:`~torchvision.models.detection.roi_heads.RoIHeads`
(``MultiScaleRoIAlign`` → ``TwoMLPHead`` → ``FastRCNNPredictor``, with its own ``Matcher``,
``BalancedPositiveNegativeSampler`` and ``BoxCoder`` at weights (10,10,5,5), (20,20,10,10), (30,30,15,15)). Each
stage's regressed boxes, detached, are the next stage's proposals. Losses are weighted 1, 0.5, 0.25 as in
mmdetection's ``cascade_rcnn_r50_fpn`` (the BSLM paper's implementation). At inference the class logits of the three
stages are averaged and the last stage's boxes are kept.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.roi_heads import RoIHeads, fastrcnn_loss
from torchvision.ops import MultiScaleRoIAlign, boxes as box_ops

STAGE_IOUS = (0.5, 0.6, 0.7)
STAGE_BOX_WEIGHTS = ((10.0, 10.0, 5.0, 5.0), (20.0, 20.0, 10.0, 10.0), (30.0, 30.0, 15.0, 15.0))
STAGE_LOSS_WEIGHTS = (1.0, 0.5, 0.25)


class CascadeRoIHeads(nn.Module):
    """Three torchvision ``RoIHeads`` run in sequence, each refining the previous stage's boxes.

    Args:
        box_roi_pool: the RoI pooling shared by the stages (``MultiScaleRoIAlign``).
        out_channels: channels of the backbone's feature maps.
        num_classes: classes including background (index 0), as torchvision counts them.
        stage_ious (STAGE_IOUS): foreground IoU threshold of each stage.
        stage_box_weights (STAGE_BOX_WEIGHTS): box coder weights of each stage (finer targets in later stages).
        stage_loss_weights (STAGE_LOSS_WEIGHTS): weight of each stage's loss.
        representation_size (1024): width of each stage's ``TwoMLPHead``.
        batch_size_per_image (512), positive_fraction (0.25): RoI sampling per stage.
        score_thresh (0.05), nms_thresh (0.5), detections_per_img (100): post-processing of the final stage.
    """

    def __init__(self, box_roi_pool: MultiScaleRoIAlign, out_channels: int, num_classes: int,
                 stage_ious=STAGE_IOUS, stage_box_weights=STAGE_BOX_WEIGHTS, stage_loss_weights=STAGE_LOSS_WEIGHTS,
                 representation_size: int = 1024, batch_size_per_image: int = 512, positive_fraction: float = 0.25,
                 score_thresh: float = 0.05, nms_thresh: float = 0.5, detections_per_img: int = 100):
        super().__init__()
        if not (len(stage_ious) == len(stage_box_weights) == len(stage_loss_weights)):
            raise ValueError("stage_ious, stage_box_weights and stage_loss_weights must have one entry per stage")
        resolution = box_roi_pool.output_size[0]
        self.stage_loss_weights = tuple(float(w) for w in stage_loss_weights)
        self.stages = nn.ModuleList(
            RoIHeads(
                box_roi_pool=box_roi_pool,
                box_head=TwoMLPHead(out_channels * resolution**2, representation_size),
                box_predictor=FastRCNNPredictor(representation_size, num_classes),
                fg_iou_thresh=iou,
                bg_iou_thresh=iou,
                batch_size_per_image=batch_size_per_image,
                positive_fraction=positive_fraction,
                bbox_reg_weights=weights,
                score_thresh=score_thresh,
                nms_thresh=nms_thresh,
                detections_per_img=detections_per_img,
            )
            for iou, weights in zip(stage_ious, stage_box_weights)
        )

    def _run_stage(self, stage: RoIHeads, features, proposals, image_shapes):
        box_features = stage.box_head(stage.box_roi_pool(features, proposals, image_shapes))
        return stage.box_predictor(box_features)

    @staticmethod
    def _refine(stage: RoIHeads, class_logits, box_regression, proposals, image_shapes, labels=None):
        """Each RoI's box regressed for its class (the assigned label when training, else the best foreground
        class), clipped to the image and detached: the next stage's proposals."""
        counts = [len(p) for p in proposals]
        decoded = stage.box_coder.decode(box_regression, proposals)  # (N, num_classes, 4)
        best_fg = class_logits[:, 1:].argmax(dim=1) + 1
        if labels is not None:
            chosen = torch.cat(labels)
            chosen = torch.where(chosen > 0, chosen, best_fg)
        else:
            chosen = best_fg
        boxes = decoded[torch.arange(decoded.shape[0], device=decoded.device), chosen].detach()
        refined = []
        for per_image, shape in zip(boxes.split(counts), image_shapes):
            per_image = box_ops.clip_boxes_to_image(per_image, shape)
            refined.append(per_image)
        return refined

    def forward(self, features, proposals, image_shapes, targets=None):
        if self.training:
            if targets is None:
                raise ValueError("targets are required in training mode")
            self.stages[0].check_targets(targets)
            losses = {}
            for index, (stage, weight) in enumerate(zip(self.stages, self.stage_loss_weights)):
                proposals, _, labels, regression_targets = stage.select_training_samples(proposals, targets)
                class_logits, box_regression = self._run_stage(stage, features, proposals, image_shapes)
                loss_classifier, loss_box_reg = fastrcnn_loss(class_logits, box_regression, labels, regression_targets)
                losses[f"loss_classifier_s{index}"] = weight * loss_classifier
                losses[f"loss_box_reg_s{index}"] = weight * loss_box_reg
                if index + 1 < len(self.stages):
                    proposals = self._refine(stage, class_logits, box_regression, proposals, image_shapes, labels)
            return [], losses

        stage_logits = []
        for index, stage in enumerate(self.stages):
            class_logits, box_regression = self._run_stage(stage, features, proposals, image_shapes)
            stage_logits.append(class_logits)
            if index + 1 < len(self.stages):
                proposals = self._refine(stage, class_logits, box_regression, proposals, image_shapes)
        mean_logits = torch.stack(stage_logits).mean(dim=0)
        boxes, scores, labels = self.stages[-1].postprocess_detections(
            mean_logits, box_regression, proposals, image_shapes
        )
        detections = [{"boxes": b, "labels": l, "scores": s} for b, s, l in zip(boxes, scores, labels)]
        return detections, {}


def cascade_rcnn(backbone: nn.Module, num_classes: int, featmap_names: list[str], **faster_rcnn_kwargs) -> FasterRCNN:
    """A Cascade R-CNN on ``backbone`` (an FPN backbone with ``out_channels``).

    Args:
        backbone: e.g. ``resnet_fpn_backbone(...)``; kept as ``model.backbone`` (FPN output dict).
        num_classes: classes including background.
        featmap_names: FPN levels used for RoI pooling (``["0", "1", "2", "3"]`` for a ResNet-FPN).
        **faster_rcnn_kwargs: passed to :class:`FasterRCNN` (``min_size``, ``max_size``, ``image_mean``,
            ``image_std``, ``rpn_anchor_generator``, ``box_score_thresh``, ``box_batch_size_per_image``, ...);
            the box sampling and post-processing options apply to every stage.
    """
    box_roi_pool = MultiScaleRoIAlign(featmap_names=featmap_names, output_size=7, sampling_ratio=2)
    model = FasterRCNN(backbone, num_classes=num_classes, box_roi_pool=box_roi_pool, **faster_rcnn_kwargs)
    old = model.roi_heads
    model.roi_heads = CascadeRoIHeads(
        box_roi_pool,
        backbone.out_channels,
        num_classes,
        batch_size_per_image=old.fg_bg_sampler.batch_size_per_image,
        positive_fraction=old.fg_bg_sampler.positive_fraction,
        score_thresh=old.score_thresh,
        nms_thresh=old.nms_thresh,
        detections_per_img=old.detections_per_img,
    )
    return model

"""Cascade R-CNN (Cai & Vasconcelos, CVPR 2018) from torchvision's RoI components; torchvision has no Cascade R-CNN.

A :class:`torchvision.models.detection.FasterRCNN` whose ``roi_heads`` is a :class:`CascadeRoIHeads`: three box
stages trained at IoU 0.5 / 0.6 / 0.7, each a torchvision :class:`~torchvision.models.detection.roi_heads.RoIHeads`
(``MultiScaleRoIAlign`` → ``TwoMLPHead`` → ``FastRCNNPredictor``, with its own ``Matcher``,
``BalancedPositiveNegativeSampler`` and ``BoxCoder`` at weights (10,10,5,5), (20,20,10,10), (30,30,15,15)). Each
stage's regressed boxes, detached, are the next stage's proposals. Losses are weighted 1, 0.5, 0.25 as in
mmdetection's ``cascade_rcnn_r50_fpn`` (the BSLM paper's implementation). At inference the class logits of the three
stages are averaged and the last stage's boxes are kept.

As mmdetection defines it (``reg_class_agnostic=True``, ``refine_bboxes(..., pos_is_gts)``):

- **class-agnostic regression**: each stage regresses one box per RoI, whatever the class
  (:class:`AgnosticBoxPredictor`);
- **ground-truth proposals removed before refinement**: every stage's sampler adds the ground-truth boxes to its
  proposals (torchvision's ``add_gt_proposals``, mmdetection's ``add_gt_as_proposals=True``), but the RoIs that
  *were* ground-truth boxes are dropped before their refined copies would become the next stage's proposals; the
  next stage adds the ground truth itself again. Without this, each later stage would see every ground-truth box
  twice (once refined, once added), an easy positive that biases its IoU distribution.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.faster_rcnn import TwoMLPHead
from torchvision.models.detection.roi_heads import RoIHeads, fastrcnn_loss
from torchvision.ops import MultiScaleRoIAlign, boxes as box_ops

STAGE_IOUS = (0.5, 0.6, 0.7)
STAGE_BOX_WEIGHTS = ((10.0, 10.0, 5.0, 5.0), (20.0, 20.0, 10.0, 10.0), (30.0, 30.0, 15.0, 15.0))
STAGE_LOSS_WEIGHTS = (1.0, 0.5, 0.25)


class AgnosticBoxPredictor(nn.Module):
    """Class scores and **one** box regression per RoI (mmdetection's ``reg_class_agnostic=True``).

    The 4 deltas are repeated for every class in the output, so torchvision's ``fastrcnn_loss`` and
    ``postprocess_detections`` work unchanged while every class trains and uses the same 4 outputs.
    """

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.cls_score = nn.Linear(in_channels, num_classes)
        self.bbox_pred = nn.Linear(in_channels, 4)

    def forward(self, x):
        x = x.flatten(start_dim=1)
        return self.cls_score(x), self.bbox_pred(x).repeat(1, self.num_classes)


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
                box_predictor=AgnosticBoxPredictor(representation_size, num_classes),
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
    def sample(stage: RoIHeads, proposals, targets):
        """torchvision's ``RoIHeads.select_training_samples``, also returning which sampled RoIs are ground-truth
        boxes (``is_gt``, mmdetection's ``pos_is_gt``)."""
        dtype, device = proposals[0].dtype, proposals[0].device
        gt_boxes = [t["boxes"].to(dtype) for t in targets]
        gt_labels = [t["labels"] for t in targets]
        counts = [len(p) for p in proposals]
        proposals = stage.add_gt_proposals(proposals, gt_boxes)
        matched_idxs, labels = stage.assign_targets_to_proposals(proposals, gt_boxes, gt_labels)
        sampled = stage.subsample(labels)
        matched_gt, is_gt = [], []
        for i, inds in enumerate(sampled):
            proposals[i], labels[i] = proposals[i][inds], labels[i][inds]
            gt = gt_boxes[i] if gt_boxes[i].numel() else torch.zeros((1, 4), dtype=dtype, device=device)
            matched_gt.append(gt[matched_idxs[i][inds]])
            is_gt.append(inds >= counts[i])
        regression_targets = stage.box_coder.encode(matched_gt, proposals)
        return proposals, labels, regression_targets, is_gt

    @staticmethod
    def refine(stage: RoIHeads, box_regression, proposals, image_shapes, drop=None):
        """Each RoI's regressed box (class-agnostic: the same for every class), clipped to the image and detached:
        the next stage's proposals. ``drop`` (per image, boolean): RoIs left out (the ground-truth ones)."""
        counts = [len(p) for p in proposals]
        decoded = stage.box_coder.decode(box_regression, proposals)[:, 1].detach()  # any class column: agnostic
        refined = []
        for index, (per_image, shape) in enumerate(zip(decoded.split(counts), image_shapes)):
            per_image = box_ops.clip_boxes_to_image(per_image, shape)
            if drop is not None:
                per_image = per_image[~drop[index]]
            refined.append(per_image)
        return refined

    def forward(self, features, proposals, image_shapes, targets=None):
        if self.training:
            if targets is None:
                raise ValueError("targets are required in training mode")
            self.stages[0].check_targets(targets)
            losses = {}
            for index, (stage, weight) in enumerate(zip(self.stages, self.stage_loss_weights)):
                proposals, labels, regression_targets, is_gt = self.sample(stage, proposals, targets)
                class_logits, box_regression = self._run_stage(stage, features, proposals, image_shapes)
                loss_classifier, loss_box_reg = fastrcnn_loss(class_logits, box_regression, labels, regression_targets)
                losses[f"loss_classifier_s{index}"] = weight * loss_classifier
                losses[f"loss_box_reg_s{index}"] = weight * loss_box_reg
                if index + 1 < len(self.stages):
                    proposals = self.refine(stage, box_regression, proposals, image_shapes, drop=is_gt)
            return [], losses

        stage_logits = []
        for index, stage in enumerate(self.stages):
            class_logits, box_regression = self._run_stage(stage, features, proposals, image_shapes)
            stage_logits.append(class_logits)
            if index + 1 < len(self.stages):
                proposals = self.refine(stage, box_regression, proposals, image_shapes)
        mean_logits = torch.stack(stage_logits).mean(dim=0)
        boxes, scores, labels = self.stages[-1].postprocess_detections(
            mean_logits, box_regression, proposals, image_shapes
        )
        detections = [{"boxes": b, "labels": l, "scores": s} for b, s, l in zip(boxes, scores, labels)]
        return detections, {}


def cascade_rcnn(backbone: nn.Module, num_classes: int, featmap_names: list[str], representation_size: int = 1024,
                 **faster_rcnn_kwargs) -> FasterRCNN:
    """A Cascade R-CNN on ``backbone`` (an FPN backbone with ``out_channels``).

    Args:
        backbone: e.g. ``resnet_fpn_backbone(...)``; kept as ``model.backbone`` (FPN output dict).
        num_classes: classes including background.
        featmap_names: FPN levels used for RoI pooling (``["0", "1", "2", "3"]`` for a ResNet-FPN).
        representation_size (1024): width of each stage's box head.
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
        representation_size=representation_size,
        batch_size_per_image=old.fg_bg_sampler.batch_size_per_image,
        positive_fraction=old.fg_bg_sampler.positive_fraction,
        score_thresh=old.score_thresh,
        nms_thresh=old.nms_thresh,
        detections_per_img=old.detections_per_img,
    )
    return model

"""Trainers that read sardata (or any standard) exports.

- :mod:`sardata.train.detector`: Faster R-CNN, Cascade R-CNN (:mod:`~sardata.train.cascade`), RetinaNet, FCOS, SSD
  on a COCO export (:mod:`~sardata.train.coco_data`).
- :mod:`sardata.train.classifier`: CNN / VGG16 / ResNet50 and frozen-backbone fine-tuned variants on an ImageFolder
  export, with Grad-CAM (:mod:`~sardata.train.gradcam`).
- :mod:`sardata.train.common`: checkpoints, logs and curves, device/AMP, torchrun helpers.

Submodules are imported on demand so ``import sardata.train`` stays cheap.
"""

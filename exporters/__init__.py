"""Exporters: FiftyOne views (with balance-run replication) → files external trainers read unchanged.

``export_view(view, "out/coco", "coco", balance_run="bslm")`` writes one of the formats below atomically, with a
``manifest.json``. One module per format; each has ``write(plan, root, **options) -> dict`` over an
:class:`exporters._common.ExportPlan`.

| format       | layout                                                                    | module         |
|--------------|---------------------------------------------------------------------------|----------------|
| coco         | ``annotations/<split>.json`` + ``images/<split>/``                        | coco.py        |
| yolo         | Ultralytics ``images/<split>/``, ``labels/<split>/``, ``data.yaml``       | yolo.py        |
| yolo-obb     | the same with ``class x1 y1 … x4 y4`` rotated boxes                       | yolo.py        |
| imagefolder  | ``<split>/<class>/<file>`` (8-bit or lossless original SAR)               | imagefolder.py |
| masks        | ``<split>/{images,optical,masks}/`` + ``class_map.json``                  | masks.py       |
| hf           | HF ``datasets.DatasetDict`` saved with ``save_to_disk``                   | hf.py          |
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from exporters._common import atomic_export_dir, build_plan, plan_manifest, request_fingerprint
from exporters.contract import read_manifest, write_manifest

#: format name → (module, keyword options passed to its ``write``)
FORMATS: dict[str, tuple[str, dict]] = {
    "coco": ("exporters.coco", {}),
    "yolo": ("exporters.yolo", {"obb": False}),
    "yolo-obb": ("exporters.yolo", {"obb": True}),
    "imagefolder": ("exporters.imagefolder", {}),
    "masks": ("exporters.masks", {}),
    "hf": ("exporters.hf", {}),
}


def export_view(
    samples,
    out_dir: str | os.PathLike,
    format: str,
    label_field: str = "ground_truth",
    balance_run: str | None = None,
    split_field: str | None = "split",
    image_source: str = "display",
    overwrite: bool = False,
    seed: int = 0,
    **options,
) -> dict:
    """Exports a FiftyOne view in one of :data:`FORMATS`, honouring a balance run's replication counts.

    Each extra replica of an image is a hardlink ``<stem>__rep<k>.<ext>`` of the first copy with its annotations
    repeated (:mod:`exporters.contract`); samples with count 0 are left out. The manifest maps every written file
    to its sample id (``manifest["sample_ids"]``). The export is written into a temporary directory beside ``out_dir``
    and renamed onto it at the end, so a killed export never looks complete.

    Args:
        samples: FiftyOne dataset or view.
        out_dir: export directory.
        format: one of ``coco``, ``yolo``, ``yolo-obb``, ``imagefolder``, ``masks``, ``hf``.
        label_field ("ground_truth"): the label field to export.
        balance_run (None): balance run key whose counts to honour.
        split_field ("split"): sample field naming the split (samples without one go to split ``all``).
        image_source ("display"): ``display`` (8-bit ``filepath``) or ``original`` (``sar_path``).
        overwrite (False): replace a different existing export. An identical one (same manifest fingerprint) is kept
            as is either way; a non-empty directory without ``manifest.json`` is never replaced.
        seed (0): recorded in the manifest (for exports made from seeded balance runs and splits).
        **options: format options (``original_format="tiff"|"npy"`` for imagefolder).

    Returns:
        the manifest (``manifest["skipped_existing"]`` is True when an identical export was already there).
    """
    if format not in FORMATS:
        raise ValueError(f"format {format!r}; expected one of {sorted(FORMATS)}")
    module_name, format_options = FORMATS[format]
    module = importlib.import_module(module_name)
    out_dir = Path(out_dir).absolute()
    plan = build_plan(
        samples,
        label_field=label_field,
        balance_run=balance_run,
        split_field=split_field,
        image_source=image_source,
        seed=seed,
        extra_fields=getattr(module, "EXTRA_FIELDS", ()),
        need_size=getattr(module, "NEEDS_SIZE", False),
    )
    if not plan.items:
        raise ValueError(f"nothing to export: the view of {plan.dataset_name!r} is empty (or every count is 0)")
    request = {"label_field": label_field, "balance_run": balance_run, "split_field": split_field,
               "image_source": image_source, "seed": seed, **format_options, **options}
    fingerprint = request_fingerprint(samples, plan, format, request)
    existing = read_manifest(out_dir)
    if existing is not None and existing.get("fingerprint") == fingerprint:
        return {**existing, "skipped_existing": True}
    if existing is None and out_dir.is_dir() and any(out_dir.iterdir()):
        # never delete a directory that is not an export of ours, even with overwrite=True (think --out ~)
        raise FileExistsError(f"{out_dir} is not empty and holds no sardata manifest.json; refusing to replace it")
    with atomic_export_dir(out_dir, overwrite=overwrite) as tmp:
        extra = module.write(plan, tmp, final_dir=out_dir, **format_options, **options) or {}
        manifest = write_manifest(tmp, plan_manifest(plan, format, fingerprint, extra={"options": request, **extra}))
    return {**manifest, "skipped_existing": False}


__all__ = ["FORMATS", "export_view"]

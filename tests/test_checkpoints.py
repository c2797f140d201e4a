"""One checkpoint layout and one base config for every trainer: naming, resume="latest", the missing-checkpoint error,
validate() naming the bad field; one way to find a finished run."""

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from sardata import checkpoints
from sardata.checkpoints import CheckpointNotFoundError, find_checkpoint, load_checkpoint, save_checkpoint
from sardata.config import LATEST, TrainConfig


def _state(tag: float) -> dict:
    return {"model": {"w": torch.full((2,), tag)}, "args": {"tag": tag}}


def test_save_writes_torchvision_names_and_keep_every_epoch_is_optional(tmp_path):
    path = save_checkpoint(tmp_path, _state(1.0), epoch=3)
    assert path == tmp_path / "checkpoint.pth"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pth", "model_3.pth"]
    assert load_checkpoint(tmp_path / "model_3.pth")["epoch"] == 3
    assert load_checkpoint(path)["model"]["w"].tolist() == [1.0, 1.0]
    save_checkpoint(tmp_path / "lean", _state(2.0), epoch=0, keep_every_epoch=False)
    assert [p.name for p in (tmp_path / "lean").iterdir()] == ["checkpoint.pth"]


def test_latest_picks_the_newest(tmp_path):
    for epoch in (1, 2, 9, 10):  # 10 > 9 numerically, though "model_10" < "model_9" as text
        save_checkpoint(tmp_path, _state(float(epoch)), epoch)
    assert find_checkpoint(tmp_path) == tmp_path / "checkpoint.pth"
    assert load_checkpoint(tmp_path)["epoch"] == 10
    (tmp_path / "checkpoint.pth").unlink()
    assert find_checkpoint(tmp_path) == tmp_path / "model_10.pth"
    # killed between model_11.pth and checkpoint.pth: the epoch file is newer than checkpoint.pth (epoch 10)
    save_checkpoint(tmp_path, _state(10.0), 10, keep_every_epoch=False)
    torch.save({**_state(11.0), "epoch": 11}, tmp_path / "model_11.pth")
    assert find_checkpoint(tmp_path) == tmp_path / "model_11.pth"
    cfg = TrainConfig(out_dir=tmp_path, resume=LATEST).validate()
    assert cfg.resume_checkpoint() == tmp_path / "model_11.pth"
    assert TrainConfig(out_dir=tmp_path, resume=str(tmp_path)).resume_checkpoint() == tmp_path / "model_11.pth"


def test_latest_on_a_fresh_run_starts_from_scratch(tmp_path):
    assert TrainConfig(out_dir=tmp_path / "new", resume="latest").validate().resume_checkpoint() is None
    assert TrainConfig(out_dir=tmp_path, resume=None).resume_checkpoint() is None
    assert TrainConfig(out_dir=tmp_path, resume=Path("latest")).resume == LATEST  # as typer passes --resume latest


def test_legacy_embed_checkpoint_pt_is_still_read(tmp_path):
    torch.save({"kind": "dcgan", "epoch": 4}, tmp_path / "checkpoint.pt")
    with pytest.warns(UserWarning, match="legacy"):
        assert find_checkpoint(tmp_path) == tmp_path / "checkpoint.pt"
    save_checkpoint(tmp_path, {"kind": "dcgan"}, 5, keep_every_epoch=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert find_checkpoint(tmp_path) == tmp_path / "checkpoint.pth"


def test_missing_checkpoint_is_one_error_naming_the_path(tmp_path):
    missing = tmp_path / "run" / "model_7.pth"
    for call in (lambda: find_checkpoint(missing), lambda: load_checkpoint(missing),
                 lambda: TrainConfig(resume=missing).resume_checkpoint()):
        with pytest.raises(CheckpointNotFoundError, match=str(missing)):
            call()
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointNotFoundError, match=str(tmp_path / "empty")):
        load_checkpoint(tmp_path / "empty")
    assert issubclass(CheckpointNotFoundError, FileNotFoundError)  # an OSError: the CLI reports it in one line


def _coco_dir(tmp_path):
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    return root


def _trainer_calls(tmp_path, missing):
    """Each trainer started with resume=<missing>: the error must come before any training or data reading."""
    from sardata.embed.contrastive import train_cc
    from sardata.embed.dcgan import train_gan
    from sardata.train import classifier, detector, segment

    folder = tmp_path / "folder"
    (folder / "train" / "a").mkdir(parents=True)
    images = [str(tmp_path / f"{i}.png") for i in range(2)]
    return {
        "detector": lambda: detector.train(detector.DetectorConfig(data=_coco_dir(tmp_path), resume=missing)),
        "classifier": lambda: classifier.train(classifier.ClassifierConfig(data=folder, resume=missing,
                                                                           out_dir=tmp_path / "c")),
        "segment": lambda: segment.train(segment.SegmentConfig(data=tmp_path, resume=missing, out_dir=tmp_path / "s")),
        "dcgan": lambda: train_gan(images, tmp_path / "g", image_size=32, resume=missing),
        "cc": lambda: train_cc(images, tmp_path / "cc", resume=missing),
    }


@pytest.mark.parametrize("trainer", ["detector", "classifier", "segment", "dcgan", "cc"])
def test_every_trainer_reports_a_missing_resume_checkpoint_the_same_way(tmp_path, trainer):
    missing = tmp_path / "gone" / "checkpoint.pth"
    with pytest.raises(CheckpointNotFoundError, match=str(missing)):
        _trainer_calls(tmp_path, missing)[trainer]()


def _configs(tmp_path):
    from sardata.embed.contrastive import CCConfig
    from sardata.embed.dcgan import GanConfig
    from sardata.train.classifier import ClassifierConfig
    from sardata.train.detector import DetectorConfig
    from sardata.train.distill import DistillConfig
    from sardata.train.segment import SegmentConfig

    coco = _coco_dir(tmp_path)
    (tmp_path / "folder" / "train").mkdir(parents=True)
    teacher = tmp_path / "teacher.pth"
    teacher.write_bytes(b"")
    return {
        "base": lambda **kw: TrainConfig(**{"out_dir": tmp_path, **kw}),
        "detector": lambda **kw: DetectorConfig(data=coco, **kw),
        "classifier": lambda **kw: ClassifierConfig(data=tmp_path / "folder", **kw),
        "distill": lambda **kw: DistillConfig(data=coco, teacher=teacher, **kw),
        "segment": lambda **kw: SegmentConfig(data=tmp_path, **kw),
        "dcgan": lambda **kw: GanConfig(**{"out_dir": tmp_path, **kw}),
        "cc": lambda **kw: CCConfig(**{"out_dir": tmp_path, **kw}),
    }


BAD_VALUES = [
    ("base", "epochs", 0), ("base", "batch_size", -2), ("base", "lr", -0.1), ("base", "seed", -1),
    ("base", "workers", -1), ("base", "device", "gpu0"), ("base", "epochs", 2.5),
    ("detector", "epochs", 0), ("detector", "image_size", 16), ("detector", "eval_every", 0),
    ("classifier", "batch_size", 0), ("classifier", "patience", -1), ("classifier", "val_fraction", 1.5),
    ("distill", "fdr_ratio", (0.9, 0.1)), ("distill", "resume", "runs/x.pth"), ("distill", "alpha", -1.0), ("distill", "lr", 0),
    ("segment", "input", "radar"), ("segment", "knn", 0), ("segment", "num_clusters", 1),
    ("dcgan", "image_size", 100), ("dcgan", "betas", (0.5,)), ("cc", "clusters", 1), ("cc", "tau_instance", 0.0),
]


@pytest.mark.parametrize("config,field,value", BAD_VALUES)
def test_validate_rejects_bad_values_naming_the_field(tmp_path, config, field, value):
    make = _configs(tmp_path)[config]
    with pytest.raises(ValueError, match=field):
        make(**{field: value}).validate()


@pytest.mark.parametrize("config", ["base", "detector", "classifier", "distill", "segment", "dcgan", "cc"])
def test_every_config_is_a_train_config_with_path_fields_and_validate_returns_it(tmp_path, config):
    resume = {} if config == "distill" else {"resume": str(tmp_path / "x.pth")}  # distillation does not resume
    cfg = _configs(tmp_path)[config](out_dir=str(tmp_path / "out"), **resume)
    assert isinstance(cfg, TrainConfig) and cfg.validate() is cfg
    assert cfg.out_dir == tmp_path / "out" and cfg.resume == (tmp_path / "x.pth" if resume else None)
    for name in type(cfg).PATH_FIELDS:
        value = getattr(cfg, name)
        assert value is None or isinstance(value, Path), (name, value)


def test_resume_latest_needs_an_out_dir():
    with pytest.raises(ValueError, match="resume='latest' needs out_dir"):
        TrainConfig(resume=LATEST).validate()
    assert TrainConfig(resume="runs/newest").resume == Path("runs/newest")  # any other string is a path
    assert checkpoints.CHECKPOINT_NAME == "checkpoint.pth" and checkpoints.epoch_checkpoint_name(4) == "model_4.pth"


# --------------------------------------------------------------------------------------------- finished runs


def _coco_export(root: Path, boxes: list) -> Path:
    """A one-image COCO export (``annotations/train.json`` + ``images/a.png``) with ``boxes``."""
    (root / "annotations").mkdir(parents=True)
    (root / "images").mkdir()
    (root / "images" / "a.png").write_bytes(b"\x89PNG fake pixels")
    coco = {"images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48, "sample_id": str(root)}],
            "annotations": [{"id": i, "image_id": 1, "category_id": 1, "bbox": b} for i, b in enumerate(boxes)],
            "categories": [{"id": 1, "name": "ship"}]}
    (root / "annotations" / "train.json").write_text(json.dumps(coco))
    return root


@dataclass
class _RunOptions:
    data: Path
    lr: float = 0.01
    out_dir: Path | None = None
    device: str | None = None
    progress: bool = True


def test_run_fingerprint_is_the_data_content_and_the_options_that_change_a_run(tmp_path):
    here = _coco_export(tmp_path / "here", [[1, 2, 3, 4]])
    moved = _coco_export(tmp_path / "moved", [[1, 2, 3, 4]])  # same content elsewhere (and another sample_id)
    other_box = _coco_export(tmp_path / "other", [[1, 2, 3, 5]])
    base = checkpoints.run_fingerprint(_RunOptions(here))
    # where the data lives, where the run writes, the device and progress bars do not change the result
    assert checkpoints.run_fingerprint(_RunOptions(moved, out_dir=tmp_path / "x", device="cuda", progress=False)) == base
    assert checkpoints.run_fingerprint(_RunOptions(here, lr=0.02)) != base
    assert checkpoints.run_fingerprint(_RunOptions(other_box)) != base
    (here / "images" / "a.png").write_bytes(b"other pixels, other size")
    assert checkpoints.run_fingerprint(_RunOptions(here)) != base


#: run_fingerprint(_RunOptions(<_coco_export with box [1, 2, 3, 4]>)) as computed by the code before config classes
#: declared a REVISION (sardata 2026-12-01 23:00): records written then must still match.
PRE_REVISION_FINGERPRINT = "fe78277a0f8e26282834c3c4cc3e52dbe38cf221babcf785f224ed6f5ce70d67"


def test_run_fingerprint_changes_with_the_code_revision_and_keeps_revision_zero(tmp_path):
    from typing import ClassVar

    here = _coco_export(tmp_path / "here", [[1, 2, 3, 4]])

    @dataclass
    class _Revised(_RunOptions):
        REVISION: ClassVar[int] = 1

    @dataclass
    class _RevisionZero(_RunOptions):
        REVISION: ClassVar[int] = 0

    base = checkpoints.run_fingerprint(_RunOptions(here))
    assert checkpoints.run_fingerprint(_Revised(here)) != base  # a finished run of older code is not reused
    # revision 0 (declared or not) leaves the hash as it was before revisions existed
    assert base == checkpoints.run_fingerprint(_RevisionZero(here)) == PRE_REVISION_FINGERPRINT


def test_finished_run_only_for_the_same_fingerprint(tmp_path):
    run = tmp_path / "run"
    assert checkpoints.finished_run(run, "abc") is None  # nothing there yet
    checkpoints.mark_finished(run, "abc", predictions="p.json")
    assert checkpoints.finished_run(run, "abc") == {"fingerprint": "abc", "predictions": "p.json"}
    assert checkpoints.finished_run(run, "abd") is None
    (run / checkpoints.RUN_RECORD).write_text('{"fingerprint": "abc", ')  # a torn record is not a finished run
    assert checkpoints.finished_run(run, "abc") is None

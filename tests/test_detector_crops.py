"""Box-centred training crops (``crop_focus``): the chosen box lies wholly inside the window, and uniform crops stay
the default."""

import random

import torch

from sardata.train.coco_data import random_crop


def _target(boxes):
    return {"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.ones(len(boxes), dtype=torch.int64)}


def test_focused_crop_always_holds_the_only_box():
    image = torch.zeros(1, 500, 400)
    rng = random.Random(0)
    kept = [len(random_crop(image, _target([[300, 420, 310, 430]]), 128, rng=rng, focus=True)[1]["boxes"])
            for _ in range(100)]
    assert kept == [1] * 100
    # the same small box in a uniform 128² window of a 500×400 image is inside only now and then
    uniform = sum(len(random_crop(image, _target([[300, 420, 310, 430]]), 128, rng=rng)[1]["boxes"])
                  for _ in range(100))
    assert uniform < 30


def test_focused_crop_keeps_box_coordinates_consistent_with_the_window():
    image = torch.arange(500 * 400, dtype=torch.float32).reshape(1, 500, 400)
    rng = random.Random(1)
    for _ in range(20):
        crop, out = random_crop(image, _target([[50, 60, 70, 90], [300, 400, 320, 410]]), 96, rng=rng, focus=True)
        assert crop.shape[-2:] == (96, 96) and len(out["boxes"]) >= 1
        x0 = int(crop[0, 0, 0].item()) % 400  # the window's origin, read back from the pixel values
        y0 = int(crop[0, 0, 0].item()) // 400
        original = out["boxes"] + torch.tensor([x0, y0, x0, y0], dtype=torch.float32)
        assert any(torch.allclose(original[i], torch.tensor(b, dtype=torch.float32))
                   for i in range(len(original)) for b in ([50, 60, 70, 90], [300, 400, 320, 410]))


def test_focus_on_an_image_without_boxes_is_a_uniform_crop():
    crop, out = random_crop(torch.zeros(1, 300, 300), _target([]).copy() | {"boxes": torch.zeros(0, 4)}, 64,
                            rng=random.Random(0), focus=True)
    assert crop.shape[-2:] == (64, 64) and len(out["boxes"]) == 0


def test_config_rejects_a_crop_focus_that_is_not_a_probability(tmp_path):
    import pytest

    from sardata.train.detector import DetectorConfig

    with pytest.raises(ValueError, match="crop_focus"):
        DetectorConfig(data=tmp_path, preset="cpu", crop_focus=1.5, out_dir=tmp_path / "o").validate()
    with pytest.raises(ValueError, match="anchor_octaves"):
        DetectorConfig(data=tmp_path, preset="cpu", anchor_octaves=0, out_dir=tmp_path / "o").validate()
    cfg = DetectorConfig(data=tmp_path, preset="cpu", crop_focus=0.5, out_dir=tmp_path / "o").validate()
    assert cfg.crop_focus == 0.5

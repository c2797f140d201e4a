"""CA-CFAR: threshold factor, false-alarm rate on pure clutter, a planted target, scale invariance, torch wrapper."""

import numpy as np
import pytest
import torch

from sardata.detect import CFARConfig, CFARDetector, cfar_detect, threshold_factor
from sardata.detect.cfar import cfar_mask, clutter_ratio


def test_threshold_factor_is_the_textbook_formula_for_one_look():
    for pfa, n in ((1e-3, 100), (1e-6, 48), (0.1, 8)):
        assert threshold_factor(pfa, n, 1.0) == pytest.approx(n * (pfa ** (-1.0 / n) - 1.0), rel=1e-9)
    # more looks: the clutter is less spiky, so a lower factor gives the same Pfa
    assert threshold_factor(1e-4, 200, 4.0) < threshold_factor(1e-4, 200, 1.0)


def test_clutter_ratio_is_intensity_over_training_cell_mean():
    rng = np.random.default_rng(0)
    image = rng.exponential(size=(40, 40))
    cfg = CFARConfig(guard=1, train=2)
    y, x = 20, 17
    outer = image[y - 3 : y + 4, x - 3 : x + 4].sum()
    inner = image[y - 1 : y + 2, x - 1 : x + 2].sum()
    assert cfg.n_training_cells == 49 - 9
    assert clutter_ratio(image, cfg)[y, x] == pytest.approx(image[y, x] / ((outer - inner) / 40), rel=1e-9)


@pytest.mark.parametrize("looks,pfa", [(1, 1e-3), (1, 1e-4), (4, 1e-3)])
def test_false_alarm_rate_on_gamma_clutter_matches_pfa(looks, pfa):
    rng = np.random.default_rng(1)
    image = rng.gamma(looks, 1.0 / looks, size=(400, 400))
    mask, _ = cfar_mask(image, CFARConfig(pfa=pfa, guard=2, train=5, looks=looks))
    assert pfa / 2 < mask.mean() < pfa * 2


def test_planted_target_found_with_its_box_and_best_score():
    rng = np.random.default_rng(2)
    image = rng.exponential(size=(128, 160))
    image[60:64, 90:97] = 30.0 * rng.uniform(0.7, 1.3, (4, 7))  # a 7×4 px target ~15 dB over the clutter
    boxes, scores = cfar_detect(image, CFARConfig(pfa=1e-6, guard=5, train=6))
    assert len(boxes) >= 1
    np.testing.assert_allclose(boxes[0], [90, 60, 97, 64], atol=1)
    assert scores[0] == scores.max() and 0.0 < scores[0] < 1.0
    # on the same clutter without the target there is nothing at that place
    clean = rng.exponential(size=(128, 160))
    b, _ = cfar_detect(clean, CFARConfig(pfa=1e-6, guard=5, train=6))
    assert not any(x0 < 97 and 90 < x1 and y0 < 64 and 60 < y1 for x0, y0, x1, y1 in b)


def test_constant_scale_invariance_and_min_size():
    rng = np.random.default_rng(3)
    image = rng.exponential(size=(96, 96))
    image[40:43, 40:46] += 40.0
    image[10, 10] += 500.0  # a single bright pixel: below min_pixels=3
    cfg = CFARConfig(pfa=1e-4, guard=4, train=4)
    b1, s1 = cfar_detect(image, cfg)
    b2, s2 = cfar_detect(image * 123.4, cfg)
    np.testing.assert_array_equal(b1, b2)
    np.testing.assert_allclose(s1, s2, rtol=1e-5)
    assert not any(x0 <= 10 < x1 and y0 <= 10 < y1 for x0, y0, x1, y1 in b1)
    b3, _ = cfar_detect(image, CFARConfig(pfa=1e-4, guard=4, train=4, min_pixels=1))
    assert any(x0 <= 10 < x1 and y0 <= 10 < y1 for x0, y0, x1, y1 in b3)


def test_detector_module_converts_amplitude_and_returns_torchvision_dicts():
    rng = np.random.default_rng(4)
    intensity = rng.exponential(size=(100, 120))
    intensity[30:34, 50:60] = 40.0
    amplitude = torch.from_numpy(np.sqrt(intensity) / np.sqrt(intensity).max()).float().expand(3, -1, -1)
    model = CFARDetector(CFARConfig(pfa=1e-6)).eval()
    with torch.no_grad():
        (out,) = model([amplitude])
    assert set(out) == {"boxes", "scores", "labels"}
    assert out["boxes"].shape[1] == 4 and out["boxes"].dtype == torch.float32
    assert out["labels"].dtype == torch.int64 and bool((out["labels"] == 1).all())
    boxes, _ = cfar_detect(intensity, CFARConfig(pfa=1e-6))
    np.testing.assert_allclose(out["boxes"].numpy(), boxes, atol=1e-4)  # amplitude² = the intensity, up to scale
    db = torch.from_numpy(10 * np.log10(intensity)).float()[None]
    (out_db,) = CFARDetector(CFARConfig(pfa=1e-6, input="db"))([db])
    np.testing.assert_allclose(out_db["boxes"].numpy(), boxes, atol=1e-4)
    with pytest.raises(RuntimeError, match="no parameters"):
        model.train()([amplitude], [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}])


def test_bad_config_is_a_clear_error():
    with pytest.raises(ValueError, match="pfa"):
        cfar_detect(np.ones((8, 8)), CFARConfig(pfa=0.0))
    with pytest.raises(ValueError, match="unknown score"):
        CFARConfig(score="median").validate()
    with pytest.raises(ValueError, match="2-D"):
        cfar_detect(np.ones((2, 8, 8)), CFARConfig())

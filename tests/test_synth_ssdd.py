"""Synthetic SSDD difficulty presets: land fractions, small dim ships, berthed/touching ships, real land masks, CLI."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sardata.synth import ssdd
from sardata.synth import ssdd_scene as scene

MASKS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real" / "ssdd_sealand"


def _masks_dir() -> Path:
    for candidate in (MASKS, Path("/work/shared/data/real/ssdd_sealand")):
        if candidate.is_dir():
            return candidate
    pytest.skip("real SL-SSDD masks not available")


def _inshore_scenes(preset, count, seed=11, **kw):
    out, number = [], 1
    while len(out) < count:
        rng, inshore = ssdd.draw_scene(seed, number)
        number += 1
        if inshore:
            out.append(scene.render_scene(rng, True, preset, **kw))
    return out


def test_unknown_preset_names_the_choices():
    with pytest.raises(ValueError, match="coast_hard"):
        scene.get_preset("hard")


def test_land_fraction_distribution_like_sl_ssdd():
    rng = np.random.default_rng(0)
    default = np.array([scene.draw_land_fraction(rng, scene.PRESETS["default"]) for _ in range(4000)])
    # SL-SSDD: 143 of the 211 images with land have more than 20 % land; the others are slivers
    assert abs((default > 0.2).mean() - 143 / 211) < 0.03
    assert (default < 0.05).mean() > 0.1 and default.min() >= 0.01 and default.max() <= 0.8
    hard = np.array([scene.draw_land_fraction(rng, scene.PRESETS["coast_hard"]) for _ in range(500)])
    assert hard.min() >= 0.01 and hard.max() <= 0.05


@pytest.mark.parametrize("fraction", [0.01, 0.03, 0.3, 0.6])
def test_coast_mask_covers_the_requested_fraction(fraction):
    rng = np.random.default_rng(1)
    got = np.array([scene.coast_mask(rng, (300, 400), fraction).mean() for _ in range(20)])
    assert np.all(got > 0)
    assert 0.6 * fraction < np.median(got) < 1.5 * fraction


def test_default_has_small_dim_ships_and_easy_does_not():
    def ships(preset):
        rng_scenes = [scene.render_scene(np.random.default_rng([5, k]), k % 3 == 0, preset) for k in range(24)]
        return [(s[2], scr) for _, _, t in rng_scenes for s, scr in zip(t["ships"], t["ship_scr_db"])]

    default, easy = ships("default"), ships("easy")
    lengths, scrs = np.array([s[0] for s in default]), np.array([s[1] for s in default])
    assert (lengths < 14).mean() > 0.15 and ((scrs >= 2.5) & (scrs <= 8.5)).mean() > 0.1
    assert min(s[0] for s in easy) >= 14 and min(s[1] for s in easy) >= 14


def test_dim_ship_is_a_few_db_over_clutter_in_the_speckled_image():
    """Measured on the output intensity: mean over the hull vs the sea ring around it (not the recorded value)."""
    measured, recorded = [], []
    for intensity, _, t in [scene.render_scene(np.random.default_rng([9, k]), False, "default") for k in range(40)]:
        for s, scr in zip(t["ships"], t["ship_scr_db"]):
            if scr > 8.5 or s[2] < 8:
                continue
            mask, y0, x0 = scene.polygon_mask(scene.hull_polygon(*s), intensity.shape)
            m = mask > 0
            hull = intensity[y0 : y0 + m.shape[0], x0 : x0 + m.shape[1]][m].mean()
            r = 12
            ring = intensity[max(0, y0 - r) : y0 + m.shape[0] + r, max(0, x0 - r) : x0 + m.shape[1] + r]
            measured.append(10 * np.log10(hull / np.median(ring) * np.log(2)))  # median of exp. = mean·ln 2
            recorded.append(scr)
    assert len(measured) >= 5
    assert 1.0 < np.median(measured) < 10.0


def test_inshore_ships_berth_and_touch():
    touching = 0
    for _, _, t in _inshore_scenes("default", 12):
        boxes = [np.concatenate([p.min(0), p.max(0)]) for p in (scene.hull_polygon(*s) for s in t["ships"])]
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                gap = max(a[0] - b[2], b[0] - a[2], a[1] - b[3], b[1] - a[3])
                touching += gap < 1.5
    assert touching >= 2


def test_inshore_scene_truth_and_slivers():
    for _, _, t in _inshore_scenes("coast_hard", 4):
        assert t["scene"] == "inshore" and 0.005 < t["land_fraction"] < 0.12  # 1–5 % coast plus piers
    intensity, sea_level, t = scene.render_scene(np.random.default_rng(3), False, "coast_hard")
    assert t["land_fraction"] == 0.0 and t["land_source"] is None and intensity.shape == (t["height"], t["width"])


def test_real_land_masks_become_the_coastline(tmp_path):
    root = _masks_dir()
    masks = scene.load_land_masks(root)
    assert len(masks) == 13  # the 20 copied SL-SSDD masks, 7 of them all-sea
    shapes = {m.shape for m in masks}
    fractions = sorted(m.mean() for m in masks)
    for _, _, t in _inshore_scenes("default", 3, land_masks=masks):
        assert (t["height"], t["width"]) in shapes and isinstance(t["land_source"], int)
        base = masks[t["land_source"]].mean()
        assert base - 1e-9 <= t["land_fraction"] <= base + 0.05  # the mask plus piers
        assert fractions[0] - 1e-9 <= base <= fractions[-1] + 1e-9
    (tmp_path / "sea.png").write_bytes(b"")
    Image.fromarray(np.full((20, 20), 255, np.uint8)).save(tmp_path / "sea.png")
    with pytest.raises(ValueError, match=str(tmp_path)):
        scene.load_land_masks(tmp_path)
    with pytest.raises(FileNotFoundError, match="no PNG"):
        scene.load_land_masks(tmp_path / "missing")


def test_generate_with_preset_and_masks_records_them(tmp_path):
    root = ssdd.generate(tmp_path / "a", n=6, seed=2, preset="easy", land_masks=_masks_dir())
    truth = json.loads((root / "synth_truth.json").read_text())
    assert truth["preset"] == "easy" and truth["land_masks"] == str(_masks_dir())
    inshore = [t for t in truth["images"].values() if t["scene"] == "inshore"]
    assert all(isinstance(t["land_source"], int) for t in inshore)


def test_cli_synth_preset(tmp_path):
    from typer.testing import CliRunner

    from sardata.cli import app

    result = CliRunner().invoke(app, ["synth", "ssdd", str(tmp_path), "--n", "2", "--preset", "coast_hard"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "Official-SSDD" / "synth_truth.json").read_text())["preset"] == "coast_hard"
    bad = CliRunner().invoke(app, ["synth", "ssdd", str(tmp_path / "b"), "--n", "2", "--preset", "nightmare"])
    assert bad.exit_code != 0 and "nightmare" in bad.output
    other = CliRunner().invoke(app, ["synth", "fusar", str(tmp_path / "c"), "--preset", "easy"])
    assert other.exit_code != 0

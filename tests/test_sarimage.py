import numpy as np
import pytest
import tifffile
from PIL import Image

from sardata import sarimage as si
from sardata._io import TMP_MARK

V1_GRD = "opensarship/S1A_IW_GRDH_1SDV_20150823T221233_20150823T221258_007396_00A2CA_54D0"
SLC_DUAL = "opensarship/S1A_IW_SLC__1SDV_20160606T221231_20160606T221258_011596_011B8A_3FF3"


def test_unit_conversions_round_trip():
    amplitude = np.array([0.5, 1.0, 10.0, 123.4])
    assert np.allclose(si.intensity_to_amplitude(si.amplitude_to_intensity(amplitude)), amplitude)
    assert np.allclose(si.db_to_amplitude(si.amplitude_to_db(amplitude)), amplitude)
    assert np.allclose(si.intensity_to_db([1.0, 10.0, 100.0]), [0.0, 10.0, 20.0])
    assert np.allclose(si.amplitude_to_db([10.0]), [20.0])
    # zeros stay finite in dB
    assert np.isfinite(si.intensity_to_db([0.0])).all()


def test_complex_pairs_to_amplitude():
    bands = np.zeros((2, 2, 4), np.float32)
    bands[..., 0], bands[..., 1] = 3, 4  # |3+4j| = 5
    bands[..., 2], bands[..., 3] = -6, 8  # |-6+8j| = 10
    amplitude = si.complex_pairs_to_amplitude(bands)
    assert amplitude.shape == (2, 2, 2)
    assert np.allclose(amplitude[..., 0], 5) and np.allclose(amplitude[..., 1], 10)
    with pytest.raises(ValueError):
        si.complex_pairs_to_amplitude(np.zeros((2, 2, 3)))


def test_speckle_stats_enl_matches_the_number_of_looks():
    rng = np.random.default_rng(0)
    for looks in (1, 4):
        intensity = rng.gamma(looks, 1.0 / looks, size=(400, 400))
        stats = si.speckle_stats(intensity, kind="intensity")
        assert stats.mean == pytest.approx(1.0, rel=0.02)
        assert stats.enl == pytest.approx(looks, rel=0.05)
        assert stats.cv == pytest.approx(1 / np.sqrt(looks), rel=0.05)
    # the same data given as amplitude gives the same intensity statistics
    amp_stats = si.speckle_stats(np.sqrt(intensity), kind="amplitude")
    assert amp_stats.enl == pytest.approx(stats.enl, rel=1e-6)


def test_speckle_stats_ignore_nonfinite_pixels():
    arr = np.ones((10, 10))
    arr[0, :5] = np.nan
    arr[1, 0] = np.inf
    stats = si.speckle_stats(arr, kind="intensity")
    assert stats.nonfinite_fraction == pytest.approx(0.06)
    assert stats.mean == 1.0
    empty = si.speckle_stats(np.full((3, 3), np.nan), kind="intensity")
    assert empty.nonfinite_fraction == 1.0 and np.isnan(empty.mean)


def test_display_uint8_clips_percentiles_in_db():
    rng = np.random.default_rng(1)
    amplitude = rng.rayleigh(1.0, (64, 64)).astype(np.float32)
    amplitude[0, 0] = 1e6  # a bright outlier must not crush the rest
    out = si.display_uint8(amplitude)
    assert out.dtype == np.uint8 and out.shape == (64, 64)
    assert out.min() == 0 and out.max() == 255
    assert 60 < np.median(out) < 200
    assert si.display_uint8(np.zeros((4, 4), np.float32)).dtype == np.uint8  # constant input does not divide by 0
    u8 = np.arange(16, dtype=np.uint8).reshape(4, 4)
    assert si.display_uint8(u8) is u8


def test_real_float32_dual_pol_grd_patch(real_data):
    path = sorted((real_data / V1_GRD / "Patch").glob("*.tif"))[0]
    arr = si.read_image(path)
    assert arr.dtype == np.float32 and arr.ndim == 3 and arr.shape[2] == 2  # VH, VV
    assert arr.shape[0] == arr.shape[1]
    assert not si.is_displayable(path)


def test_real_slc_patch_has_four_bands(real_data):
    path = sorted((real_data / SLC_DUAL / "Patch").glob("*.tif"))[0]
    arr = si.read_image(path)
    assert arr.shape[2] == 4 and arr.min() < 0  # re/im pairs are signed
    amplitude = si.complex_pairs_to_amplitude(arr)
    assert amplitude.shape[2] == 2 and amplitude.min() >= 0


def test_real_png_bytes_in_tif_are_detected_and_read(real_data):
    path = sorted((real_data / V1_GRD / "Patch_RGB").glob("*.tif"))[0]
    assert si.sniff_format(path) == "png"
    assert si.extension_lies(path)
    arr = si.read_image(path)
    assert arr.shape == (900, 1200, 3)


def test_unreadable_files_raise_errors_naming_the_file(tmp_path):
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    with pytest.raises(si.SarReadError, match="empty.tif: empty file"):
        si.read_image(empty)
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(si.SarReadError, match="truncated.png"):
        si.read_image(truncated)
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(si.SarReadError, match="unknown image format"):
        si.read_image(junk)
    with pytest.raises(si.SarReadError, match="cannot open"):
        si.read_image(tmp_path / "missing.tif")


def test_ensure_display_image_caches_an_8bit_png(tmp_path):
    src = tmp_path / "chip.tif"
    tifffile.imwrite(src, np.random.default_rng(0).rayleigh(1, (16, 16)).astype(np.float32))
    cache = tmp_path / "cache"
    out = si.ensure_display_image(src, cache_dir=cache)
    assert out.suffix == ".png" and out.is_relative_to(cache)
    assert np.asarray(Image.open(out)).dtype == np.uint8
    assert si.ensure_display_image(src, cache_dir=cache) == out  # cached
    png = tmp_path / "already.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(png)
    assert si.ensure_display_image(png, cache_dir=cache) == png  # displayable files are used as they are
    assert not [p for p in cache.rglob("*") if TMP_MARK in p.name]

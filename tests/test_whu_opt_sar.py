"""WHU-OPT-SAR: real split file conformance, synthetic round trip, bad input, CLI ingest."""

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

import sardata.datasets as sds
from sardata.datasets._base import DatasetNotFoundError, IngestError
from sardata.datasets.whu_opt_sar import (
    CLASS_VALUES,
    SPLIT_FILE_NAME,
    WHUOptSarImporter,
    parse_split_file,
    read_tile,
    seeded_split,
)
from sardata.synth import _common
from sardata.synth.whu_opt_sar import SCENES, format_split_file, generate

warnings.filterwarnings("ignore", category=DeprecationWarning)


def _read(path):
    return np.asarray(tifffile.imread(str(path)))


# --------------------------------------------------------------------------------------------- conformance


def test_real_split_file_parses_80_20(real_data):
    path = real_data / "whu_opt_sar" / SPLIT_FILE_NAME
    splits = parse_split_file(path)
    train = [t for t, s in splits.items() if s == "train"]
    test = [t for t, s in splits.items() if s == "test"]
    assert (len(train), len(test)) == (80, 20)
    assert train[:2] == ["NH49E004021", "NH49E005014"] and train[-1] == "NI49E024013"
    assert test[:2] == ["NH49E001014", "NH49E001017"] and test[-1] == "NH50E014003"
    assert all(len(t) == 11 and t[:2] in ("NH", "NI") and t[4] == "E" for t in splits)
    # the generator writes the same format: re-emitting the parsed real split gives the real bytes (CRLF, blanks)
    assert format_split_file(splits).encode("ascii") == path.read_bytes()


def test_real_split_file_drives_ingest(real_data, tmp_path, fo_dataset_name):
    """Tiles named as real ones take the official split; tiles the file lists but the root lacks are no problem."""
    root = generate(tmp_path / "gen", n=3, seed=4, tile_size=(256, 256))
    real_split = parse_split_file(real_data / "whu_opt_sar" / SPLIT_FILE_NAME)
    names = {"NH49E001001": "NH49E004021", "NH49E001002": "NI49E024013", "NH49E001003": "NH50E014003"}
    for folder in ("sar", "optical", "lbl"):
        for old, new in names.items():
            os.replace(root / folder / f"{old}.tif", root / folder / f"{new}.tif")
    shutil.copy(real_data / "whu_opt_sar" / SPLIT_FILE_NAME, root / SPLIT_FILE_NAME)
    ds = sds.load("whu_opt_sar", root, name=fo_dataset_name)
    assert dict(zip(ds.values("tile_id"), ds.values("split"))) == {t: real_split[t] for t in names.values()}
    assert ds.count_values("split") == {"train": 2, "test": 1}
    assert ds.info["ingest_problems"] == []
    assert ds.info["split_source"].startswith("official")


def test_real_sample_without_tiles_is_a_clear_error(real_data):
    with pytest.raises(DatasetNotFoundError, match=r"sar/, optical/, lbl/"):
        WHUOptSarImporter(real_data / "whu_opt_sar").setup()


# --------------------------------------------------------------------------------------------- round trip


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    # 600 × 520 tiles: the right 88 columns and bottom 8 rows do not fill a 256² patch and must be dropped
    return generate(tmp_path_factory.mktemp("whu") / "gen", n=3, seed=1, tile_size=(600, 520))


def test_synth_is_deterministic_and_matches_truth(synth_root, tmp_path):
    truth = _common.read_truth(synth_root)
    again = generate(tmp_path, n=3, seed=1, tile_size=(600, 520))
    for tile_id, info in truth["tiles"].items():
        label = _read(synth_root / "lbl" / f"{tile_id}.tif")
        sar = _read(synth_root / "sar" / f"{tile_id}.tif")
        optical = _read(synth_root / "optical" / f"{tile_id}.tif")
        assert label.shape == sar.shape == (520, 600) and optical.shape == (520, 600, 4)
        assert label.dtype == sar.dtype == optical.dtype == np.uint8
        assert set(np.unique(label)) <= set(CLASS_VALUES)
        counts = np.bincount(label.ravel(), minlength=256)
        assert info["histogram"] == {name: int(counts[v]) for v, name in CLASS_VALUES.items()}
        assert np.array_equal(label, _read(again / "lbl" / f"{tile_id}.tif"))
        assert np.array_equal(sar, _read(again / "sar" / f"{tile_id}.tif"))
        # the classes look as described: water darker than forest darker than built-up land in SAR and NIR
        built = (label == 20) | (label == 30)
        assert sar[label == 40].mean() < sar[label == 50].mean() < sar[built].mean()
        assert optical[..., 3][label == 40].mean() < optical[..., 3][label == 50].mean()
    assert sorted(v["scene"] for v in truth["tiles"].values()) == ["mixed", "rural", "urban"]
    assert [s for s in (v["split"] for v in truth["tiles"].values())].count("test") == 1
    assert parse_split_file(synth_root / SPLIT_FILE_NAME) == {t: v["split"] for t, v in truth["tiles"].items()}
    assert (synth_root / SPLIT_FILE_NAME).read_bytes().count(b"\r\n") == 3 + 4


def test_synthetic_tiles_are_scenes_and_city_looks_like_village(tmp_path):
    """Seed 003's premise: the class mixture depends on the scene; city and village differ by context only."""
    root = generate(tmp_path, n=15, seed=3, tile_size=(256, 256))
    truth = _common.read_truth(root)["tiles"]
    by_scene = {scene: [t for t, v in truth.items() if v["scene"] == scene] for scene in SCENES}
    assert all(len(tiles) == 5 for tiles in by_scene.values())
    assert {truth[t]["scene"] for t, v in truth.items() if v["split"] == "test"} == set(SCENES)

    def share(scene, name):
        hist = [truth[t]["histogram"] for t in by_scene[scene]]
        return sum(h[name] for h in hist) / sum(sum(h.values()) for h in hist)

    assert share("urban", "city") > 0.3 and share("urban", "village") == 0
    assert share("rural", "city") == 0 and share("rural", "village") > 0.02 and share("rural", "farmland") > 0.3
    assert 0 < share("mixed", "city") < share("urban", "city") and share("mixed", "village") > 0
    assert share("urban", "road") > share("rural", "road")
    # Locally alike: the mean SAR level and the share of bright scatterers of city and village pixels match.
    city, village = [], []
    for tile in truth:
        label, sar = _read(root / "lbl" / f"{tile}.tif"), _read(root / "sar" / f"{tile}.tif")
        city.append(sar[label == 20])
        village.append(sar[label == 30])
    city, village = np.concatenate(city), np.concatenate(village)
    assert abs(city.mean() - village.mean()) < 3  # of 255 grey levels
    assert abs((city > 230).mean() - (village > 230).mean()) < 0.01


def test_synthetic_round_trip(synth_root, tmp_path, fo_dataset_name):
    root = tmp_path / "copy"
    shutil.copytree(synth_root, root)
    # one tile stored compressed and tiled: it cannot be memory-mapped and takes the decode-once path
    compressed = "NH49E001002"
    for folder in ("sar", "optical", "lbl"):
        path = root / folder / f"{compressed}.tif"
        array = _read(path)
        extra = {"photometric": "rgb", "extrasamples": ["unspecified"]} if array.ndim == 3 else {}
        tifffile.imwrite(path, array, compression="zlib", tile=(64, 64), **extra)
    assert isinstance(read_tile(root / "lbl" / "NH49E001001.tif"), np.memmap)
    assert not isinstance(read_tile(root / "lbl" / f"{compressed}.tif"), np.memmap)

    truth = _common.read_truth(root)
    ds = sds.load("whu_opt_sar", root, name=fo_dataset_name)
    assert ds.info["ingest_problems"] == []
    assert ds.mask_targets["ground_truth"] == CLASS_VALUES
    assert ds.default_classes == list(CLASS_VALUES.values())
    assert len(ds) == 3 * (600 // 256) * (520 // 256)
    assert ds.count_values("tile_id") == {t: 4 for t in truth["tiles"]}
    for tile_id, info in truth["tiles"].items():
        view = ds.match({"tile_id": tile_id})
        assert set(view.values("split")) == {info["split"]}
        label = _read(root / "lbl" / f"{tile_id}.tif")
        sar = _read(root / "sar" / f"{tile_id}.tif")
        optical = _read(root / "optical" / f"{tile_id}.tif")
        mosaic = np.full((512, 512), 255, dtype=np.uint8)
        for sample in view:
            x, y, w, h = sample.window
            assert (w, h) == (256, 256)
            mask = np.asarray(Image.open(sample.ground_truth.mask_path))
            mosaic[y : y + h, x : x + w] = mask
            assert np.array_equal(_read(sample.sar_path), sar[y : y + h, x : x + w])
            assert np.array_equal(_read(sample.optical_path), optical[y : y + h, x : x + w])
            assert sample.filepath.endswith(".png") and Path(sample.filepath).is_file()
            fractions = sample.class_fractions.to_dict()
            fractions.pop("_cls", None)
            counts = np.bincount(mask.ravel(), minlength=256)
            assert fractions == pytest.approx({n: counts[v] / mask.size for v, n in CLASS_VALUES.items()})
            assert sample.dominant_class == max(fractions, key=fractions.get)
            assert sample.invalid_label_pixels == 0 and sample.source == "whu_opt_sar"
        assert np.array_equal(mosaic, label[:512, :512])


def test_rerun_reuses_patch_files_and_patch_size_option(synth_root, fo_dataset_name):
    import fiftyone as fo

    import sardata.types

    first = sds.load("whu_opt_sar", synth_root, name=fo_dataset_name)
    paths = first.values("sar_path") + first.values("optical_path") + first.values("ground_truth.mask_path")
    mtimes = [os.stat(p).st_mtime_ns for p in paths]
    second = sds.load("whu_opt_sar", synth_root, name=fo_dataset_name, overwrite=True)
    assert second.values("sar_path") + second.values("optical_path") + second.values("ground_truth.mask_path") == paths
    assert [os.stat(p).st_mtime_ns for p in paths] == mtimes

    importer = WHUOptSarImporter(synth_root, patch_size=128)
    small = fo.Dataset()
    small.add_importer(importer)
    assert len(small) == 3 * (600 // 128) * (520 // 128)
    assert len(importer._cache) == 0  # every tile was dropped once its patches were built
    assert set(map(tuple, small.values("window"))) == {
        (x, y, 128, 128) for x in range(0, 512, 128) for y in range(0, 512, 128)
    }
    small.delete()
    # importer options pass through from_dir (FiftyOne filters kwargs by the importer's signature)
    from_dir = fo.Dataset.from_dir(dataset_dir=str(synth_root), dataset_type=sardata.types.WHUOptSar, patch_size=512)
    assert len(from_dir) == 3 and from_dir.mask_targets["ground_truth"] == CLASS_VALUES
    from_dir.delete()


def test_seeded_split_without_split_file(synth_root, tmp_path, fo_dataset_name):
    root = tmp_path / "nosplit"
    shutil.copytree(synth_root, root)
    (root / SPLIT_FILE_NAME).unlink()
    ds = sds.load("whu_opt_sar", tmp_path / "nosplit", name=fo_dataset_name, split_seed=3)
    expected = seeded_split(list(_common.read_truth(root)["tiles"]), seed=3)
    assert dict(zip(ds.values("tile_id"), ds.values("split"))) == expected
    assert ds.info["split_source"] == "seeded 80/20 by tile (split_seed=3)"
    split = seeded_split([f"T{i:03d}" for i in range(100)], seed=0)
    assert list(split.values()).count("test") == 20
    assert split == seeded_split([f"T{i:03d}" for i in reversed(range(100))], seed=0)


def test_split_file_errors(tmp_path):
    before = tmp_path / "a.txt"
    before.write_bytes(b"NH49E001001.tif\r\ntrain:\r\n")
    with pytest.raises(ValueError, match=r"a.txt:1: .*before any"):
        parse_split_file(before)
    twice = tmp_path / "b.txt"
    twice.write_text("train:\nX1.tif\n\ntest:\nX1.tif\n")
    with pytest.raises(ValueError, match=r"b.txt:5: tile X1 is listed under both train and test"):
        parse_split_file(twice)
    lf = tmp_path / "c.txt"
    lf.write_text("\ufeffTrain:\nX1.tif\nVal:\nX2\n")
    assert parse_split_file(lf) == {"X1": "train", "X2": "val"}


# --------------------------------------------------------------------------------------------- bad input


@pytest.fixture
def broken_root(tmp_path):
    root = generate(tmp_path / "gen", n=6, seed=2, tile_size=(512, 256))
    tiles = sorted(_common.read_truth(root)["tiles"])
    truncated, no_label, mismatched, bad_values, unlisted, undecodable = tiles
    sar = root / "sar" / f"{truncated}.tif"
    sar.write_bytes(sar.read_bytes()[: sar.stat().st_size // 2])
    (root / "lbl" / f"{no_label}.tif").unlink()
    optical = _read(root / "optical" / f"{mismatched}.tif")
    tifffile.imwrite(root / "optical" / f"{mismatched}.tif", optical[:200], photometric="rgb",
                     extrasamples=["unspecified"])
    label = _read(root / "lbl" / f"{bad_values}.tif")
    label[10:20, 300:330] = 255  # padding value of derived tilings, in the second patch
    tifffile.imwrite(root / "lbl" / f"{bad_values}.tif", label)
    # a compressed label whose header is fine but one tile of pixel data is garbage: fails only when decoded
    lbl = root / "lbl" / f"{undecodable}.tif"
    tifffile.imwrite(lbl, _read(lbl), compression="zlib", tile=(64, 64))
    with tifffile.TiffFile(lbl) as tif:
        offset, count = tif.pages[0].dataoffsets[5], tif.pages[0].databytecounts[5]
    data = bytearray(lbl.read_bytes())
    data[offset : offset + count] = bytes(count)
    lbl.write_bytes(bytes(data))
    (root / "sar" / f"._{unlisted}.tif").write_bytes(b"\x00\x05\x16\x07")  # macOS resource fork: not a tile
    split_file = root / SPLIT_FILE_NAME
    split_file.write_bytes(split_file.read_bytes().replace(f"{unlisted}.tif\r\n".encode(), b""))
    return root, tiles


def test_bad_input_reported_rest_ingested(broken_root, fo_dataset_name):
    root, (truncated, no_label, mismatched, bad_values, unlisted, undecodable) = broken_root
    with pytest.warns(UserWarning):
        ds = sds.load("whu_opt_sar", root, name=fo_dataset_name)
    by_path = {}
    for problem in ds.info["ingest_problems"]:
        by_path.setdefault(problem["path"], []).append(problem["reason"])
    assert len(ds.info["ingest_problems"]) == 6  # the undecodable tile's two patches are reported once
    reason = by_path[str(root / "sar" / f"{undecodable}.tif")]
    assert len(reason) == 1 and f"lbl/{undecodable}.tif" in reason[0] and "cannot read pixels" in reason[0]
    assert "truncated TIFF" in by_path[str(root / "sar" / f"{truncated}.tif")][0]
    assert f"lbl/{no_label}.tif" in by_path[str(root / "sar" / f"{no_label}.tif")][0]
    assert "512 × 200" in by_path[str(root / "optical" / f"{mismatched}.tif")][0]
    assert "255: 300 px" in by_path[str(root / "lbl" / f"{bad_values}.tif")][0]
    assert "not listed in the split file" in by_path[str(root / "lbl" / f"{unlisted}.tif")][0]
    assert ds.count_values("tile_id") == {bad_values: 2, unlisted: 2}
    assert ds.count_values("split")[None] == 2 and sum(ds.count_values("split").values()) == 4
    masks = {tuple(s.window): np.asarray(Image.open(s.ground_truth.mask_path))
             for s in ds.match({"tile_id": bad_values})}
    assert 255 not in np.unique(np.concatenate([m.ravel() for m in masks.values()]))
    counts = dict(zip(map(tuple, ds.match({"tile_id": bad_values}).values("window")),
                      ds.match({"tile_id": bad_values}).values("invalid_label_pixels")))
    assert counts == {(0, 0, 256, 256): 0, (256, 0, 256, 256): 300}
    assert masks[(256, 0, 256, 256)][10:20, 44:74].max() == 0


def test_bad_input_strict_raises(broken_root, fo_dataset_name):
    root, (truncated, *_rest) = broken_root
    with pytest.raises(IngestError, match=truncated):
        sds.load("whu_opt_sar", root, name=fo_dataset_name, strict=True)


# --------------------------------------------------------------------------------------------- tile memory


def test_tile_cache_reads_each_tile_once_and_bounds_memory():
    from collections import Counter

    from sardata.datasets.whu_opt_sar import PatchRecord, Tile, _TileCache

    tiles = [Tile(f"T{i}", Path("s"), Path("o"), Path("l"), 512, 512, "train") for i in range(4)]
    records = [PatchRecord(t, x, y, 256) for t in tiles for x in (0, 256) for y in (0, 256)]
    loads = []
    largest = [0]

    def run(order, max_tiles):
        loads.clear()
        cache = _TileCache(lambda tile: loads.append(tile.tile_id) or tile.tile_id,
                           Counter(r.tile.tile_id for r in order), max_tiles=max_tiles)
        for record in order:
            assert cache.acquire(record.tile) == record.tile.tile_id
            largest[0] = max(largest[0], len(cache))
            cache.release(record.tile)
        return cache

    cache = run(records, max_tiles=2)
    assert loads == ["T0", "T1", "T2", "T3"] and len(cache) == 0 and largest[0] == 1
    shuffled = [records[i] for i in np.random.default_rng(0).permutation(len(records))]
    largest[0] = 0
    cache = run(shuffled, max_tiles=2)
    # tiles evicted while idle are read again when more of their patches come: memory stays bounded
    assert largest[0] <= 2 and len(cache) == 0 and set(loads) == {"T0", "T1", "T2", "T3"} and len(loads) > 4


# --------------------------------------------------------------------------------------------- CLI


def test_cli_synth_and_ingest_print_summary(tmp_path, fo_dataset_name):
    from typer.testing import CliRunner

    from sardata.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["synth", "whu_opt_sar", str(tmp_path), "--n", "2"])
    assert result.exit_code == 0, result.output
    root = tmp_path / "whu-opt-sar"
    assert sorted(p.name for p in (root / "lbl").iterdir()) == ["NH49E001001.tif", "NH49E001002.tif"]
    result = runner.invoke(app, ["ingest", "whu_opt_sar", str(tmp_path), "--name", fo_dataset_name],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "samples" in result.output and "12" in result.output  # 2 tiles × 3 × 2 patches of the 768 × 512 default
    assert "split train" in result.output and "split test" in result.output and "mask_targets" in result.output

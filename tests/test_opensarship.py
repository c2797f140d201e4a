"""OpenSARShip loader and generator: real-sample conformance, synthetic round trip, bad input, CLI; taxonomies."""

import json
import shutil
import warnings
from collections import Counter
from pathlib import Path

import fiftyone as fo
import pytest

import sardata.datasets as sds
import sardata.types
from sardata import sarimage
from sardata.datasets._base import IngestError
from sardata.datasets.opensarship import OpenSARShipImporter, read_ship_xml
from sardata.datasets.taxonomy import AisClassMap, ais_type_name, load_taxonomy, map_label
from sardata.synth import opensarship as synth

S54D0 = "S1A_IW_GRDH_1SDV_20150823T221233_20150823T221258_007396_00A2CA_54D0"  # v1.0 GRD dual
S2D00 = "S1A_IW_GRDH_1SDV_20150902T102505_20150902T102534_007535_00A699_2D00"  # v2.0 GRD dual, malformed
S36F7 = "S1A_IW_GRDH_1SDV_20160131T101646_20160131T101715_009737_00E392_36F7"  # v2.0 GRD dual, malformed, subset
SE792 = "S1A_IW_GRDH_1SSV_20160131T204259_20160131T204324_009743_00E3C6_E792"  # v2.0 GRD single, malformed, subset
S3FF3 = "S1A_IW_SLC__1SDV_20160606T221231_20160606T221258_011596_011B8A_3FF3"  # v2.0 SLC dual
S2DC9 = "S1A_IW_SLC__1SSV_20150217T204257_20150217T204324_004668_005C34_2DC9"  # v2.0 SLC single, subset


def _importer_samples(root, **kwargs):
    importer = OpenSARShipImporter(root, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        importer.setup()
        samples = list(importer)
    importer.close()
    return importer, samples


# --------------------------------------------------------------------------------------------- real samples


@pytest.fixture(scope="module")
def real_dataset(real_data):
    name = "test-opensarship-real"
    if fo.dataset_exists(name):
        fo.delete_dataset(name)
    dataset = sds.load("opensarship", real_data / "opensarship", name=name)
    yield dataset
    dataset.delete()


def test_real_counts_per_scene(real_dataset):
    counts = real_dataset.count_values("scene_id")
    assert counts == {S54D0: 12, S2D00: 13, S3FF3: 9, S36F7: 12, SE792: 30, S2DC9: 20}
    assert real_dataset.info["ingest_problems"] == []
    scenes = {s["scene_id"]: s for s in real_dataset.info["scenes"]}
    # subset scenes: the full Ship.xml lists ships whose patches were not copied (counted, not errors)
    assert {k: v["ships_in_xml"] for k, v in scenes.items()} == {S54D0: 12, S2D00: 13, S3FF3: 9, S36F7: 72,
                                                                  SE792: 124, S2DC9: 56}
    assert real_dataset.info["ships_without_patches"] == 60 + 94 + 36
    # the three v2.0 GRD Ship.xml end with <\ShipList> and are parsed after repair
    assert {k for k, v in scenes.items() if v["ship_xml_repaired"]} == {S2D00, S36F7, SE792}
    assert set(real_dataset.distinct("source")) == {"opensarship"}
    # split is None on every sample (FiftyOne declares no field for an all-None value)
    assert "split" not in real_dataset.get_field_schema() or real_dataset.distinct("split") == []
    assert real_dataset.default_classes == ["Cargo", "Tanker", "Fishing", "Other"]


def test_real_band_counts_and_products(real_dataset):
    by_scene = {}
    for scene, product, pols, channels in zip(*real_dataset.values(
            ["scene_id", "product_type", "polarisations", "metadata.num_channels"])):
        by_scene.setdefault(scene, set()).add((product, tuple(pols), channels))
    assert by_scene == {
        S54D0: {("GRD", ("VH", "VV"), 2)}, S2D00: {("GRD", ("VH", "VV"), 2)}, S36F7: {("GRD", ("VH", "VV"), 2)},
        SE792: {("GRD", ("VV",), 1)}, S3FF3: {("SLC", ("VH", "VV"), 4)}, S2DC9: {("SLC", ("VV",), 2)},
    }
    # chips are square and as large as the (UL/LR-swapped) window in Ship.xml, for all 96
    for window, width, height in zip(*real_dataset.values(["scene_window", "metadata.width", "metadata.height"])):
        assert width == height == window[2] - window[0] + 1 == window[3] - window[1] + 1
    # one Patch_Uint8 and one Patch_RGB file per polarisation ("" key for single-pol)
    for pols, uint8, rgb in zip(*real_dataset.values(["polarisations", "patch_uint8_paths", "patch_rgb_paths"])):
        expected = {p.lower() for p in pols} if len(pols) == 2 else {""}
        assert set(uint8) == set(rgb) == expected
    # display PNGs exist and are 8-bit renderings of the VV band, SLC converted to amplitude (stats positive)
    sample = real_dataset.match({"scene_id": S3FF3}).first()
    assert sample.display_polarisation == "VV" and sample.filepath.endswith(".png")
    assert sarimage.read_image(sample.filepath).dtype.name == "uint8"
    assert sample.sar_path.endswith(".tif") and "/Patch/" in sample.sar_path
    vv_amplitude = sarimage.complex_pairs_to_amplitude(sarimage.read_image(sample.sar_path))[..., 1]
    assert sample.sar_stats.min >= 0 and sample.sar_stats.max == pytest.approx(float(vv_amplitude.max()))


def test_real_hand_checked_chips(real_dataset):
    def chip(scene, key):
        return real_dataset.match({"chip_id": f"{scene}/{key}"}).first()

    s = chip(S54D0, "x1673_y6973")  # checked in Ship.xml: first <ship> of the v1.0 scene
    assert (s.mmsi, s.ais_type_code, s.elaborated_type) == (413338000, 70, "Bulk Carrier")
    assert s.ground_truth.label == "Cargo"
    assert (s.length, s.width, s.chip_type, s.release) == (190, 32, "Cargo", "1.0")
    assert s.center_longitude == pytest.approx(119.1583) and s.center_latitude == pytest.approx(39.10183)
    assert s.scene_window == [1631, 6931, 1715, 7015]  # UL/LR swapped in the file
    assert s.time_utc.isoformat() == "2015-08-23T22:12:45"
    assert s.patch_rgb_paths["vv"].endswith("_vv.tif") and sarimage.extension_lies(s.patch_rgb_paths["vv"])

    s = chip(S2D00, "x979_y5573")  # malformed scene, Passenger (AIS 60) → Other
    assert (s.mmsi, s.ais_type_code, s.chip_type, s.ground_truth.label) == (511081000, 60, "Passenger", "Other")
    s = chip(S2D00, "x909_y5436")
    assert (s.mmsi, s.ais_type_code, s.chip_type, s.elaborated_type) == (477995065, 90, "Other Type",
                                                                           "Ro-Ro/Passenger Ship")
    s = chip(S36F7, "x10351_y13644")  # AIS code 0 although MarineTraffic says Fishing: the AIS code decides
    assert (s.mmsi, s.ais_type_code, s.elaborated_type, s.ground_truth.label) == (412446641, 0, "Fishing", "Other")
    assert s.length is None and s.true_heading is None  # AIS Length 0 and True_Head 511 = not available
    assert s.ship_name == "MIN DONG YU 61526"  # padded with spaces in the file
    s = chip(S2DC9, "x24622_y4443")
    assert (s.true_heading, s.gross_tonnage, s.ship_name) == (4.0, 39737, "KM IMABARI")  # "<True_Head> 4.00"
    assert chip(S2DC9, "x24650_y4176").gross_tonnage is None  # "NA"
    assert s.location.point == [pytest.approx(s.center_longitude), pytest.approx(s.center_latitude)]
    s = chip(SE792, "x10115_y8785")
    assert (s.mmsi, s.ais_type_code, s.ground_truth.label, s.polarisations) == (431000253, 89, "Tanker", ["VV"])
    s = chip(S3FF3, "x25277_y9768")
    assert (s.mmsi, s.ais_type_code, s.elaborated_type, s.product_type) == (311013500, 79, "Cabu Carrier", "SLC")
    s = chip(S2DC9, "x28074_y4963")
    assert (s.mmsi, s.ais_type_code, s.ground_truth.label) == (431400378, 86, "Tanker")
    # the same vessel (MMSI 431773000) appears in two scenes
    assert len(real_dataset.match({"mmsi": 431773000}).distinct("scene_id")) == 2


def test_real_prefix_join_search_and_rescue(real_dataset):
    s = real_dataset.match({"chip_id": f"{S36F7}/x10877_y18265"}).first()
    assert s.chip_type == "Search and Rescue vessel"
    assert (s.mmsi, s.ais_type_code, s.elaborated_type) == (412054790, 51, "Salvage/Rescue Vessel")
    assert Path(s.patch_path).name == "Search and Rescue vessel_x10877_y18265.tif"
    assert Path(s.patch_cal_path).name == "Search_x10877_y18265.tif"
    assert Path(s.patch_rgb_paths["vh"]).name == "Search_x10877_y18265_vh.png"
    assert Path(s.patch_uint8_paths["vv"]).name == "Visual_Search and Rescue vessel_x10877_y18265_vv.tif"
    assert s.ground_truth.label == "Other"


def test_real_patch_cal_source_band_counts(real_data):
    importer, samples = _importer_samples(real_data / "opensarship", pixel_source="patch_cal", compute_stats=False)
    assert len(samples) == 96 and importer.problems == []
    assert all(s.split is None and s.source == "opensarship" for s in samples)
    channels = {(s.product_type, len(s.polarisations)): s.metadata.num_channels for s in samples}
    # Patch_Cal is intensity with one band per polarisation, SLC included
    assert channels == {("GRD", 2): 2, ("GRD", 1): 1, ("SLC", 2): 2, ("SLC", 1): 1}
    assert all("/Patch_Cal/" in s.sar_path for s in samples)


def test_read_ship_xml_repairs_backslash_tag(real_data):
    ships, problem, repaired = read_ship_xml(real_data / "opensarship" / S2D00 / "Ship.xml")
    assert problem is None and repaired and len(ships) == 13
    ships, problem, repaired = read_ship_xml(real_data / "opensarship" / S54D0 / "Ship.xml")
    assert problem is None and not repaired and len(ships) == 12


# --------------------------------------------------------------------------------------------- synthetic


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    return synth.generate(tmp_path_factory.mktemp("osp"), seed=3)


def test_synthetic_layout(synth_root):
    scenes = sorted(p.name for p in synth_root.iterdir() if p.is_dir())
    assert len(scenes) == 5
    truth = json.loads((synth_root / "synth_truth.json").read_text())
    assert len(truth["chips"]) == synth.DEFAULT_CHIPS
    v1 = next(synth_root / s for s in scenes if (synth_root / s / "Metedata.xml").exists())
    rgb = sorted((v1 / "Patch_RGB").iterdir())[0]
    assert rgb.suffix == ".tif" and sarimage.sniff_format(rgb) == "png"
    malformed = [s for s in scenes if (synth_root / s / "Ship.xml").read_bytes().endswith(b"<\\ShipList>")]
    assert sorted(malformed) == sorted(s for s, info in truth["scenes"].items() if info["malformed_ship_xml"])
    assert len(malformed) == 2
    xml = (synth_root / malformed[0] / "Ship.xml").read_bytes()
    assert b"\r\n\t<ship>\r\n\t\t<SARShipInformation>" in xml
    assert sorted(p.name for p in synth_root.rglob("Search_*.tif"))  # truncated prefix in Patch_Cal
    uint8 = next(synth_root.rglob("Visual_*.tif"))
    assert sarimage.read_image(uint8).dtype.name == "uint8"


def test_synthetic_round_trip(synth_root, fo_dataset_name):
    truth = json.loads((synth_root / "synth_truth.json").read_text())
    dataset = sds.load("opensarship", synth_root, name=fo_dataset_name)
    assert len(dataset) == len(truth["chips"]) and dataset.info["ingest_problems"] == []
    for chip_id, label, mmsi, code, chip_type, product, channels in zip(*dataset.values(
            ["chip_id", "ground_truth.label", "mmsi", "ais_type_code", "chip_type", "product_type",
             "metadata.num_channels"])):
        expected = truth["chips"][chip_id]
        assert (label, mmsi, code, chip_type, product) == (
            expected["ais_class"], expected["mmsi"], expected["ais_code"], expected["chip_type"],
            expected["product_type"])
        n_pol = len(expected["polarisations"])
        assert channels == (2 * n_pol if product == "SLC" else n_pol)
    assert set(dataset.distinct("ground_truth.label")) == {"Cargo", "Tanker", "Fishing", "Other"}
    assert dataset.info["ships_without_patches"] == sum(truth["ships_without_patches"].values()) > 0
    # some vessels are seen in several scenes with the same MMSI (for grouped splits later)
    repeated = [m for m, c in Counter(dataset.values("mmsi")).items() if c > 1]
    assert repeated and all(len(dataset.match({"mmsi": m}).distinct("scene_id")) > 1 for m in repeated)
    # size by class: cargo ships are longer than fishing boats
    chips = truth["chips"].values()
    lengths = {c: [t["length_m"] for t in chips if t["true_class"] == c] for c in ("Cargo", "Fishing")}
    assert min(lengths["Cargo"]) > max(lengths["Fishing"])


def test_synthetic_from_dir_and_options(synth_root, fo_dataset_name):
    dataset = fo.Dataset.from_dir(synth_root, dataset_type=sardata.types.OpenSARShip, name=fo_dataset_name,
                                  pixel_source="patch_cal", ais_classes={"Cargo": ["70-79"], "Tanker": "80-89"})
    truth = json.loads((synth_root / "synth_truth.json").read_text())
    assert len(dataset) == len(truth["chips"])
    assert all("/Patch_Cal/" in p for p in dataset.values("sar_path"))
    expected = Counter("Other" if t["ais_class"] == "Fishing" else t["ais_class"] for t in truth["chips"].values())
    assert Counter(dataset.values("ground_truth.label")) == expected


def test_generator_is_deterministic(tmp_path):
    a = synth.generate(tmp_path / "a", n=5, seed=7)
    b = synth.generate(tmp_path / "b", n=5, seed=7)
    assert (a / "synth_truth.json").read_bytes() == (b / "synth_truth.json").read_bytes()
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


# --------------------------------------------------------------------------------------------- bad input


def test_bad_input_reported_rest_ingested(tmp_path):
    root = synth.generate(tmp_path / "gen", n=10, seed=1)
    truth = json.loads((root / "synth_truth.json").read_text())
    bad_root = tmp_path / "bad"
    shutil.copytree(root, bad_root)
    scenes = sorted(p for p in bad_root.iterdir() if p.is_dir())
    grd_dual = next(s for s in scenes if "GRDH_1SDV" in s.name)
    patches = sorted((grd_dual / "Patch").iterdir())
    # 1. truncated image
    truncated = patches[0]
    truncated.write_bytes(truncated.read_bytes()[:200])
    # 2. wrong band count (1 band in a dual-pol GRD scene)
    import tifffile

    tifffile.imwrite(patches[1], sarimage.read_image(patches[1])[..., 0])
    # 3. missing Patch file (Patch_Cal still there)
    missing = sorted((scenes[1] / "Patch").iterdir())[0]
    missing.unlink()
    # 4. unknown class: unreadable AIS Ship_Type code
    xml_path = scenes[2] / "Ship.xml"
    text = xml_path.read_bytes()
    first_code = text.index(b"<Ship_Type>")
    end = text.index(b"</Ship_Type>", first_code) + len(b"</Ship_Type>")
    xml_path.write_bytes(text[:first_code] + b"<Ship_Type>cargo?</Ship_Type>" + text[end:])
    # 5. malformed XML beyond repair: cut in the middle of the last <ship>
    broken_xml = scenes[3] / "Ship.xml"
    data = broken_xml.read_bytes()
    broken_xml.write_bytes(data[: data.rindex(b"<ship>") + 40])
    # 6. a stray file whose name is not a chip name
    stray = scenes[4] / "Patch" / "notes.tif"
    stray.write_bytes(b"II*\x00")
    # hidden files and folders are ignored (macOS sidecar, a half-written copy)
    (scenes[4] / "Patch" / f"._{sorted((scenes[4] / 'Patch').iterdir())[0].name}").write_bytes(b"\x00\x05")
    shutil.copytree(scenes[0], bad_root / ".partial" / scenes[0].name)

    importer, samples = _importer_samples(bad_root)
    problems = {Path(p.path).name: p.reason for p in importer.problems}
    assert "expected" in problems[patches[1].name] and "got 1" in problems[patches[1].name]
    assert truncated.name in problems
    assert any("has no Patch/ file" in r for r in problems.values())
    assert "Ship_Type" in problems.get(_chip_with_bad_code(scenes[2]), "")
    assert "not well-formed" in problems["Ship.xml"]
    assert "does not match" in problems["notes.tif"]
    assert len(importer.problems) == 6
    # everything else is ingested; chips of the broken Ship.xml still come in (recovered <ship> entries or type name)
    assert len(samples) == len(truth["chips"]) - 4
    assert any(s.scene_id == scenes[3].name for s in samples)

    with pytest.raises(IngestError):
        _importer_samples(bad_root, strict=True)


def _chip_with_bad_code(scene: Path) -> str:
    """The Patch file name of the first <ship> in a scene's Ship.xml."""
    ships, _, _ = read_ship_xml(scene / "Ship.xml")
    sar = ships[0]["SARShipInformation"]
    key = f"x{int(sar['Center_x'])}_y{int(sar['Center_y'])}"
    return next(p.name for p in (scene / "Patch").iterdir() if key in p.name)


def test_missing_root_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="Ship.xml"):
        OpenSARShipImporter(tmp_path).setup()
    with pytest.raises(ValueError, match="pixel_source"):
        OpenSARShipImporter(tmp_path, pixel_source="rgb")


# --------------------------------------------------------------------------------------------- CLI


def test_cli_ingest_prints_summary(synth_root, fo_dataset_name):
    from typer.testing import CliRunner

    from sardata.cli import app

    result = CliRunner().invoke(app, ["ingest", "opensarship", str(synth_root), "--name", fo_dataset_name])
    assert result.exit_code == 0, result.output
    assert "samples" in result.output and str(synth.DEFAULT_CHIPS) in result.output
    assert "class Cargo" in result.output


# --------------------------------------------------------------------------------------------- taxonomy


def test_ais_class_map(tmp_path):
    default = AisClassMap()
    assert [default(c) for c in (70, 79, 80, 89, 30, 0, 52, None)] == [
        "Cargo", "Cargo", "Tanker", "Tanker", "Fishing", "Other", "Other", "Other"]
    custom = AisClassMap.from_option({"classes": {"Cargo": ["70-79"], "Tug": [52]}, "other": None})
    assert (custom(75), custom(52), custom(80)) == ("Cargo", "Tug", None)
    with pytest.raises(ValueError, match="overlap"):
        AisClassMap({"A": ["70-79"], "B": ["75"]})
    with pytest.raises(ValueError, match="bad AIS code"):
        AisClassMap({"A": ["seventy"]})
    assert ais_type_name(51) == "Search and Rescue vessel" and ais_type_name(0) == "Other Type"
    (tmp_path / "ais.yaml").write_text("classes:\n  Cargo: ['70-79']\n  Fishing: [30]\nother: Misc\n")
    from_file = AisClassMap.from_option(tmp_path / "ais.yaml")
    assert (from_file(71), from_file(30), from_file(80), from_file.labels) == ("Cargo", "Fishing", "Misc",
                                                                               ["Cargo", "Fishing", "Misc"])


def test_load_taxonomy_builtin_and_files(tmp_path):
    ships3, ships4 = load_taxonomy("ships3"), load_taxonomy("ships4")
    assert ships3["Fishing"] == "Fishing" and ships3["Other Type"] is None and ships3["LawEnforce"] is None
    assert ships4["Other Type"] == "Other" and ships4["Search and Rescue vessel"] == "Other"
    assert ships4["Tug"] == "Other" and ships4["Cargo"] == "Cargo" and ships4["Unspecified"] == "Other"
    (tmp_path / "t.json").write_text(json.dumps({"mapping": {"Cargo": "Merchant", "fusar:Other": None}}))
    taxonomy = load_taxonomy(tmp_path / "t.json")
    assert taxonomy == {"Cargo": "Merchant", "fusar:Other": None}
    assert map_label(taxonomy, "Other", source="fusar", default="Other") is None
    assert map_label(taxonomy, "Other", source="opensarship", default="X") == "X"
    (tmp_path / "t.yaml").write_text("Tanker: Tanker\nTug: null\n")
    assert load_taxonomy(tmp_path / "t.yaml") == {"Tanker": "Tanker", "Tug": None}
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        load_taxonomy(tmp_path / "bad.json")
    (tmp_path / "bad2.json").write_text(json.dumps({"Cargo": 3}))
    with pytest.raises(ValueError, match="expected a label"):
        load_taxonomy(tmp_path / "bad2.json")
    with pytest.raises(ValueError, match="unknown taxonomy"):
        load_taxonomy("ships99")

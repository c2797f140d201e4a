"""FUSAR-Ship loader and generator: README-layout conformance, synthetic round trip, bad input, CLI.

No real FUSAR-Ship data is available (PROVENANCE.md section 6); the conformance test rebuilds the layout and the
three example meta.csv rows quoted from the official README.
"""

import json
import shutil
import warnings
from collections import Counter
from pathlib import Path

import fiftyone as fo
import numpy as np
import pytest
from PIL import Image

import sardata.datasets as sds
import sardata.types
from sardata.datasets._base import IngestError
from sardata.datasets.fusar import FUSARShipImporter
from sardata.datasets.taxonomy import FUSAR_CATEGORIES, load_taxonomy
from sardata.synth import fusar as synth

README_ROWS = (
    "id\tmmsi\tlength\twidth\tpolarMode\tcenterLookAngle\theightspace\twidthspace\tpath\r\n"
    "Ship_C01S01N0001\t477939300\t138\t26\tDH\t42.51\t1.702183\t1.124222\tCargo\\AggregatesCarrier\r\n"
    "Ship_C01S01N0002\t371469000\t87\t12\tDH\t42.51\t1.701591\t1.124222\tCargo\\AggregatesCarrier\r\n"
    "Ship_C01S02N0001\t351445000\t229\t32\tDH\t27.28\t1.72615\t1.124222\tCargo\\BulkCarrier\r\n"
)


def _chip(path: Path, value: int = 40, size: int = 512) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    chip = rng.integers(0, 80, (size, size), dtype=np.uint8)
    chip[size // 2 - 5 : size // 2 + 5, size // 2 - 40 : size // 2 + 40] = 250
    Image.fromarray(chip, mode="L").save(path, format="TIFF")


def _importer_samples(root, **kwargs):
    importer = FUSARShipImporter(root, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        importer.setup()
        samples = list(importer)
    importer.close()
    return importer, samples


def test_readme_layout_conformance(tmp_path, fo_dataset_name):
    root = tmp_path / "FUSAR_Ship1.0"
    root.mkdir()
    (root / "meta.csv").write_bytes(README_ROWS.encode())
    _chip(root / "Cargo" / "AggregatesCarrier" / "Ship_C01S01N0001.tiff", 1)
    _chip(root / "Cargo" / "BulkCarrier" / "Ship_C01S02N0001.tiff", 2)
    _chip(root / "Fishing" / "Fishing" / "Ship_C03S01N0001.tiff", 3)  # a chip without a meta.csv row
    # the parent folder works as the root too
    dataset = sds.load("fusar", tmp_path, name=fo_dataset_name)
    assert len(dataset) == 3 and dataset.info["ingest_problems"] == []
    assert dataset.info["meta_rows"] == 3
    assert dataset.info["meta_rows_without_chip"] == 1  # Ship_C01S01N0002 has a row but no chip: counted, no error
    assert dataset.info["meta_ids_without_chip_examples"] == ["Ship_C01S01N0002"]
    assert dataset.info["chips_without_meta"] == 1
    assert dataset.default_classes == ["Cargo", "Fishing"]
    s = dataset.match({"chip_id": "Ship_C01S01N0001"}).first()
    assert (s.ground_truth.label, s.subcategory, s.mmsi, s.length, s.width) == ("Cargo", "AggregatesCarrier",
                                                                               477939300, 138, 26)
    assert (s.polar_mode, s.center_look_angle, s.height_space, s.width_space) == ("DH", 42.51, 1.702183, 1.124222)
    assert (s.meta_path, s.category_index, s.subcategory_index, s.has_meta) == ("Cargo\\AggregatesCarrier", 1, 1, True)
    assert (s.metadata.width, s.metadata.height, s.metadata.num_channels) == (512, 512, 1)
    assert s.filepath.endswith(".png") and s.sar_path.endswith(".tiff") and s.source == "fusar"
    s = dataset.match({"chip_id": "Ship_C01S02N0001"}).first()
    assert (s.mmsi, s.length, s.center_look_angle, s.subcategory) == (351445000, 229, 27.28, "BulkCarrier")
    s = dataset.match({"chip_id": "Ship_C03S01N0001"}).first()
    assert (s.ground_truth.label, s.subcategory, s.has_meta, s.category_index) == ("Fishing", "Fishing", False, 3)
    assert s.mmsi is None


def test_comma_separated_meta_and_category_only_folders(tmp_path):
    (tmp_path / "meta.csv").write_text("id,mmsi,length,width,polarMode,centerLookAngle,heightspace,widthspace,path\n"
                                       "Ship_C05S01N0001,123456789,30,8,DH,30.0,1.7,1.1,Tug\n")
    _chip(tmp_path / "Tug" / "Ship_C05S01N0001.tif", 5)
    importer, samples = _importer_samples(tmp_path, compute_stats=False)
    assert importer.problems == [] and len(samples) == 1
    assert (samples[0].ground_truth.label, samples[0].subcategory, samples[0].mmsi) == ("Tug", None, 123456789)
    assert samples[0].split is None


# --------------------------------------------------------------------------------------------- synthetic


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    return synth.generate(tmp_path_factory.mktemp("fusar"), seed=2)


def test_synthetic_layout(synth_root):
    truth = json.loads((synth_root / "synth_truth.json").read_text())
    assert len(truth["chips"]) == synth.DEFAULT_CHIPS
    chips = sorted(synth_root.rglob("*.tiff"))
    assert len(chips) == synth.DEFAULT_CHIPS
    with Image.open(chips[0]) as im:
        assert (im.mode, im.size) == ("L", (512, 512))
    header, *rows = (synth_root / "meta.csv").read_bytes().decode().split("\r\n")
    assert header.split("\t") == ["id", "mmsi", "length", "width", "polarMode", "centerLookAngle", "heightspace",
                                  "widthspace", "path"]
    rows = [r.split("\t") for r in rows if r]
    assert all(len(r) == 9 and "\\" in r[8] for r in rows)
    assert len(rows) == sum(t["has_meta_row"] for t in truth["chips"].values()) + len(truth["meta_rows_without_chip"])
    assert truth["meta_rows_without_chip"] and not all(t["has_meta_row"] for t in truth["chips"].values())
    counts = Counter(t["category"] for t in truth["chips"].values())
    assert counts.most_common(3) == [("Cargo", 16), ("Other", 13), ("Fishing", 6)] and len(counts) > 4


def test_full_size_category_counts():
    assert synth.category_counts(5243) == dict(zip(FUSAR_CATEGORIES, synth.RELEASE_COUNTS))
    assert sum(synth.category_counts(123).values()) == 123


def test_synthetic_round_trip(synth_root, fo_dataset_name):
    truth = json.loads((synth_root / "synth_truth.json").read_text())
    dataset = sds.load("fusar", synth_root, name=fo_dataset_name)
    assert len(dataset) == len(truth["chips"]) and dataset.info["ingest_problems"] == []
    for chip_id, label, sub, has_meta, mmsi in zip(*dataset.values(
            ["chip_id", "ground_truth.label", "subcategory", "has_meta", "mmsi"])):
        expected = truth["chips"][chip_id]
        assert (label, sub, has_meta) == (expected["category"], expected["subcategory"], expected["has_meta_row"])
        assert mmsi == (expected["mmsi"] if has_meta else None)
    assert dataset.info["meta_rows_without_chip"] == len(truth["meta_rows_without_chip"])
    assert dataset.info["chips_without_meta"] == sum(not t["has_meta_row"] for t in truth["chips"].values())
    assert dataset.default_classes[:4] == ["Cargo", "Other", "Fishing", "Tanker"]
    # merging taxonomies cover every FUSAR category
    ships3, ships4 = load_taxonomy("ships3"), load_taxonomy("ships4")
    assert set(dataset.distinct("ground_truth.label")) <= set(ships4)
    assert ships3["Fishing"] == "Fishing" and ships3["Unspecified"] is None and ships4["Tug"] == "Other"


def test_from_dir_and_determinism(synth_root, tmp_path, fo_dataset_name):
    dataset = fo.Dataset.from_dir(synth_root, dataset_type=sardata.types.FUSARShip, name=fo_dataset_name,
                                  compute_stats=False)
    assert len(dataset) == synth.DEFAULT_CHIPS
    a = synth.generate(tmp_path / "a", n=6, seed=9)
    b = synth.generate(tmp_path / "b", n=6, seed=9)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


# --------------------------------------------------------------------------------------------- bad input


def test_bad_input_reported_rest_ingested(tmp_path):
    root = synth.generate(tmp_path / "gen", n=12, seed=4)
    bad = tmp_path / "bad"
    shutil.copytree(root, bad)
    chips = sorted(bad.rglob("*.tiff"))
    # 1. truncated image
    chips[0].write_bytes(chips[0].read_bytes()[:100])
    # 2. not single-channel (colour image)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(chips[1], "TIFF")
    # 3. chip moved into another category than meta.csv says (label from the folder, mismatch reported)
    moved = bad / "Tanker" / "Elsewhere" / chips[2].name
    moved.parent.mkdir(parents=True)
    chips[2].rename(moved)
    # hidden files are not chips (macOS sidecar)
    (chips[3].parent / f"._{chips[3].name}").write_bytes(b"\x00\x05\x16\x07")
    # 4. a chip outside any category folder
    loose = bad / "Ship_C99S01N0001.tiff"
    _chip(loose)
    meta = (bad / "meta.csv").read_text().splitlines()
    meta += [
        "Ship_C01S01N0999\t1\t2\t3\tDH\t30\t1.7\t1.1\t..\\..\\etc",  # 5. path escaping the root
        "Ship_C01S01N0998\t1\t2",  # 6. wrong field count
        "Ship_C01S01N0997\tnot-a-number\t2\t3\tDH\t30\t1.7\t1.1\tCargo\\BulkCarrier",  # 7. bad mmsi
    ]
    (bad / "meta.csv").write_text("\n".join(meta) + "\n")

    importer, samples = _importer_samples(bad, compute_stats=False)
    reasons = {p.path: p.reason for p in importer.problems}
    assert len(importer.problems) == 7, reasons
    assert str(chips[0]) in reasons and "single-channel" in reasons[str(chips[1])]
    assert "the folder 'Tanker/Elsewhere' is used" in reasons[str(moved)]
    assert "not inside a <Category>/ folder" in reasons[str(loose)]
    meta_reasons = [r for p, r in reasons.items() if "meta.csv line" in p]
    assert any("escapes" in r for r in meta_reasons) and any("fields" in r for r in meta_reasons)
    assert any("not-a-number" in r for r in meta_reasons)
    assert len(samples) == 12 - 2
    assert next(s for s in samples if s.sar_path == str(moved)).ground_truth.label == "Tanker"
    with pytest.raises(IngestError):
        _importer_samples(bad, strict=True)


def test_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="meta.csv"):
        FUSARShipImporter(tmp_path).setup()


def test_cli_ingest_prints_summary(synth_root, fo_dataset_name):
    from typer.testing import CliRunner

    from sardata.cli import app

    result = CliRunner().invoke(app, ["ingest", "fusar", str(synth_root), "--name", fo_dataset_name])
    assert result.exit_code == 0, result.output
    assert "class Cargo" in result.output and str(synth.DEFAULT_CHIPS) in result.output

"""Hardening: every loader against the malformed-input corpus of :mod:`malformed`, plus safe archive extraction.

For each dataset: the broken copy ingests without crashing, every broken file is reported by path with a reason, the
intact samples are all there, and ``strict=True`` raises on the first problem.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import malformed  # noqa: E402

from sardata.archive import BadArchiveError, UnsafeArchiveError, safe_extract  # noqa: E402

WHU_PATCH = 128
#: dataset key → (synthetic n, importer kwargs)
SETUPS = {
    "ssdd": (6, {}),
    "sar_aircraft": (4, {}),
    "opensarship": (6, {}),
    "fusar": (6, {}),
    "whu_opt_sar": (3, {"patch_size": WHU_PATCH}),
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """One synthetic copy of each dataset, shared by the tests of this module (each test corrupts its own copy)."""
    from sardata.synth import synthesize

    base = tmp_path_factory.mktemp("pristine")
    return {key: synthesize(key, base / key, n=n) for key, (n, _) in SETUPS.items()}


def build_corpus(key: str, pristine_root: Path, tmp: Path) -> malformed.Corpus:
    if key == "whu_opt_sar":
        return malformed.whu_opt_sar(pristine_root, tmp, WHU_PATCH)
    return getattr(malformed, key)(pristine_root, tmp)


def importer_for(key: str, root: Path, **kwargs):
    from sardata.datasets import dataset_type

    cls = dataset_type(key)().get_dataset_importer_cls()
    return cls(str(root), num_workers=2, **{**SETUPS[key][1], **kwargs})


def ingest(importer) -> list:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with importer:
            return list(importer)


def assert_reported(problems, corpus: malformed.Corpus) -> None:
    """Every broken file of the corpus is named by a problem whose reason says why; nothing else is blamed."""
    for path, reason in corpus.problems.items():
        hits = [p for p in problems if p["path"].startswith(path)]
        assert hits, f"no problem reported for {path}; got {[p['path'] for p in problems]}"
        assert any(reason in p["reason"].lower() for p in hits), f"{path}: expected {reason!r} in {hits}"
    for p in problems:  # "<meta.csv> line 12" names a file too
        assert str(Path(p["path"].split(" line ")[0]).resolve()) in corpus.problems, f"unexpected problem {p}"


# --------------------------------------------------------------------------------------------- all loaders


@pytest.mark.parametrize("key", list(SETUPS))
def test_corpus_through_load_reports_each_file_and_keeps_the_rest(key, pristine, tmp_path, fo_dataset_name):
    import sardata

    corpus = build_corpus(key, pristine[key], tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = sardata.load(key, corpus.root, name=fo_dataset_name, progress=False, **SETUPS[key][1])
    assert len(dataset) == corpus.samples
    problems = dataset.info["ingest_problems"]
    assert_reported(problems, corpus)
    sar_paths = {str(Path(p).resolve()) for p in dataset.values("sar_path")}
    assert not sar_paths & set(corpus.problems)  # no reported file became a sample
    for filepath, sar_path in zip(*dataset.values(["filepath", "sar_path"])):
        assert Path(filepath).is_file()
        assert "passwd" not in sar_path and "etc" not in Path(sar_path).parts


@pytest.mark.parametrize("key", list(SETUPS))
def test_corpus_strict_raises_naming_a_broken_file(key, pristine, tmp_path):
    from sardata.datasets._base import IngestError

    corpus = build_corpus(key, pristine[key], tmp_path)
    with pytest.raises(IngestError) as error:
        ingest(importer_for(key, corpus.root, strict=True))
    assert any(Path(path).name in str(error.value) for path in corpus.problems)


@pytest.mark.parametrize("key", ["ssdd", "opensarship"])
def test_strict_load_leaves_no_half_dataset(key, pristine, tmp_path, fo_dataset_name):
    import fiftyone as fo

    import sardata
    from sardata.datasets._base import IngestError

    corpus = build_corpus(key, pristine[key], tmp_path)
    with pytest.raises(IngestError):
        sardata.load(key, corpus.root, name=fo_dataset_name, strict=True, progress=False)
    assert not fo.dataset_exists(fo_dataset_name)


def test_safe_join_follows_symlinks_out_of_the_root(tmp_path):
    from sardata.safepath import UnsafePathError, safe_join

    root = tmp_path / "root"
    (root / "inside").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    (root / "link").symlink_to(tmp_path / "secret")
    assert safe_join(root, "inside/../inside/a.jpg") == (root / "inside" / "a.jpg").resolve()
    for escaping in ("link/key.pem", "../secret/key.pem", "inside/../../secret", "/etc/passwd", "..\\secret"):
        with pytest.raises(UnsafePathError, match="escapes"):
            safe_join(root, escaping)


@pytest.mark.parametrize("key", list(SETUPS))
def test_pristine_copy_has_no_problems(key, pristine):
    """The corpus builders start from clean data: any problem in the reports comes from the faults we injected."""
    importer = importer_for(key, pristine[key], strict=True)
    samples = ingest(importer)
    assert samples and importer.problems == []


# --------------------------------------------------------------------------------------------- loader specifics


def test_ssdd_bad_objects_dropped_image_kept_duplicate_id_once(pristine, tmp_path):
    corpus = malformed.ssdd(pristine["ssdd"], tmp_path)
    importer = importer_for("ssdd", corpus.root)
    samples = {s["image_id"]: s for s in ingest(importer)}
    image_id = corpus.notes["image_with_bad_objects"]
    assert image_id in samples
    sample = samples[image_id]
    assert len(sample["ground_truth"].detections) == corpus.notes["objects_kept"]
    assert sample["split"] == "train"  # the duplicate in the test folder did not replace it
    reasons = [p.reason for p in importer.problems if Path(p.path).name == f"{image_id}.xml"]
    for expected in corpus.notes["bad_object_reasons"]:
        assert any(expected in r for r in reasons), (expected, reasons)
    for det in sample["ground_truth"].detections:
        x, y, w, h = det.bounding_box
        assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= 1 + 1e-9 and y + h <= 1 + 1e-9


def test_ssdd_coco_escaping_file_name_and_duplicate_annotation_ids(pristine, tmp_path):
    corpus = malformed.ssdd_coco(pristine["ssdd"], tmp_path)
    importer = importer_for("ssdd", corpus.root, annotation_source="coco")
    samples = ingest(importer)
    assert len(samples) == corpus.samples
    assert not any("passwd" in s.filepath for s in samples)
    kept = next(s for s in samples if Path(s.filepath).name == Path(corpus.notes["image_file"]).name)
    assert len(kept["ground_truth"].detections) == corpus.notes["boxes"]  # both copies of the duplicated id
    assert any("unknown category 999" in p.reason for p in importer.problems)
    assert any("escapes" in p.reason for p in importer.problems)


def test_opensarship_nonfinite_and_zero_chips_are_kept_with_finite_display(pristine, tmp_path):
    from PIL import Image

    corpus = malformed.opensarship(pristine["opensarship"], tmp_path)
    samples = {s.sar_path: s for s in ingest(importer_for("opensarship", corpus.root))}
    nan_sample, zero_sample = samples[corpus.notes["nan_chip"]], samples[corpus.notes["zero_chip"]]
    assert nan_sample.sar_stats["nonfinite_fraction"] == pytest.approx(1.0)
    assert zero_sample.sar_stats["zero_fraction"] == 1.0 and zero_sample.sar_stats["mean"] == 0.0
    for sample in (nan_sample, zero_sample):
        shown = np.asarray(Image.open(sample.filepath))
        assert shown.dtype == np.uint8 and shown.shape[:2] == (sample.metadata.height, sample.metadata.width)
        assert not shown.any()  # nothing finite (or nothing but zeros) to show
    assert nan_sample.mmsi == corpus.notes["nan_chip_mmsi"]  # the first of two conflicting <ship> entries
    bomb = [s for s in samples.values() if s.chip_id.startswith(corpus.notes["bomb_scene"])]
    assert bomb and all(s.has_ais is False and s.to_dict().get("mmsi") is None for s in bomb)


def test_opensarship_nonfinite_stats_survive_the_database(pristine, tmp_path, fo_dataset_name):
    import sardata

    corpus = malformed.opensarship(pristine["opensarship"], tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = sardata.load("opensarship", corpus.root, name=fo_dataset_name, progress=False)
    sample = dataset.one({"sar_path": corpus.notes["nan_chip"]})
    assert sample.sar_stats["nonfinite_fraction"] == pytest.approx(1.0)
    assert math.isnan(sample.sar_stats["mean"])


def test_fusar_png_in_tiff_is_read_by_content_and_bad_rows_leave_chips_without_meta(pristine, tmp_path):
    corpus = malformed.fusar(pristine["fusar"], tmp_path)
    importer = importer_for("fusar", corpus.root)
    samples = {s.chip_id: s for s in ingest(importer)}
    png = samples[Path(corpus.notes["png_chip"]).stem]
    assert (png.metadata.width, png.metadata.height) == malformed.PNG_SHAPE
    escaped = samples[corpus.notes["escaped_chip"]]
    assert escaped.ground_truth.label == Path(escaped.sar_path).parts[-3]  # label from the folder, not the CSV
    assert png.has_meta is False  # its row had a bad MMSI and was ignored
    lines = [p.path for p in importer.problems if "meta.csv line" in p.path]
    assert len(lines) == 2
    assert samples[corpus.notes["duplicate_chip"]].mmsi == corpus.notes["duplicate_chip_mmsi"]
    assert importer.get_dataset_info()["duplicate_meta_rows"] == 1


def test_whu_label_values_outside_the_classes_reported_once_per_tile(pristine, tmp_path):
    import tifffile

    root = malformed.copy(pristine["whu_opt_sar"], tmp_path / "whu")
    label_path = sorted((root / "lbl").glob("*.tif"))[0]
    label = tifffile.imread(str(label_path))
    label[:5, :5] = 255
    tifffile.imwrite(str(label_path), label)
    importer = importer_for("whu_opt_sar", root)
    samples = ingest(importer)
    mine = [p for p in importer.problems if p.path == str(label_path)]
    assert len(mine) == 1 and "255: 25 px" in mine[0].reason
    first = next(s for s in samples if s.tile_id == label_path.stem and s.window[:2] == [0, 0])
    assert first.invalid_label_pixels == 25


def test_fusar_meta_row_over_the_csv_field_limit_is_one_problem(pristine, tmp_path):
    root = malformed.copy(pristine["fusar"], tmp_path / "fusar")
    meta = root / "meta.csv"
    rows = meta.read_bytes().split(b"\r\n")
    rows.insert(2, b"Ship_C99S01N0001\t" + b"9" * 200_000 + b"\t1\t1\tDH\t1\t1\t1\tCargo\\Other")
    meta.write_bytes(b"\r\n".join(rows))
    importer = importer_for("fusar", root)
    samples = ingest(importer)
    assert len(samples) == len(list(root.rglob("*.tiff")))
    assert [p.path for p in importer.problems] == [f"{meta} line 3"]
    assert "field larger than field limit" in importer.problems[0].reason
    assert sum(s.has_meta for s in samples) == len(samples)  # the rows after the bad one were still read


def test_decompression_bomb_is_refused_naming_the_file(pristine, tmp_path):
    from sardata import sarimage

    bomb = tmp_path / "bomb.png"
    malformed.png_bomb(bomb)
    with pytest.raises(sarimage.SarReadError, match="bomb.png"):
        sarimage.read_image(bomb)
    root = malformed.copy(pristine["fusar"], tmp_path / "fusar")
    chip = sorted(root.rglob("*.tiff"))[0]
    malformed.png_bomb(chip)  # PNG bytes behind .tiff, as the loaders sniff content
    importer = importer_for("fusar", root)
    samples = ingest(importer)
    assert len(samples) == len(list(root.rglob("*.tiff"))) - 1
    assert [p.path for p in importer.problems] == [str(chip)]
    assert "decompressionbomb" in importer.problems[0].reason.lower()


def test_tiff_declaring_a_huge_size_fails_without_allocating_it(tmp_path):
    """A 4 kB file declaring 12000 × 12000 pixels fails naming the file, and the reader does not fill 144 MB of
    memory first (measured in a child process: eight decoding threads doing that would exhaust a small machine)."""
    import subprocess

    bomb = tmp_path / "claims_144MB.tif"
    malformed.tiff_claiming(bomb, 12000, 12000)
    code = (
        "import resource, sys\n"
        "from sardata import sarimage\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    sarimage.read_image(sys.argv[1])\n"
        "except sarimage.SarReadError as e:\n"
        "    print(e)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(bomb)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert out.returncode == 0, out.stderr
    message, grown_mb = out.stdout.strip().splitlines()
    assert "claims_144MB.tif: cannot decode tiff" in message
    assert int(grown_mb) < 50, f"peak memory grew by {grown_mb} MB reading a 4 kB file"


def _coco_train(root: Path) -> Path:
    return root / "BBox_SSDD" / "coco_style" / "annotations" / "train.json"


@pytest.mark.parametrize(
    "damage", ["annotation_not_an_object", "image_id_a_list", "images_not_a_list", "nan_bbox", "bad_segmentation"]
)
def test_ssdd_coco_json_of_the_wrong_shape_is_reported_not_fatal(pristine, tmp_path, damage):
    import json

    root = malformed.copy(pristine["ssdd"], tmp_path / "ssdd")
    path = _coco_train(root)
    data = json.loads(path.read_text())
    n_train = len(data["images"])
    if damage == "annotation_not_an_object":
        data["annotations"].append("garbage")
    elif damage == "image_id_a_list":
        data["annotations"].append(dict(data["annotations"][0], image_id=[1]))
    elif damage == "images_not_a_list":
        data["images"] = 5
    elif damage == "nan_bbox":
        data["annotations"].append(dict(data["annotations"][0], id=10_000, bbox=[float("nan"), 1, 5, 5]))
    else:
        data["annotations"].append(dict(data["annotations"][0], id=10_000, segmentation=[[1, "a", 3, 4, 5, 6]]))
    path.write_text(json.dumps(data))
    importer = importer_for("ssdd", root, annotation_source="coco")
    samples = ingest(importer)
    assert any(p.path == str(path) for p in importer.problems)
    for sample in samples:
        for detection in sample.ground_truth.detections:
            assert np.isfinite(detection.bounding_box).all()
    total = len(list((root / "BBox_SSDD" / "coco_style" / "images").glob("t*/*.jpg")))
    test_only = total - n_train - len(list((root / "BBox_SSDD" / "coco_style" / "images").glob("test_*/*.jpg")))
    assert len(samples) == (test_only if damage == "images_not_a_list" else test_only + n_train)


def test_sar_aircraft_split_list_that_is_not_text_is_reported(pristine, tmp_path):
    root = malformed.copy(pristine["sar_aircraft"], tmp_path / "aircraft")
    split_list = root / "ImageSets" / "Main" / "test.txt"
    split_list.write_bytes(b"\xff\xfe\x00garbage\n../../etc/passwd\n")
    importer = importer_for("sar_aircraft", root)
    samples = ingest(importer)
    assert len(samples) == len(list((root / "JPEGImages").glob("*.jpg")))
    assert any(p.path == str(split_list) for p in importer.problems)


# --------------------------------------------------------------------------------------------- archives


@pytest.mark.parametrize(
    "evil",
    ["../escaped.txt", "dataset/../../escaped.txt", "/abs/escaped.txt", "..\\escaped.txt", "C:/escaped.txt"],
)
def test_safe_extract_refuses_escaping_members_and_writes_nothing(tmp_path, evil):
    archive = malformed.escaping_zip(tmp_path / "evil.zip", evil)
    target = tmp_path / "out" / "data"
    with pytest.raises(UnsafeArchiveError, match="evil.zip"):
        safe_extract(archive, target)
    assert not target.exists()
    assert not (tmp_path / "out" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()
    assert not list((tmp_path / "out").glob(".*sardata-tmp*")) if (tmp_path / "out").exists() else True


def test_safe_extract_refuses_symlinks_and_extracts_good_archives(tmp_path):
    with pytest.raises(UnsafeArchiveError, match="symbolic link"):
        safe_extract(malformed.symlink_zip(tmp_path / "link.zip"), tmp_path / "a")
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("dataset/readme.txt", "ok")
    out = safe_extract(good, tmp_path / "b")
    assert (out / "dataset" / "readme.txt").read_text() == "ok"
    with pytest.raises(FileExistsError):
        safe_extract(good, tmp_path / "b")


def test_safe_extract_truncated_zip_is_a_clear_error(tmp_path):
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("dataset/readme.txt", "ok" * 1000)
    malformed.truncate(good, keep=0.5)
    with pytest.raises(BadArchiveError, match="good.zip"):
        safe_extract(good, tmp_path / "c")
    assert not (tmp_path / "c").exists()


# --------------------------------------------------------------------------------------------- downstream stages


def test_extraction_gives_nan_rows_for_unreadable_images(tmp_path):
    from PIL import Image

    from sardata.embed.extract import extract_features
    from test_interruption import small_random_discriminator

    paths = []
    for i in range(4):
        path = tmp_path / f"chip_{i}.png"
        Image.fromarray(np.full((20, 20), 40 * i, dtype=np.uint8)).save(path)
        paths.append(str(path))
    malformed.truncate(Path(paths[1]), keep=0.4)
    malformed.zero_bytes(Path(paths[2]))
    with pytest.warns(UserWarning, match="could not be read"):
        result = extract_features(paths, model="dcgan", checkpoint=small_random_discriminator(tmp_path / "d.pt"),
                                  batch_size=2, num_workers=0, cache_dir=tmp_path / "cache", device="cpu",
                                  progress=False)
    assert sorted(result.failed_ids) == sorted(paths[1:3])
    assert np.isfinite(result.features[[0, 3]]).all() and np.isnan(result.features[[1, 2]]).all()


def test_extraction_recomputes_a_damaged_cache_shard(tmp_path):
    from PIL import Image

    from sardata.embed.extract import extract_features
    from test_interruption import small_random_discriminator

    paths = []
    for i in range(4):
        path = tmp_path / f"chip_{i}.png"
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (20, 20), dtype=np.uint8)).save(path)
        paths.append(str(path))
    options = dict(model="dcgan", checkpoint=small_random_discriminator(tmp_path / "d.pt"), batch_size=2,
                   num_workers=0, cache_dir=tmp_path / "cache", device="cpu", progress=False)
    first = extract_features(paths, **options).features
    shards = sorted((tmp_path / "cache").rglob("shard-*.npz"))
    assert len(shards) == 2
    malformed.truncate(shards[0], keep=0.5)  # damaged behind our back (disk full, a bad copy)
    with pytest.warns(UserWarning, match="unreadable feature shard"):
        again = extract_features(paths, **options).features
    np.testing.assert_allclose(again, first, rtol=1e-5, atol=1e-6)


def test_export_of_a_view_whose_image_vanished_fails_cleanly(tmp_path, pristine, fo_dataset_name):
    import exporters
    import sardata

    root = malformed.copy(pristine["ssdd"], tmp_path / "ssdd")
    dataset = sardata.load("ssdd", root, name=fo_dataset_name, progress=False)
    gone = Path(dataset.first().filepath)
    gone.unlink()
    out = tmp_path / "export"
    with pytest.raises(Exception, match=gone.name):
        exporters.export_view(dataset, out, "coco")
    assert not out.exists() and list(tmp_path.glob(".export*")) == []


def _tiny_coco(root: Path, file_name: str, bbox) -> Path:
    import json

    from PIL import Image

    (root / "images" / "train").mkdir(parents=True)
    Image.fromarray(np.full((32, 32), 9, dtype=np.uint8)).save(root / "images" / "train" / "a.png")
    Image.fromarray(np.full((32, 32), 9, dtype=np.uint8)).save(root / "outside.png")
    images = [{"id": 1, "file_name": "a.png", "width": 32, "height": 32},
              {"id": 2, "file_name": file_name, "width": 32, "height": 32}]
    annotations = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": bbox, "area": 1, "iscrowd": 0},
                   {"id": 2, "image_id": 1, "category_id": 1, "bbox": [2, 2, 8, 8], "area": 64, "iscrowd": 0}]
    (root / "annotations").mkdir()
    (root / "annotations" / "train.json").write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "ship"}]}))
    return root


def test_coco_training_data_refuses_file_names_escaping_the_export(tmp_path):
    from sardata.train.coco_data import CocoDetection

    root = _tiny_coco(tmp_path / "coco", "../../outside.png", [1, 1, 5, 5])
    try:
        dataset = CocoDetection(root, "train")
    except ValueError as e:
        assert "outside.png" in str(e)
        return
    assert [image["file_name"] for image in dataset.images] == ["a.png"]


def test_coco_training_data_drops_nan_boxes(tmp_path):
    from sardata.train.coco_data import CocoDetection

    root = _tiny_coco(tmp_path / "coco", "a.png", [float("nan"), 1, 5, 5])
    _, target = CocoDetection(root, "train")[0]
    assert torch_isfinite_all(target["boxes"]) and len(target["boxes"]) == 1


def torch_isfinite_all(tensor) -> bool:
    import torch

    return bool(torch.isfinite(tensor).all())


def test_checkpoints_with_code_in_them_are_refused(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"model": Evil()}))
    from sardata.checkpoints import load_checkpoint  # every trainer and the embedders read through it
    with pytest.raises(ValueError, match="evil.pth"):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


def test_export_split_values_cannot_escape_the_export_directory(tmp_path, pristine, fo_dataset_name):
    import exporters
    import sardata

    dataset = sardata.load("ssdd", pristine["ssdd"], name=fo_dataset_name, progress=False)
    sample = dataset.first()
    sample["split"] = "../../../escaped"
    sample.save()
    out = tmp_path / "a" / "b" / "coco"
    try:
        exporters.export_view(dataset, out, "coco")
    except ValueError as e:
        assert "escaped" in str(e)
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and out not in p.parents]
    assert outside == []

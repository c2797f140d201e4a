"""The ingest write path: sample documents equal FiftyOne's, the batch import equals ``add_samples``, the statistics
from the histogram equal the generic ones, and a killed ingest leaves no half dataset under its name."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from bson import ObjectId

import fiftyone as fo
import fiftyone.utils.data as foud
import sardata.datasets as sds
from sardata import sarimage
from sardata.datasets import _docs, _voc
from sardata.datasets.fusar import FUSARShipImporter
from sardata.datasets.ssdd import SSDDImporter
from sardata.synth import synthesize
from sardata.synth import ssdd as synth_ssdd

from jobs import kill_when, start


@pytest.fixture(scope="module")
def ssdd_root(tmp_path_factory) -> Path:
    return synth_ssdd.generate(tmp_path_factory.mktemp("ssdd"), n=14, seed=5)


def _items(son) -> list:
    return [(k, _items(v) if isinstance(v, dict) else v) for k, v in son.items()]


def test_documents_are_what_fiftyone_classes_store():
    detection = fo.Detection(label="ship", bounding_box=[0.1, 0.2, 0.3, 0.4], difficult=False, clipped=True)
    doc = _docs.detection("ship", [0.1, 0.2, 0.3, 0.4], difficult=False, clipped=True)
    doc["_id"] = detection._id
    assert _items(doc) == _items(detection.to_mongo())  # same keys in the same order
    assert _items(_docs.detections([doc])) == _items(fo.Detections(detections=[detection]).to_mongo())

    points = [[[0.1, 0.2], [0.3, 0.2], [0.3, 0.5]]]
    polyline = fo.Polyline(label="ship", points=points, closed=True, filled=False, theta=12.5)
    doc = _docs.polyline("ship", points, True, False, theta=12.5)
    doc["_id"] = polyline._id
    assert _items(doc) == _items(polyline.to_mongo())
    assert _items(_docs.polylines([doc])) == _items(fo.Polylines(polylines=[polyline]).to_mongo())

    metadata = fo.ImageMetadata(width=640, height=480, num_channels=3, size_bytes=1234)
    assert _items(_docs.image_metadata(640, 480, 3, 1234)) == _items(metadata.to_mongo())
    stats = {"mean": 2.5, "enl": float("inf"), "min": 0.0}
    assert _items(_docs.dynamic_document(**stats)) == _items(fo.DynamicEmbeddedDocument(**stats).to_mongo())

    sample = fo.Sample(filepath="/data/x/../a.jpg", tags=["t"], metadata=metadata, split=None, image_id="000001")
    expected = {k: v for k, v in sample.to_mongo_dict().items() if v is not None}
    doc = _docs.sample("/data/x/../a.jpg", tags=["t"], metadata=_docs.image_metadata(640, 480, 3, 1234), split=None,
                       image_id="000001")
    assert 0.999 <= doc.pop("_rand") < 1.0 and expected.pop("_rand")
    assert _items(doc) == _items(expected)  # filepath normalised, None fields omitted
    assert isinstance(_docs.detection("a", [0, 0, 1, 1])["_id"], ObjectId)


def _stored(dataset) -> list[dict]:
    skip = {"_id", "_rand", "_dataset_id", "created_at", "last_modified_at"}

    def scrub(value):
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items() if k not in skip}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    return [scrub(d) for d in dataset._sample_collection.find({}, sort=[("_id", 1)])]


def _schema(dataset) -> dict:
    return {k: (type(f).__name__, getattr(getattr(f, "document_type", None), "__name__", None),
                type(getattr(f, "field", None)).__name__)
            for k, f in dataset.get_field_schema(flat=True).items()}


@pytest.mark.parametrize("make", [
    lambda root, _: SSDDImporter(root),  # documents (all label kinds, some images without labels in a variant)
    lambda _, fusar: FUSARShipImporter(fusar),  # fo.Sample objects, converted by the base
], ids=["ssdd-documents", "fusar-samples"])
def test_batch_import_stores_what_add_samples_stores(ssdd_root, tmp_path_factory, make):
    fusar = synthesize("fusar", tmp_path_factory.mktemp("fusar"), n=6)
    batch, reference = fo.Dataset(), fo.Dataset()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            batch.add_importer(make(ssdd_root, fusar), tags="imported", progress=False)
            importer = make(ssdd_root, fusar)
            importer.setup()
            samples = list(importer)  # iterating yields fo.Sample objects: FiftyOne's own add path below
            importer.close()
        assert all(isinstance(s, fo.Sample) for s in samples)
        for sample in samples:
            sample.tags.append("imported")
        reference.add_samples(samples, progress=False)
        foud.parse_dataset_info(reference, importer.get_dataset_info())  # what add_importer does after the samples
        assert len(batch) == len(reference) > 5
        assert _schema(batch) == _schema(reference)
        assert _stored(batch) == _stored(reference)
        assert (batch.info, batch.default_classes, batch.default_mask_targets) == (
            reference.info, reference.default_classes, reference.default_mask_targets)
        assert "imported" in batch.first().tags and batch.first().to_dict() is not None  # loads back as a sample
    finally:
        batch.delete()
        reference.delete()


def test_histogram_statistics_equal_the_generic_ones(real_data, ssdd_root):
    paths = [real_data / "ssdd/BBox_SSDD/voc_style/JPEGImages_train/000006.jpg",
             *sorted((ssdd_root / "BBox_SSDD/voc_style/JPEGImages_train").glob("*.jpg"))[:3]]
    for path in paths:
        counts, size, channels = sarimage.read_gray_histogram(path)
        gray, gray_channels = sarimage.read_gray_jpeg(path)
        assert size == (gray.shape[1], gray.shape[0]) and channels == gray_channels and counts.sum() == gray.size
        fast = _voc.histogram_speckle_stats(counts).to_dict()
        assert fast == pytest.approx(sarimage.speckle_stats(gray).to_dict(), rel=1e-9)
        assert fast == _voc.uint8_speckle_stats(gray).to_dict()
    truncated = Path(paths[1]).read_bytes()
    bad = ssdd_root.parent / "truncated.jpg"
    bad.write_bytes(truncated[: len(truncated) // 2])
    with pytest.raises(sarimage.SarReadError, match="truncated.jpg: cannot decode jpeg"):
        sarimage.read_gray_histogram(bad)


def test_voc_files_with_a_dtd_still_go_through_defusedxml(tmp_path):
    plain = tmp_path / "plain.xml"
    plain.write_bytes(b"<annotation><size><width>4</width><height>3</height></size></annotation>")
    assert _voc._without_dtd(plain.read_bytes()) and _voc.parse_voc_xml(plain).width == 4
    bomb = tmp_path / "bomb.xml"
    bomb.write_bytes(b'<!DOCTYPE a [<!ENTITY x "xx"><!ENTITY y "&x;&x;">]><annotation><filename>&y;</filename>'
                     b"</annotation>")
    with pytest.raises(_voc.VOCParseError, match="bomb.xml: malformed XML .EntitiesForbidden"):
        _voc.parse_voc_xml(bomb)
    for data in ('<?xml version="1.0" encoding="cp037"?><annotation/>'.encode(), "<annotation/>".encode("utf-16"),
                 b"<annotation><!-- note --></annotation>"):
        assert not _voc._without_dtd(data)  # another encoding, NUL bytes, a comment: the defusedxml path


def test_failed_overwrite_keeps_the_previous_dataset(ssdd_root, fo_dataset_name, monkeypatch):
    first = sds.load("ssdd", ssdd_root, name=fo_dataset_name, progress=False)
    first_id, count = first._doc.id, len(first)
    built = []

    def failing_build(self, record, _build=SSDDImporter._build_sample):
        if len(built) == 6:
            raise KeyboardInterrupt  # not caught per file: the whole ingest stops, like a Ctrl-C
        built.append(record)
        return _build(self, record)

    monkeypatch.setattr(SSDDImporter, "_build_sample", failing_build)
    monkeypatch.setattr(SSDDImporter, "INSERT_BATCH", 2)
    with pytest.raises(KeyboardInterrupt):
        sds.load("ssdd", ssdd_root, name=fo_dataset_name, overwrite=True, progress=False, num_workers=1)
    kept = fo.load_dataset(fo_dataset_name)
    assert kept._doc.id == first_id and len(kept) == count and kept.persistent
    assert not fo.list_datasets(f"{fo_dataset_name}{sds.STAGING_INFIX}*")  # the staging dataset was deleted


KILLED_INGEST = """
    import sys, time
    from pathlib import Path
    import sardata.datasets as sds
    from sardata.datasets.ssdd import SSDDImporter

    root, name = sys.argv[1], sys.argv[2]
    build = SSDDImporter._build_sample

    def slow_build(self, record):  # one image at a time, slowly: the kill lands mid-ingest
        time.sleep(0.15)
        return build(self, record)

    SSDDImporter._build_sample, SSDDImporter.INSERT_BATCH = slow_build, 2
    sds.load("ssdd", root, name=name, progress=False, num_workers=1)
"""


def test_killed_ingest_leaves_no_half_dataset_and_the_rerun_is_whole(ssdd_root, fo_dataset_name, tmp_path):
    proc = start(tmp_path, "ingest", KILLED_INGEST, ssdd_root, fo_dataset_name)
    pattern = f"{fo_dataset_name}{sds.STAGING_INFIX}*"

    def staged() -> int:
        names = fo.list_datasets(pattern)
        return len(fo.load_dataset(names[0])) if names else 0

    kill_when(proc, lambda: staged() >= 4, tmp_path / "ingest.log", timeout=90)  # some batches are in the database
    assert not fo.dataset_exists(fo_dataset_name)  # nothing under the target name
    leftover = fo.list_datasets(pattern)
    assert len(leftover) == 1 and 4 <= len(fo.load_dataset(leftover[0])) < 14

    dataset = sds.load("ssdd", ssdd_root, name=fo_dataset_name, progress=False)  # the rerun starts clean
    image_ids = dataset.values("image_id")
    assert len(image_ids) == len(set(image_ids)) == 14 and dataset.persistent
    assert dataset.info["ingest_problems"] == [] and dataset.info["ingest_labels"]["ship"]["kept"] > 0
    assert fo.list_datasets(pattern) == []  # the killed run's staging dataset is gone


def test_only_staging_datasets_of_dead_local_processes_are_removed(fo_dataset_name):
    import socket

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    owners = {"dead": f"{dead.pid}-ab12@{host}", "live": f"{os.getpid()}-cd34@{host}", "remote": f"1-ef56@not-{host}"}
    made = {kind: fo.Dataset(f"{fo_dataset_name}{sds.STAGING_INFIX}{owner}") for kind, owner in owners.items()}
    try:
        assert sds.remove_stale_ingests(fo_dataset_name) == [made["dead"].name]
        assert sorted(fo.list_datasets(f"{fo_dataset_name}{sds.STAGING_INFIX}*")) == sorted(
            [made["live"].name, made["remote"].name])
    finally:
        for dataset in made.values():
            if fo.dataset_exists(dataset.name):
                dataset.delete()

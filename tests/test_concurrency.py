"""Concurrent ingests: two ``sardata ingest`` processes at once, into different datasets, both succeed and are whole.

The second case ingests the *same* roots twice at the same time, so both processes write the same cached files
(display PNGs, WHU-OPT-SAR patch TIFFs) concurrently: the atomic writes must keep every file readable.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sardata._io import TMP_MARK

REPO = Path(__file__).resolve().parents[1]
SARDATA = Path(sys.executable).parent / "sardata"


def _ingest(key: str, root: Path, name: str, log: Path) -> subprocess.Popen:
    command = [str(SARDATA), "ingest", key, str(root), "--name", name, "--overwrite"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    return subprocess.Popen(command, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT, cwd=REPO)


def _run_together(jobs: list[tuple[str, Path, str]], tmp_path: Path) -> None:
    procs = [(_ingest(key, root, name, tmp_path / f"{name}.log"), tmp_path / f"{name}.log") for key, root, name in jobs]
    try:
        for proc, log in procs:
            proc.wait(timeout=240)
            assert proc.returncode == 0, log.read_text()[-3000:]
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def names(request):
    import fiftyone as fo

    made = [f"test-concurrency-{request.node.name}-{i}"[:100] for i in range(2)]
    yield made
    for name in made:
        if fo.dataset_exists(name):
            fo.delete_dataset(name)


def _reload(name: str):
    import fiftyone as fo

    dataset = fo.load_dataset(name)
    dataset.reload()
    return dataset


@pytest.mark.skipif(not SARDATA.exists(), reason="the sardata console script is not installed")
def test_two_ingests_of_different_datasets_at_once(tmp_path, names):
    from sardata.synth import synthesize

    ssdd = synthesize("ssdd", tmp_path / "ssdd", n=8)
    fusar = synthesize("fusar", tmp_path / "fusar", n=8)
    _run_together([("ssdd", ssdd, names[0]), ("fusar", fusar, names[1])], tmp_path)

    truth = json.loads((ssdd / "synth_truth.json").read_text())
    ssdd_images = len({p.stem for p in (ssdd / "BBox_SSDD" / "voc_style").glob("JPEGImages_*/*.jpg")})
    first, second = _reload(names[0]), _reload(names[1])
    assert len(first) == ssdd_images and first.info["ingest_problems"] == []
    assert len(second) == len(list(fusar.rglob("*.tiff"))) and second.info["ingest_problems"] == []
    assert set(first.distinct("source")) == {"ssdd"} and set(second.distinct("source")) == {"fusar"}
    assert truth  # the generator wrote its ground truth: the roots are complete datasets
    for name, dataset in zip(names, (first, second)):  # each run printed its own summary
        printed = re.search(r"samples\s*\S\s*(\d+)", (tmp_path / f"{name}.log").read_text())
        assert printed and int(printed[1]) == len(dataset)


@pytest.mark.skipif(not SARDATA.exists(), reason="the sardata console script is not installed")
def test_same_root_into_two_datasets_at_once_shares_the_caches_safely(tmp_path, names):
    import tifffile
    from PIL import Image

    from sardata.synth import synthesize

    whu = synthesize("whu_opt_sar", tmp_path / "whu", n=2)
    _run_together([("whu_opt_sar", whu, names[0]), ("whu_opt_sar", whu, names[1])], tmp_path)

    first, second = _reload(names[0]), _reload(names[1])
    patch = first.info.get("patch_size", 256)
    expected = 0
    for label in sorted((whu / "lbl").glob("*.tif")):
        h, w = tifffile.TiffFile(str(label)).series[0].shape[:2]
        expected += (h // patch) * (w // patch)
    assert expected > 0
    assert len(first) == len(second) == expected
    assert first.info["ingest_problems"] == [] and second.info["ingest_problems"] == []
    assert sorted(first.values("sar_path")) == sorted(second.values("sar_path"))  # the same cached patches
    for sample in first:  # every shared file is whole: written once, atomically, whoever won the race
        assert tifffile.imread(sample.sar_path).shape[:2] == (patch, patch)
        assert np.asarray(Image.open(sample.ground_truth.mask_path)).shape == (patch, patch)
        assert np.asarray(Image.open(sample.filepath)).shape[:2] == (patch, patch)
    leftovers = [p for p in Path(first.first().sar_path).parent.iterdir() if TMP_MARK in p.name]
    assert not leftovers  # no temporary file left behind


@pytest.mark.skipif(not SARDATA.exists(), reason="the sardata console script is not installed")
def test_two_ingests_racing_for_one_name_one_wins_whole(tmp_path, names):
    import fiftyone as fo

    from sardata.synth import synthesize

    root = synthesize("sar_aircraft", tmp_path / "aircraft", n=6)
    name = names[0]
    logs = [tmp_path / f"race{i}.log" for i in range(2)]
    procs = [subprocess.Popen([str(SARDATA), "ingest", "sar_aircraft", str(root), "--name", name],
                              env={**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"},
                              stdout=open(log, "wb"), stderr=subprocess.STDOUT, cwd=REPO) for log in logs]
    try:
        codes = [proc.wait(timeout=240) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    outputs = [log.read_text() for log in logs]
    assert sorted(codes) == [0, 1], outputs  # exactly one ingest owns the name
    loser = outputs[codes.index(1)]
    assert "Traceback" not in loser and "already exists" in loser, loser[-1500:]  # a clear error, not a crash
    assert fo.dataset_exists(name)
    assert len(_reload(name)) == len(list((root / "JPEGImages").glob("*.jpg")))

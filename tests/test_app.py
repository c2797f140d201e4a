"""`sardata app`: the FiftyOne App served from a CLI subprocess answers HTTP, serves the dataset, and its server
process (a fresh process) answers "sort by similarity" with the FAISS backend."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def _post(url, payload, timeout=60):
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read().decode())


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    import fiftyone as fo
    from PIL import Image

    import sardata.index as sindex

    name = "test-app-served"
    if fo.dataset_exists(name):
        fo.delete_dataset(name)
    ds = fo.Dataset(name)
    ds.persistent = True
    img_dir = tmp_path_factory.mktemp("app_images")
    rng = np.random.default_rng(0)
    samples = []
    for i in range(8):
        path = img_dir / f"chip{i}.png"
        Image.fromarray((rng.random((48, 48)) * 255).astype(np.uint8)).save(path)
        samples.append(fo.Sample(filepath=str(path), tags=["inshore" if i < 3 else "offshore"]))
    ds.add_samples(samples)
    emb = rng.standard_normal((8, 16)).astype(np.float32)
    emb[5] = emb[2] + 0.001
    ds.set_values("dcgan_embedding", [e.tolist() for e in emb])
    sindex.compute_index(ds, brain_key="faiss_dcgan")

    port = _free_port()
    # the CLI process and its App server inherit this session's database (FIFTYONE_PRIVATE_DATABASE_PORT etc.)
    proc = subprocess.Popen(
        [sys.executable, "-c", "from sardata.cli import main; main()", "app", name, "--port", str(port), "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ), start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 150
    while True:
        try:
            if _get(base + "/fiftyone", timeout=2)[0] == 200:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            out = proc.stdout.read() if proc.poll() is not None else "(still running)"
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"App did not come up on {base}: {out[-3000:]}")
        time.sleep(1)
    yield base, ds
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: session.wait() returns and the session closes its server
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the group we started: CLI and App server
    except ProcessLookupError:
        pass
    fo.delete_dataset(name)


def test_app_serves_html_version_and_dataset(served):
    import fiftyone as fo

    base, ds = served
    status, html = _get(base + "/")
    assert status == 200 and "<html" in html.lower()
    version = json.loads(_get(base + "/fiftyone")[1])
    assert version["version"] == fo.__version__
    data = _post(base + "/graphql", {
        "query": "query Q($name: String!) { dataset(name: $name) { name brainMethods { key config { cls method } } } }",
        "variables": {"name": ds.name},
    })["data"]["dataset"]
    assert data["name"] == ds.name
    assert {"key": "faiss_dcgan", "config": {"cls": "sardata.index.faiss.FaissSimilarityConfig", "method": "faiss"}} \
        in data["brainMethods"]


def test_app_server_sorts_by_similarity_with_faiss(served):
    base, ds = served
    ids = ds.values("id")
    expected = ds.sort_by_similarity(ids[2], k=3, brain_key="faiss_dcgan").values("id")
    assert set(expected[:2]) == {ids[2], ids[5]}
    query = """
    query S($dataset: String!, $ext: BSON) {
      samples(dataset: $dataset, view: [], first: 10, extendedStages: $ext) {
        ... on SampleItemStrConnection { edges { node { ... on ImageSample { id } } } }
      }
    }"""
    ext = {"fiftyone.core.stages.SortBySimilarity": {"query": ids[2], "k": 3, "brain_key": "faiss_dcgan"}}
    reply = _post(base + "/graphql", {"query": query, "variables": {"dataset": ds.name, "ext": ext}})
    assert not reply.get("errors"), reply
    got = [edge["node"]["id"] for edge in reply["data"]["samples"]["edges"]]
    assert got == expected


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium for the headless screenshot")
def test_app_grid_screenshot(served, tmp_path):
    base, ds = served
    png = tmp_path / "grid.png"
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,800", "--virtual-time-budget=20000",
        f"--screenshot={png}", f"{base}/datasets/{ds.name}",
    ]
    subprocess.run(cmd, capture_output=True, timeout=180)
    assert png.exists() and png.stat().st_size > 10_000
    from PIL import Image

    with Image.open(png) as im:
        assert im.size == (1280, 800)
        assert len(set(im.convert("L").getdata())) > 16  # rendered, not a blank page

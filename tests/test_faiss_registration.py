"""``import sardata`` alone makes fiftyone-brain's ``backend="faiss"`` work, in a fresh process, and stays cheap."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

_SCRIPT = r"""
import sys
order = sys.argv[1]
if order == "brain-first":
    import fiftyone.brain as fob
import sardata
if order == "sardata-first":
    assert "fiftyone" not in sys.modules, "import sardata imported fiftyone"
    import fiftyone.brain as fob
import fiftyone as fo
import numpy as np

rng = np.random.default_rng(0)
emb = rng.normal(size=(30, 8)).astype(np.float32)
ds = fo.Dataset()
ds.add_samples([fo.Sample(filepath=f"/nonexistent/{i}.png") for i in range(len(emb))])
ids = ds.values("id")
fob.compute_similarity(ds, embeddings=emb, backend="faiss", brain_key="k", progress=False)
info = ds.get_brain_info("k")
assert type(info.config).__module__ == "sardata.index.faiss", type(info.config)

unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
expected = [ids[i] for i in np.argsort(-(unit @ unit[7]), kind="stable")[:5]]
got = ds.sort_by_similarity(ids[7], k=5, brain_key="k").values("id")
assert got == expected, (got, expected)
ds.delete()
print("OK", order)
"""


@pytest.mark.parametrize("order", ["sardata-first", "brain-first"])
def test_import_sardata_registers_faiss_in_a_fresh_process(order):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    # no brain_config.json, no FIFTYONE_BRAIN_* variables: only `import sardata` can make "faiss" known
    env = {k: v for k, v in env.items() if not k.startswith("FIFTYONE_BRAIN_")}
    env["FIFTYONE_BRAIN_CONFIG_PATH"] = str(REPO / "does-not-exist-brain_config.json")
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, order], env=env, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"OK {order}" in proc.stdout


def test_builtin_and_listed_backends_are_kept():
    code = ("import sardata, fiftyone.brain as fob; b = fob.brain_config.similarity_backends; "
            "print(sorted(b)); assert 'faiss' in b and 'sklearn' in b, b; "
            "assert b['faiss']['config_cls'] == 'sardata.index.faiss.FaissSimilarityConfig'")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIFTYONE_BRAIN_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]

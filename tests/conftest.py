"""Test session setup: one private MongoDB, cache and artifact home for the whole session.

FiftyOne attaches to *any* FiftyOne mongod already running on the machine (a user's App, another test session), so
pointing ``FIFTYONE_DATABASE_DIR`` elsewhere is not enough to isolate the tests. The session therefore starts its own
mongod (the binary FiftyOne ships) on a free loopback port with a temporary data directory, and points
``FIFTYONE_DATABASE_URI`` at it before ``fiftyone`` is imported anywhere (this conftest is loaded before any test
module). Subprocesses started by tests inherit the variables and share the same database. The mongod is stopped and
its directory removed when the session ends.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="sardata-tests-"))
os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
os.environ["FIFTYONE_DATABASE_DIR"] = str(_SESSION_DIR / "db")
os.environ["FIFTYONE_DEFAULT_DATASET_DIR"] = str(_SESSION_DIR / "fiftyone")
os.environ["SARDATA_CACHE"] = str(_SESSION_DIR / "cache")
os.environ["SARDATA_HOME"] = str(_SESSION_DIR / "home")
os.environ["YOLO_CONFIG_DIR"] = str(_SESSION_DIR / "ultralytics")
os.environ["MPLBACKEND"] = "Agg"

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Real format samples of the datasets (never copied into the repository).
REAL_DATA = REPO_ROOT.parent / "shared" / "data" / "real"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_mongod() -> subprocess.Popen | None:
    """Starts a private mongod and sets FIFTYONE_DATABASE_URI; None when an external URI was given."""
    if os.environ.get("SARDATA_TEST_DATABASE_URI"):
        os.environ["FIFTYONE_DATABASE_URI"] = os.environ["SARDATA_TEST_DATABASE_URI"]
        return None
    from importlib.util import find_spec

    spec = find_spec("fiftyone")  # locate the shipped mongod without importing fiftyone itself
    mongod = Path(spec.origin).parent / "db" / "bin" / "mongod"
    db_dir = _SESSION_DIR / "db"
    db_dir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    proc = subprocess.Popen(
        [str(mongod), "--dbpath", str(db_dir), "--port", str(port), "--bind_ip", "127.0.0.1", "--nounixsocket",
         "--logpath", str(db_dir / "mongod.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"test mongod exited with {proc.returncode}; see {db_dir / 'mongod.log'}")
            time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError("test mongod did not start within 60 s")
    os.environ["FIFTYONE_DATABASE_URI"] = f"mongodb://127.0.0.1:{port}"
    return proc


_MONGOD = _start_mongod()


def pytest_sessionfinish(session, exitstatus):
    try:
        import fiftyone.core.odm.database as fod

        fod._disconnect()
    except Exception:
        pass
    if _MONGOD is not None:
        _MONGOD.terminate()
        try:
            _MONGOD.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _MONGOD.kill()
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(f"real samples not found at {REAL_DATA}")
    return REAL_DATA


@pytest.fixture
def fo_dataset_name(request):
    """A unique dataset name, deleted after the test."""
    import fiftyone as fo

    name = f"test-{request.node.name}"[:100]
    if fo.dataset_exists(name):
        fo.delete_dataset(name)
    yield name
    if fo.dataset_exists(name):
        fo.delete_dataset(name)

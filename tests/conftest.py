"""Test session setup: one private FiftyOne database and cache for the whole session.

The environment variables must be set before ``fiftyone`` is imported anywhere, so they are set at import time of
this conftest, which pytest loads before any test module. The database directory is per session (per worker when
run with xdist) and removed afterwards; mongod starts lazily on first access and is shared by all tests.
"""

import os
import shutil
import tempfile
from pathlib import Path

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="sardata-tests-"))
os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ["FIFTYONE_DATABASE_DIR"] = str(_SESSION_DIR / "db")
os.environ["FIFTYONE_DEFAULT_DATASET_DIR"] = str(_SESSION_DIR / "fiftyone")
os.environ["SARDATA_CACHE"] = str(_SESSION_DIR / "cache")
os.environ["SARDATA_HOME"] = str(_SESSION_DIR / "home")
os.environ["MPLBACKEND"] = "Agg"

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Real format samples of the datasets (never copied into the repository).
REAL_DATA = REPO_ROOT.parent / "shared" / "data" / "real"


def _our_mongods():
    """mongod processes serving this session's database directory."""
    try:
        import psutil
    except ImportError:
        return []
    db_dir = os.environ["FIFTYONE_DATABASE_DIR"]
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if proc.info.get("name") == "mongod" and db_dir in cmdline:
            found.append(proc)
    return found


def pytest_sessionfinish(session, exitstatus):
    # FiftyOne attaches to ANY running FiftyOne mongod, so another test session (or the App) may still be using the
    # one this session started: delete its database directory only once that mongod has exited by itself.
    try:
        import fiftyone.core.odm.database as fod

        fod._disconnect()
        if fod._db_service is not None:
            fod._db_service.stop()  # tells the service this client is gone; it stops mongod if no client is left
    except Exception:
        pass
    try:
        import psutil

        _, alive = psutil.wait_procs(_our_mongods(), timeout=10)
    except Exception:
        alive = []
    if alive:
        shutil.rmtree(_SESSION_DIR / "cache", ignore_errors=True)
        shutil.rmtree(_SESSION_DIR / "home", ignore_errors=True)
    else:
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

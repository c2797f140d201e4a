"""Jobs in subprocesses for the kill -9 tests: start a script, SIGKILL it when a condition holds, let a rerun finish.

The subprocess runs with the session's environment (its FiftyOne database and caches, set by conftest) and one
thread.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _env() -> dict:
    # the session's FIFTYONE_DATABASE_DIR/SARDATA_CACHE (set by conftest) are in os.environ; one thread per process
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def start(tmp_path: Path, name: str, code: str, *args) -> subprocess.Popen:
    script = tmp_path / f"{name}.py"
    script.write_text(textwrap.dedent(code))
    log = open(tmp_path / f"{name}.log", "ab")
    return subprocess.Popen([sys.executable, str(script), *map(str, args)], env=_env(), stdout=log, stderr=log,
                            cwd=tmp_path)


def kill_when(proc: subprocess.Popen, trigger, log: Path, timeout: float = 60.0) -> None:
    """SIGKILLs ``proc`` as soon as ``trigger()`` is true; fails if it exits first or the trigger never comes."""
    deadline = time.monotonic() + timeout
    try:
        while not trigger():
            if proc.poll() is not None:
                pytest.fail(f"the job exited (code {proc.returncode}) before the kill trigger:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"no kill trigger within {timeout} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.02)
        assert proc.poll() is None, "the job finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def finish(proc: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    try:
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log.read_text()[-3000:]

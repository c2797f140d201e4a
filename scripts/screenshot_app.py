"""Screenshot of the FiftyOne App on a sardata dataset (grid with scene tags beside the embeddings panel), for the README.

Usage: ``python scripts/screenshot_app.py [DATASET] [--out docs/app.png]`` after ``sardata demo`` (default dataset
``demo-ssdd``). Needs Debian's ``chromium`` (``apt-get install chromium``); it runs headless with no network access.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", nargs="?", default="demo-ssdd")
    parser.add_argument("--out", type=Path, default=Path("docs/app.png"))
    parser.add_argument("--viz-key", default="scenes_viz", help="brain key of the 2-D map (sardata scenes)")
    parser.add_argument("--size", default="1600,900")
    args = parser.parse_args(argv)

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium not found: apt-get install chromium")
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    import fiftyone as fo

    from sardata.cli.index import launch

    port = _free_port()
    session = launch(args.dataset, port=port, browser=False)
    dataset = fo.load_dataset(args.dataset)
    panels = [fo.Panel(type="Samples", pinned=True)]
    if args.viz_key in dataset.list_brain_runs():
        panels.append(fo.Panel(type="Embeddings", state={"brainResult": args.viz_key, "colorByField": "scene.label"}))
    session.spaces = fo.Space(children=panels, orientation="horizontal")
    url = f"http://127.0.0.1:{port}/datasets/{args.dataset}"
    for _ in range(60):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/fiftyone", timeout=2)
            break
        except OSError:
            time.sleep(1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", f"--window-size={args.size}", "--virtual-time-budget=30000",
             f"--screenshot={args.out.resolve()}", url],
            capture_output=True, timeout=300, check=False,
        )
    session.close() if hasattr(session, "close") else None
    if not args.out.exists():
        raise SystemExit(f"no screenshot written to {args.out}")
    print(f"wrote {args.out}")
    return args.out


if __name__ == "__main__":
    main()

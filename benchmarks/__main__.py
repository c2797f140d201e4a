"""``python -m benchmarks``: runs every benchmark, each in its own process, and prints one table.

Each ``benchmarks/<name>.py`` exposes ``run() -> dict`` of figures (ours, the peer measured in the same run, their
ratio). Every benchmark runs in a child process so its peak memory (max RSS of that process) is measured separately.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

from sardata._io import write_json

BENCHMARKS = ["ingest", "validate", "index", "embed", "scenes", "export", "train", "difficulty"]


def _run_one(name: str, timeout: float) -> dict:
    code = (
        "import json, resource, sys; import benchmarks.{0} as m; r = m.run(); "
        "r['peak_rss_mb'] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024); "
        "sys.stdout.write('\\n__RESULT__' + json.dumps(r, default=str) + '\\n')"
    ).format(name)
    env = dict(os.environ, FIFTYONE_DO_NOT_TRACK="true", HF_HUB_OFFLINE="1")
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return {"error": f"timed out after {timeout:.0f} s"}
    elapsed = time.perf_counter() - start
    result: dict = {"wall_s": round(elapsed, 1)}
    for line in stdout.splitlines():
        if line.startswith("__RESULT__"):
            result.update(json.loads(line[len("__RESULT__"):]))
            break
    else:
        result["error"] = (stderr.strip().splitlines() or ["no result"])[-1][:200]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", default=BENCHMARKS, help=f"benchmarks to run (default: all of {BENCHMARKS})")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per benchmark")
    parser.add_argument("--json", help="also write all results to this JSON file")
    args = parser.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    console = Console()
    results = {}
    for name in args.names:
        console.print(f"[bold]running benchmarks/{name}.py ...")
        results[name] = _run_one(name, args.timeout)
    table = Table(title=f"sardata benchmarks — {time.strftime('%Y-%m-%d')} — {platform.machine()}, {os.cpu_count()} cores")
    table.add_column("benchmark")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, result in results.items():
        for key, value in result.items():
            if isinstance(value, float):
                value = f"{value:.3g}"
            table.add_row(name, key, str(value))
    console.print(table)
    if args.json:
        write_json(args.json, results, default=str)
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())

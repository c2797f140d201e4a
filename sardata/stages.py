"""A console rule per stage of a long multi-step run (demo, recipes), with the wall time of each stage."""

from __future__ import annotations

import time

from rich.console import Console


class Stages:
    """Call with a stage name to start it (closing the previous one); :meth:`done` returns ``{stage: seconds}``."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console()
        self.seconds: dict[str, float] = {}
        self._name: str | None = None
        self._t0 = 0.0

    def __call__(self, name: str) -> None:
        self._close()
        self.console.rule(f"[bold cyan]{len(self.seconds) + 1}. {name}")
        self._name, self._t0 = name, time.perf_counter()

    def _close(self) -> None:
        if self._name is not None:
            self.seconds[self._name] = round(time.perf_counter() - self._t0, 1)
            self._name = None

    def done(self) -> dict[str, float]:
        self._close()
        return self.seconds

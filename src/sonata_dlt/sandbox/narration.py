"""What the sandbox tells a person: one line per step as it runs, progress on long steps, and the summary.

Narration goes to stdout and is for people; the structured logs (``sonata_dlt.logs``) go to stderr and to the
processes' log files, for machines.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class StepResult:
    index: int
    name: str
    status: str  # ok | failed | waiting (the API it needs is not on this server yet)
    detail: str
    seconds: float


@dataclass
class Narrator:
    out: TextIO = field(default_factory=lambda: sys.stdout)
    results: list[StepResult] = field(default_factory=list)
    idle: bool = False  # the run is over and the sandbox only serves the console
    _progress_shown: bool = False

    def say(self, text: str) -> None:
        self._end_progress()
        print(text, file=self.out, flush=True)

    def progress(self, label: str, done: int, total: int) -> None:
        """A progress bar redrawn in place on a terminal; every 10 % as plain lines otherwise."""
        if total <= 1:
            return
        if self.out.isatty():
            width = 30
            filled = width * done // total
            print(
                f"\r    {label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
                end="",
                file=self.out,
                flush=True,
            )
            self._progress_shown = done < total
            if done == total:
                print(file=self.out, flush=True)
        elif done == total or done % max(1, total // 10) == 0:
            print(f"    {label}: {done}/{total}", file=self.out, flush=True)

    def _end_progress(self) -> None:
        if self._progress_shown:
            print(file=self.out, flush=True)
            self._progress_shown = False

    def step(self, index: int, name: str, status: str, detail: str, started: float) -> StepResult:
        result = StepResult(index, name, status, detail, time.monotonic() - started)
        self.results.append(result)
        mark = {"ok": "ok ", "failed": "FAIL", "waiting": "wait"}[status]
        self.say(f"[{mark}] {index:>2}. {name:<10} {detail} ({result.seconds:.1f}s)")
        return result


def money(value: float | None, currency: str = "EUR") -> str:
    return "-" if value is None else f"{value:,.2f} {currency}"

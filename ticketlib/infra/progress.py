"""Live progress of a running notebook: units finished, cache hits, elapsed time and an ETA.

A notebook runs in a papermill kernel whose output goes into the notebook, not the terminal. So the
runner names an events file in `TICKETLIB_PROGRESS` before it starts the kernel; every unit that goes
through `cache.Cache.cached` (in the kernel or in a worker process, which inherit the variable)
appends one JSON line to it (`unit_done`). The runner's `Monitor` thread reads the file and shows one
line: a tqdm bar in a terminal, a plain line every `TICKETLIB_PROGRESS_EVERY` seconds (default 60)
elsewhere (CI logs). The total and the ETA come from the units' own timings: the total is the number of
units of the previous record of the same run (the published one in `results/<profile>/`, or the last
local one) when it recorded them, and the time left is the remaining units times the mean seconds of the
units computed so far (cache hits take no time). Without a previous count there is no total and no ETA.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

ENV = "TICKETLIB_PROGRESS"
EVERY_ENV = "TICKETLIB_PROGRESS_EVERY"


def unit_done(hit: bool, seconds: float) -> None:
    """Append one unit's event to the runner's events file (nothing when no runner is listening)."""
    path = os.environ.get(ENV)
    if not path:
        return
    line = json.dumps({"hit": bool(hit), "seconds": round(float(seconds), 3)}) + "\n"
    try:  # one short O_APPEND write per unit: lines from several worker processes do not interleave
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line)
    except OSError:
        pass  # progress is a convenience; a unit never fails for it


@dataclass(frozen=True)
class Units:
    """What the units of a run did so far: how many finished, how many came from the cache, and the seconds
    the computed ones took."""
    done: int = 0
    hits: int = 0
    computed_seconds: float = 0.0

    @property
    def computed(self) -> int:
        return self.done - self.hits

    def as_record(self) -> dict:
        """The record's `units` field."""
        return {"total": self.done, "cached": self.hits, "computed_seconds": round(self.computed_seconds, 1)}


def read_units(path: str | Path) -> Units:
    """The units recorded in an events file so far (a torn last line is skipped)."""
    done = hits = 0
    seconds = 0.0
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return Units()
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        done += 1
        hits += bool(event.get("hit"))
        seconds += 0.0 if event.get("hit") else float(event.get("seconds", 0.0))
    return Units(done, hits, seconds)


def expected_units(params: dict | None, *records: Path) -> int | None:
    """The unit count of the first of `records` that exists, ran these `params` (JSON-equal; None: any) and
    recorded one (a previous run), else None: a record of other params (more seeds, say) counts other units."""
    wanted = None if params is None else json.loads(json.dumps(params, default=str))
    for path in records:
        try:
            record = json.loads(Path(path).read_text())
            total = record.get("units", {}).get("total")
        except (OSError, ValueError, AttributeError):
            continue
        if wanted is not None and record.get("params") != wanted:
            continue
        if isinstance(total, int) and total > 0:
            return total
    return None


def clock(seconds: float) -> str:
    """'1:02:03' or '4:05'."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def seconds_left(units: Units, total: int | None) -> float | None:
    """Remaining units × the mean seconds of the computed ones; None without a total or a computed unit."""
    if total is None or units.computed == 0:
        return None
    return max(total - units.done, 0) * units.computed_seconds / units.computed


def status_line(run: str, units: Units, elapsed: float, total: int | None) -> str:
    """'01_imp: 12/41 units (3 cached), 4:31 elapsed, ~5:10 left'."""
    count = f"{units.done}/{total}" if total else f"{units.done}"
    left = seconds_left(units, total)
    eta = f", ~{clock(left)} left" if left is not None else ""
    return f"{run}: {count} units ({units.hits} cached), {clock(elapsed)} elapsed{eta}"


class Monitor:
    """Shows a run's progress from its events file while the notebook runs (a context manager)."""

    def __init__(self, run: str, events: Path, total: int | None, stream: TextIO = sys.stderr,
                 every: float | None = None, poll: float = 1.0):
        self.run, self.events, self.total, self.stream, self.poll = run, Path(events), total, stream, poll
        self.every = float(os.environ.get(EVERY_ENV, 60)) if every is None else every
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._start = time.perf_counter()
        self._bar = None

    def __enter__(self) -> Monitor:
        self.events.parent.mkdir(parents=True, exist_ok=True)
        self.events.write_text("")
        os.environ[ENV] = str(self.events.resolve())
        if self.tty:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, desc=self.run, file=self.stream, leave=False,
                             bar_format="{desc}: {n_fmt}/{total_fmt} units [{elapsed}] {postfix}")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        os.environ.pop(ENV, None)
        if self._bar is not None:
            self._bar.close()

    def units(self) -> Units:
        return read_units(self.events)

    def _loop(self) -> None:
        last_line = 0.0
        while not self._stop.wait(self.poll):
            units, elapsed = self.units(), time.perf_counter() - self._start
            if self._bar is not None:
                self._bar.n = units.done
                left = seconds_left(units, self.total)
                self._bar.set_postfix_str(f"{units.hits} cached" + (f", ~{clock(left)} left" if left else ""))
            elif elapsed - last_line >= self.every:
                last_line = elapsed
                print(status_line(self.run, units, elapsed, self.total), file=self.stream, flush=True)

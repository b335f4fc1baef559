"""How many CPU cores a run may use, and how to split them between worker processes.

The budget is the cores this process may run on (`os.sched_getaffinity`, not `os.cpu_count`: a
container or `taskset` may allow fewer than the machine has), lowered by `TICKETLIB_CORES` when set.
`make -j N` sets `TICKETLIB_CORES` to its share (cores / N) for each notebook it runs, so parallel
notebooks never oversubscribe: a notebook's workers × threads ≤ its share.
"""
from __future__ import annotations

import os

ENV = "TICKETLIB_CORES"


def machine() -> int:
    """The cores this process may run on (its affinity mask): the one core count of the library, which describes a
    CPU in records and unit metadata and bounds `available`."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def available() -> int:
    """Cores this run may use: the affinity mask, capped by TICKETLIB_CORES."""
    cores = machine()
    share = os.environ.get(ENV, "").strip()
    if share:
        try:
            cores = min(cores, max(1, int(share)))
        except ValueError:
            raise ValueError(f"{ENV} must be a whole number of cores, got {share!r}") from None
    return max(1, cores)


def split(workers: int) -> tuple[int, int]:
    """(worker processes, torch threads per worker): at most one worker per core, threads filling the rest."""
    budget = available()
    workers = max(1, min(workers, budget))
    return workers, max(1, budget // workers)


def make_jobs(makeflags: str | None = None) -> int:
    """The N of `make -jN` this process runs under (from MAKEFLAGS, which make exports to recipes), else 1."""
    import re

    flags = os.environ.get("MAKEFLAGS", "") if makeflags is None else makeflags
    match = re.search(r"(?:^|\s)-j\s*(\d+)", f" {flags}")
    return int(match.group(1)) if match else 1


def share_under_make() -> None:
    """Under `make -jN`, set TICKETLIB_CORES to this run's share of the cores (unless already set), and
    OMP_NUM_THREADS to match so the notebook's own torch threads stay inside it too."""
    if not os.environ.get(ENV):
        jobs = make_jobs()
        if jobs > 1:
            os.environ[ENV] = str(max(1, available() // jobs))
    if os.environ.get(ENV):
        os.environ["OMP_NUM_THREADS"] = str(available())

"""How busy the machine was while something was timed, and the rule that decides whether a timing counts.

**What is measured.** A `Window` brackets a stretch of wall time: its wall seconds, this process's CPU
seconds over it (`time.process_time`: every thread of the process, torch's included), the busy CPU seconds
of the CPUs this process may run on (user + nice + system + irq + softirq + steal, from
`psutil.cpu_times(percpu=True)`, which reads /proc/stat on Linux, or /proc/stat itself without psutil,
restricted to `os.sched_getaffinity`), and the 1-minute load average. From them: the *other processes'*
CPU, in cores' worth, `others_cores = (busy − own) / wall` (steal is another VM's use of our CPUs and
counts as theirs), its share of those CPUs `others_share = others_cores / cores`, and this process's
own cores' worth `own_cores = own / wall`. Windows add (the samples of one form, the forms of one
attempt, the units of one pipeline), so every figure pools exactly.

**The rule** (ours, decided before any run was timed with it; no threshold here is tuned on a run):

- *Quiet* when other processes used at most `QUIET_CORES` = 0.25 of one core on average over the window,
  *busy* above it. Basis: a timed pass shares its cores with whatever else runs, and on a small cloud
  machine whose vCPUs are hyperthreads of one physical core it shares the core's pipelines, caches and
  memory bandwidth even when the neighbour runs on the other vCPU; an idle machine's background (kernel
  threads, daemons, the notebook runner's polling) takes a few percent of one core and one CPU-bound
  process a whole one, so a quarter of a core lies far from both, as the 100 Hz tick counters of
  /proc/stat need over windows of a few tenths of a second.
- *Not measured* when neither psutil nor /proc/stat is readable, or the window is shorter than
  `MIN_WINDOW` = 0.25 s (25 ticks per CPU at 100 Hz: too few to tell a quarter of a core). Such a
  timing is judged as before and its claim says "contention not measured (why)".
- *Re-timing*: `ticketlib.core.cost.latency_timing` takes an attempt (every form's samples, interleaved; the rule reads
  the attempt's whole window, each form's own sample windows are recorded beside it); when the attempt was busy it takes another, at most `ATTEMPTS` = 3 in all, and keeps the first quiet (or not
  measured) attempt's samples, or the last one's when all were busy. Basis: contention that comes and
  goes (a compile, a cron job, a test starting) passes within an attempt or two; a neighbour still
  there after three attempts is a job running beside the timing, and more attempts only lengthen it.
- *Verdict*: a timing claim whose kept samples were busy is *inconclusive* and says "measured under load
  (other processes x% of N cores, ...)" instead of holding or failing on noise (`claims` applies it).
  Wall times of training units (04's `cost_saved`) follow the same rule over the units' own windows,
  recorded in their cache metadata (`cache.unit_meta`); no re-timing there (a unit is minutes long).
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

from ticketlib.infra.cores import machine

T = TypeVar("T")

QUIET_CORES = 0.25  # ours: see the module docstring
MIN_WINDOW = 0.25  # seconds of pooled wall time below which the counters cannot tell (25 ticks at 100 Hz)
ATTEMPTS = 3  # ours: at most this many interleaved attempts per group of forms
STATES = ("quiet", "busy", "not measured")
TIMING_CLAIMS = ("smaller_network_is_faster", "cost_saved", "sparse_kernels_pay_when_sparse",
                 "sparse_kernels_lose_at_moderate_sparsity", "slim_network_is_faster")  # judged on wall-clock time
RULE = (f"quiet when other processes used at most {QUIET_CORES:g} of one core over the timed window (ours: "
        "a timed pass shares its cores, caches and memory bandwidth with anything else running; an idle "
        "machine's background is a few percent of a core, one CPU-bound process a whole one); busy samples "
        f"re-timed up to {ATTEMPTS} attempts in all; still busy: inconclusive, measured under load")


def _busy_cpu() -> float | None:
    """Busy CPU seconds so far on the CPUs this process may run on; None when nothing can be read."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    try:
        import psutil

        times = psutil.cpu_times(percpu=True)
        chosen = [times[i] for i in cpus if i < len(times)] if cpus else times
        return sum(t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
                   + getattr(t, "steal", 0.0) for t in chosen)
    except Exception:  # no psutil, or it cannot read this platform's counters
        return _proc_stat_busy(cpus)


def _proc_stat_busy(cpus: Sequence[int] | None, path: str = "/proc/stat") -> float | None:
    """Busy seconds from /proc/stat's per-CPU lines (user nice system idle iowait irq softirq steal)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    lines = [line.split() for line in text.splitlines() if line[:3] == "cpu" and line[3:4].isdigit()]
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    wanted = set(cpus) if cpus else None
    ticks = sum(sum(int(v) for i, v in enumerate(f[1:9]) if i not in (3, 4)) for f in lines
                if wanted is None or int(f[0][3:]) in wanted)
    return ticks / hz if lines else None


def _load() -> float | None:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


@dataclass(frozen=True)
class Mark:
    """The clocks at one instant: wall, this process's CPU, the machine's busy CPU (None: unreadable)."""

    wall: float
    own: float
    busy: float | None

    @classmethod
    def now(cls) -> "Mark":
        return cls(time.perf_counter(), time.process_time(), _busy_cpu())

    def to(self, later: "Mark") -> "Window":
        """The window from this mark to a later one."""
        busy = None if self.busy is None or later.busy is None else later.busy - self.busy
        return Window(later.wall - self.wall, later.own - self.own, busy, machine(), _load())


@dataclass(frozen=True)
class Window:
    """Wall seconds, own CPU seconds and the machine's busy CPU seconds over a stretch of time (see module)."""

    wall: float = 0.0
    own_cpu: float = 0.0
    busy_cpu: float | None = 0.0
    cores: int = 1
    load: float | None = None  # 1-minute load average at the end (the highest, for pooled windows)

    def __add__(self, other: "Window") -> "Window":
        busy = None if self.busy_cpu is None or other.busy_cpu is None else self.busy_cpu + other.busy_cpu
        loads = [x for x in (self.load, other.load) if x is not None]
        return Window(self.wall + other.wall, self.own_cpu + other.own_cpu, busy, max(self.cores, other.cores),
                      max(loads) if loads else None)

    @property
    def others_cores(self) -> float | None:
        """Other processes' CPU in cores' worth (clipped at 0: the tick counters are coarse)."""
        if self.busy_cpu is None or self.wall <= 0:
            return None
        return max(0.0, (self.busy_cpu - self.own_cpu) / self.wall)

    @property
    def others_share(self) -> float | None:
        return None if self.others_cores is None else self.others_cores / self.cores

    @property
    def own_cores(self) -> float:
        return self.own_cpu / self.wall if self.wall > 0 else 0.0

    @property
    def state(self) -> str:
        """quiet, busy or not measured, by the module's rule."""
        if self.others_cores is None or self.wall < MIN_WINDOW:
            return "not measured"
        return "busy" if self.others_cores > QUIET_CORES else "quiet"

    def to_dict(self) -> dict:
        return {**asdict(self), "others_cores": self.others_cores, "others_share": self.others_share,
                "own_cores": self.own_cores, "state": self.state}

    @classmethod
    def from_dict(cls, body: Mapping) -> "Window":
        return cls(body["wall"], body["own_cpu"], body["busy_cpu"], body["cores"], body.get("load"))


def total(windows: Sequence[Window]) -> Window:
    """The windows pooled (an empty sequence gives an empty, unmeasured window)."""
    out = Window()
    for w in windows:
        out = out + w
    return out if windows else Window(busy_cpu=None)


def describe(window: Window | None) -> str:
    """The window's state in words, as claims and benchmarks print it."""
    if window is None:
        return "contention not measured (no record of it)"
    load = f", load {window.load:.1f}" if window.load is not None else ""
    if window.others_cores is None:
        return "contention not measured (no CPU counters on this platform)"
    figures = (f"other processes {100 * window.others_share:.0f}% of {window.cores} core(s), "
               f"this one {window.own_cores:.2f} core(s){load}, over {window.wall:.2f} s")
    if window.wall < MIN_WINDOW:
        return f"contention not measured (window {window.wall:.3f} s, under {MIN_WINDOW:g} s: {figures})"
    return f"{'machine quiet' if window.state == 'quiet' else 'measured under load'} ({figures})"


def summary(windows: Sequence[Window | None]) -> dict:
    """The rule over the windows a claim judges (None: a window not recorded): busy if any is busy (the busiest
    shown), else not measured if any is, else quiet (pooled shown). A dict for the record: state, text, window."""
    unique = list(dict.fromkeys(windows))
    busy = [w for w in unique if w is not None and w.state == "busy"]
    if busy:
        shown = max(busy, key=lambda w: w.others_cores)
        text = (f"{describe(shown)}: inconclusive by the contention rule (quiet only while other processes use at "
                f"most {QUIET_CORES:g} of one core)")
        return {"state": "busy", "text": text, "window": shown.to_dict()}
    missing = [w for w in unique if w is None or w.state == "not measured"]
    if missing:
        return {"state": "not measured", "text": f"{describe(missing[0])}; judged as before",
                "window": None if missing[0] is None else missing[0].to_dict()}
    shown = total(unique)
    return {"state": "quiet", "text": f"{describe(shown)}; quiet = other processes at most {QUIET_CORES:g} of one core",
            "window": shown.to_dict()}


def from_record(body: Mapping | None) -> Window | None:
    """The window of a recorded contention entry (`Window.to_dict`), or None for records without one."""
    return None if not body else Window.from_dict(body)


@dataclass
class Attempts:
    """The contention of a re-timed measurement: each form's own windows in the attempt kept (`forms`), every
    attempt's pooled window in order (`tried`) and the index of the one kept (the first not busy, else the last)."""

    forms: dict[str, Window]
    tried: list[Window]
    kept: int

    def record(self, name: str) -> dict:
        """Form `name`'s entry for a record or row: the kept attempt's pooled window (what the rule judges), the
        form's own windows (`form`), every attempt's window (`attempts`) and the index kept (`kept`)."""
        return {**self.tried[self.kept].to_dict(), "form": self.forms[name].to_dict(),
                "attempts": [w.to_dict() for w in self.tried], "kept": self.kept}


def retimed(attempt: Callable[[], tuple[T, dict[str, Window], Window]],
            attempts: int = ATTEMPTS) -> tuple[T, Attempts]:
    """Run `attempt` (returning its result, each form's own sample windows pooled, and the attempt's whole
    window, which the rule judges) until one is not busy, at most `attempts` times; the result of the attempt
    kept and the contention of all of them. The whole window, one stretch from the attempt's start to its end,
    reads the tick counters twice instead of twice per sample, so their rounding does not add up."""
    tried: list[Window] = []
    while True:
        result, windows, whole = attempt()
        tried.append(whole)
        if whole.state != "busy" or len(tried) >= attempts:
            return result, Attempts(dict(windows), tried, len(tried) - 1)


class Monitor:
    """`with Monitor() as m: ...` then `m.window`: the contention over the block (for benchmarks and units)."""

    def __enter__(self) -> "Monitor":
        self.window: Window | None = None
        self._start = Mark.now()
        return self

    def __exit__(self, *exc) -> None:
        self.window = self._start.to(Mark.now())

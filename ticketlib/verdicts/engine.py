"""Verdicts over seeds: every claim of every notebook is judged here, never in a notebook cell.

A claim is a statistic per seed (usually a *paired* difference of two runs that share a seed, such as a ticket
minus the dense network of the same seed), a threshold with its source, and the side of the threshold the paper
claims (`direction` ">" or "<"). Its estimate is the mean over seeds with a two-sided 95% Student-t interval,
mean ± t(0.975, n−1) · s / √n; the claim ``holds`` when the whole interval lies on the claimed side of the
threshold, ``fails`` when it lies wholly on the other side, and is ``inconclusive`` otherwise (always, for one seed
of a noisy quantity). A deterministic quantity (a data-free computation at one initialisation, or a numerical
identity) has a point interval. A claim of several parts holds when every part holds and fails when any part fails.

Thresholds are per (claim, model, dataset) in `thresholds.SETTINGS`, each with its source. Where a paper gives no
number the threshold is 0 and the claim is judged on direction only (it says so); one of our own is labelled "ours"
with its reason. "Matching" (Chen et al. 2020, Table 2; Frankle et al. 2020) is within one standard deviation over
seeds of the full model's accuracy; the papers ask it of the mean, this module of the whole paired interval
(stricter). Missing values and NaN raise an error naming the claim and the seed: never a silent False.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

from ticketlib.infra import contention
from ticketlib.verdicts.thresholds import Threshold



CONFIDENCE = 0.95
METHOD = ("mean over seeds with a two-sided 95% Student-t interval on the per-seed (paired) values; "
          "holds when the whole interval lies on the claimed side of the threshold, fails when it lies "
          "wholly on the other side, inconclusive otherwise")
VERDICTS = ("holds", "fails", "inconclusive")
KINDS = ("finding", "identity")


@dataclass
class Verdict:
    """One judged claim, as it goes into the run record (ARCHITECTURE.md, "The run record")."""

    id: str
    statement: str
    paper: str
    source: str
    direction: str
    threshold: float
    threshold_basis: str
    estimate: float
    interval: tuple[float, float]
    seeds: int
    verdict: str
    measured: str
    kind: str = "finding"
    values: dict = field(default_factory=dict)
    parts: list = field(default_factory=list)
    contention: dict | None = None  # timing claims only: `contention.summary` of the windows they judge

    @property
    def holds(self) -> bool:
        return self.verdict == "holds"

    def to_dict(self) -> dict:
        body = asdict(self)
        body["interval"] = list(self.interval)
        body["holds"] = self.holds
        if body["contention"] is None:
            del body["contention"]
        return body


def interval(values: Sequence[float], confidence: float = CONFIDENCE,
             deterministic: bool = False) -> tuple[float, float, float]:
    """(mean, low, high): a Student-t interval over the values, a point for a deterministic one; one value of a
    noisy quantity gives (v, -inf, inf): nothing is known about its spread."""
    from scipy import stats

    values = [float(v) for v in values]
    if not values:
        raise ValueError("no values to judge")
    n = len(values)
    mean = sum(values) / n
    if deterministic:
        if n != 1:
            raise ValueError(f"a deterministic quantity has one value, got {n}")
        return mean, mean, mean
    if n == 1:
        return mean, -math.inf, math.inf
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * _sd(values) / math.sqrt(n)
    return mean, mean - half, mean + half


def _sd(values: list[float]) -> float:
    """The sample standard deviation (n − 1) of two or more values."""
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _mean(values: Mapping) -> float:
    """The mean of a {seed: value} mapping's values."""
    return sum(values.values()) / len(values)


def decide(low: float, high: float, threshold: float, direction: str) -> str:
    """holds / fails / inconclusive for an interval against a threshold; the claimed side is strict."""
    if direction == ">":
        return "holds" if low > threshold else "fails" if high <= threshold else "inconclusive"
    if direction == "<":
        return "holds" if high < threshold else "fails" if low >= threshold else "inconclusive"
    raise ValueError(f"direction must be '>' or '<', got {direction!r}")


def checked(values: Mapping, claim: str) -> dict:
    """The per-seed values as floats; raises naming the claim and seed for a missing or NaN value."""
    if not values:
        raise ValueError(f"claim {claim!r}: no values (no seed measured the quantities it compares)")
    out = {}
    for seed, value in values.items():
        if value is None or not math.isfinite(float(value)):
            raise ValueError(f"claim {claim!r}: value for seed {seed} is {value} (a missing level or a failed run)")
        out[seed] = float(value)
    return out


def paired(a: Mapping, b: Mapping, claim: str, what: str = "") -> dict:
    """a[seed] − b[seed] for every seed; raises if a seed or a value is missing on either side."""
    if set(a) != set(b):
        raise ValueError(f"claim {claim!r}: {what or 'the two sides'} were measured on different seeds: "
                         f"{sorted(a)} vs {sorted(b)}")
    a, b = checked(a, claim), checked(b, claim)
    return {s: a[s] - b[s] for s in a}


Measured = str | Callable[[Verdict], str]  # the text, or a function of the judged verdict returning it


def judge(claim_id: str, *, statement: str, paper: str, values: Mapping, threshold: Threshold, direction: str,
          measured: Measured, kind: str = "finding", deterministic: bool = False) -> Verdict:
    """Judge per-seed `values` (seed -> number) against `threshold` on the `direction` side. `measured`: the text,
    or a function of the judged verdict (its estimate and interval) that returns it."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    values = checked(values, claim_id)
    mean, low, high = interval(list(values.values()), deterministic=deterministic)
    verdict = Verdict(id=claim_id, statement=statement, paper=paper, source=threshold.source, direction=direction,
                      threshold=threshold.value, threshold_basis=threshold.basis, estimate=mean, interval=(low, high),
                      seeds=len(values), verdict=decide(low, high, threshold.value, direction),
                      measured=measured if isinstance(measured, str) else "", kind=kind,
                      values={str(k): v for k, v in values.items()})
    if not isinstance(measured, str):
        verdict.measured = measured(verdict)  # the text needs the judged interval; no one has seen it yet
    return verdict


def combine(parts: Sequence[Verdict], claim_id: str, *, statement: str, paper: str, measured: str,
            contention: dict | None = None) -> Verdict:
    """A claim of several parts: holds if all hold, fails if any fails, else inconclusive. The estimate, interval
    and threshold shown are the first part's; every part is kept in `parts`; `contention`: a timing's summary."""
    if not parts:
        raise ValueError(f"claim {claim_id!r}: no parts")
    outcomes = [p.verdict for p in parts]
    verdict = ("fails" if "fails" in outcomes else "holds" if all(o == "holds" for o in outcomes)
               else "inconclusive")
    head = parts[0]
    return Verdict(id=claim_id, statement=statement, paper=paper,
                   source="; ".join(dict.fromkeys(p.source for p in parts)), direction=head.direction,
                   threshold=head.threshold, threshold_basis=head.threshold_basis, estimate=head.estimate,
                   interval=head.interval, seeds=min(p.seeds for p in parts), verdict=verdict, measured=measured,
                   kind=head.kind, values=head.values, parts=[p.to_dict() for p in parts], contention=contention)


def not_judged(claim_id: str, reason: str) -> Verdict:
    """Inconclusive with the reason, for a claim whose quantities do not exist in this run (never a silent pass)."""
    return Verdict(id=claim_id, statement=reason, paper="", source="not judged", direction=">", threshold=math.nan,
                   threshold_basis="direction", estimate=math.nan, interval=(math.nan, math.nan), seeds=0,
                   verdict="inconclusive", measured=f"not judged: {reason}")


STRICTER = ("the whole paired 95% interval above −1 SD, stricter than the papers, which ask it of the mean "
            "(Chen et al. 2020, Table 2)")


def sd_margin(reference: Mapping, claim: str, source: str, basis: str = "definition") -> Threshold:
    """Minus one standard deviation over seeds of `reference` (two or more seeds), with its `source`."""
    values = list(checked(reference, claim).values())
    if len(values) < 2:
        raise ValueError(f"claim {claim!r}: a margin of one SD needs the reference's standard deviation over >= 2 seeds")
    return Threshold(-_sd(values), source, basis)


def matching_threshold(reference: Mapping, claim: str) -> Threshold:
    """Minus one standard deviation over seeds of the reference (full/dense) accuracy: the papers'
    'matching' (Chen et al. 2020, Table 2; Frankle et al. 2020), judged here on the whole interval."""
    return sd_margin(reference, claim, "matching = within one standard deviation (over seeds) of the full model's "
                     "accuracy (Chen et al. 2020, Table 2; Frankle et al. 2020); the papers ask it of the mean, this "
                     "project of the whole paired 95% interval: stricter than the papers")


# --- per-setting thresholds and levels: `thresholds.SETTINGS` (imported above) --------------------------


def fmt_interval(v: Verdict, unit: str = "pp", digits: int = 2) -> str:
    """'+0.42 pp [−0.10, +0.94], 4 seeds' for measured strings and tables."""
    low, high = v.interval
    if v.seeds == 1 and low == high:
        return f"{v.estimate:+.{digits}f} {unit} (deterministic)"
    if v.seeds == 1:
        return f"{v.estimate:+.{digits}f} {unit} (one seed: no interval)"
    return f"{v.estimate:+.{digits}f} {unit} [{low:+.{digits}f}, {high:+.{digits}f}], {v.seeds} seed(s)"


def _span(v: Verdict, digits: int) -> str:
    """'0.069 [0.061, 0.077]': the estimate and interval, unsigned, for ratios."""
    return f"{v.estimate:.{digits}f} [{v.interval[0]:.{digits}f}, {v.interval[1]:.{digits}f}]"


def why(claim: Mapping) -> str:
    """One sentence on what decided a recorded claim's verdict."""
    low, high = claim["interval"]
    side = "above" if claim["direction"] == ">" else "below"
    if not claim["seeds"]:
        return "the quantities it compares do not exist in this run"
    if low is None or high is None:
        return "one seed of a noisy quantity: no interval, so no verdict either way"
    span = f"{low:+.3g} (deterministic)" if low == high and claim["seeds"] == 1 else f"[{low:+.3g}, {high:+.3g}]"
    if claim["verdict"] == "holds":
        return f"the whole interval {span} lies {side} the threshold {claim['threshold']:+.3g}"
    if claim["verdict"] == "fails":
        return f"the whole interval {span} lies on the wrong side of the threshold {claim['threshold']:+.3g}"
    return (f"the interval {span} contains the threshold {claim['threshold']:+.3g}: the seeds disagree "
            "more than the effect, so more seeds (or a longer budget) are needed to decide")


def verdict_lines(recorded: list[Mapping]) -> str:
    """Markdown: one line per recorded claim with its verdict, the numbers and why."""
    return "\n".join(f"- **{c['id']}**: {c['verdict']} — {c['measured']}. Why: {why(c)}." for c in recorded)


# --- tidy rows -> per-seed values ---------------------------------------------------------------------
def pct(value: float) -> str:
    return f"{value:.2f}%"


def latency_verdict(claim: str, *, statement: str, paper: str, a: Sequence[float], b: Sequence[float],
                    threshold: Threshold, direction: str, median_format: str,
                    windows: Sequence[contention.Window | None], label: str = "", note: str = "") -> Verdict:
    """Judge the latency ratio a / b over paired, interleaved repeats (the i-th samples of each) against 1,
    under the contention rule over the samples' `windows`; the measured text starts with `label: ` and ends with
    `; note` where they are given."""
    n = min(len(a), len(b))
    median = lambda s: 1e3 * sorted(s)[n // 2]  # noqa: E731
    head = f"{label}: " if label else ""
    v = judge(claim, statement=statement, paper=paper, values={i: x / y for i, (x, y) in enumerate(zip(a, b))},
              threshold=threshold, direction=direction,
              measured=lambda v: (f"{head}latency ratio {_span(v, 3)} over {n} interleaved repeats (samples, not "
                                  f"seeds); medians {median(a):{median_format}} vs {median(b):{median_format}} ms"))
    return under_load(v, windows, after=f"; {note}" if note else "")


def under_load(v: Verdict, windows: Sequence[contention.Window | None], what: str = "", after: str = "") -> Verdict:
    """`contention`'s rule: a timing whose windows were busy is inconclusive and says it was measured under load;
    one not measured is judged as before and says so; the summary goes into the record (`contention`). Returns a
    copy; the measured text gains `; {what}{the contention text}{after}`."""
    summary = contention.summary(windows)
    return replace(v, contention=summary, verdict="inconclusive" if summary["state"] == "busy" else v.verdict,
                   measured=f"{v.measured}; {what}{summary['text']}{after}")


def select_values(rows: list[dict], column: str = "test_accuracy", **where) -> dict:
    """{seed: row[column]} of the rows matching `where` (one per seed); raises naming what is missing."""
    match = [r for r in rows if all(r.get(k) == v for k, v in where.items())]
    out: dict = {}
    for r in match:
        if r["seed"] in out:
            raise ValueError(f"two rows for seed {r['seed']} with {where}")
        out[r["seed"]] = r[column]
    if not out:
        raise ValueError(f"no rows with {where}: that run was not trained")
    return out


def side_of_zero(low: float, high: float) -> str:
    """Where an interval lies against zero, in words, for diagnostics that are not claims."""
    return "above zero" if low > 0 else "below zero" if high < 0 else "not distinguishable from zero"

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
from dataclasses import asdict, dataclass, field

from . import contention
from .thresholds import (SETTINGS, Setting, Threshold, chen_matching_text, direction_only,  # noqa: F401
                         level_for, setting, threshold_for)

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


def judge(claim_id: str, statement: str, paper: str, values: Mapping, threshold: Threshold, direction: str,
          measured: str, kind: str = "finding", deterministic: bool = False) -> Verdict:
    """Judge per-seed `values` (seed -> number) against `threshold` on the `direction` side."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    values = checked(values, claim_id)
    mean, low, high = interval(list(values.values()), deterministic=deterministic)
    verdict = decide(low, high, threshold.value, direction)
    return Verdict(claim_id, statement, paper, threshold.source, direction, threshold.value, threshold.basis,
                   mean, (low, high), len(values), verdict, measured, kind, {str(k): v for k, v in values.items()})


def combine(parts: Sequence[Verdict], claim_id: str, statement: str, paper: str, measured: str) -> Verdict:
    """A claim of several parts: holds if all hold, fails if any fails, else inconclusive. The estimate, interval
    and threshold shown are the first part's; every part is kept in `parts`."""
    if not parts:
        raise ValueError(f"claim {claim_id!r}: no parts")
    outcomes = [p.verdict for p in parts]
    verdict = ("fails" if "fails" in outcomes else "holds" if all(o == "holds" for o in outcomes)
               else "inconclusive")
    head = parts[0]
    return Verdict(claim_id, statement, paper, "; ".join(dict.fromkeys(p.source for p in parts)), head.direction,
                   head.threshold, head.threshold_basis, head.estimate, head.interval, min(p.seeds for p in parts),
                   verdict, measured, head.kind, head.values, [p.to_dict() for p in parts])


def not_judged(claim_id: str, reason: str) -> Verdict:
    """Inconclusive with the reason, for a claim whose quantities do not exist in this run (never a silent pass)."""
    return Verdict(claim_id, reason, "", "not judged", ">", math.nan, "direction", math.nan, (math.nan, math.nan), 0,
                   "inconclusive", f"not judged: {reason}")


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
def nearest_round(rows: list[dict], seed, percent: float) -> dict:
    """The ticket row of `seed` whose % remaining is nearest `percent` (log scale)."""
    tickets = [r for r in rows if r["seed"] == seed and r["kind"] == "ticket"]
    if not tickets:
        raise ValueError(f"no IMP rounds for seed {seed}")
    return min(tickets, key=lambda r: abs(math.log(max(r["percent_remaining"], 1e-12) / percent)))


def at_level(rows: list[dict], kind: str, percent: float, column: str) -> dict:
    """Per seed, `column` of the `kind` run at the IMP round nearest `percent` % remaining; raises naming the kind
    and the level when a seed has no such run (a control not trained there)."""
    out = {}
    for seed in sorted({r["seed"] for r in rows if r["kind"] == "ticket"}):
        target = nearest_round(rows, seed, percent)
        match = [r for r in rows if r["seed"] == seed and r["kind"] == kind and r["round"] == target["round"]]
        if not match:
            raise ValueError(f"no '{kind}' run at round {target['round']} ({target['percent_remaining']:.2f}%, "
                             f"nearest {percent:g}%) for seed {seed}: train it at that level")
        out[seed] = match[0][column]
    return out


def pct(value: float) -> str:
    return f"{value:.2f}%"


def _level_text(rows: list[dict], percent: float) -> str:
    """The % remaining of the (first seed's) ticket round nearest `percent`, as text."""
    return pct(next(iter(at_level(rows, "ticket", percent, "percent_remaining").values())))


# --- 01_imp: winning tickets --------------------------------------------------------------------------
def imp_claims(rows: list[dict], model: str, dataset: str, accuracy: str, step_schedule: bool,
               default_level: float = 3.6, default_fast_level: float = 21.1) -> list[Verdict]:
    """The four IMP findings from `imp.imp_study` rows (kinds ticket, reinit, random_mask). `accuracy`: the column
    judged ("final_test_accuracy" for SGD step schedules, whose papers report the end of training);
    `step_schedule` drops the learns-faster claim: early stopping is not what those papers measure."""
    level, level_source = level_for("ticket_matches_dense", model, dataset, default_level)
    dense = at_level(rows, "ticket", 100.0, accuracy)
    ticket = at_level(rows, "ticket", level, accuracy)
    actual = _level_text(rows, level)
    setting_name = f"{model}/{dataset}"
    gap = paired(ticket, dense, "ticket_matches_dense")
    threshold = matching_threshold(dense, "ticket_matches_dense")
    v = judge("ticket_matches_dense",
              f"At ≈{level:g}% of weights remaining ({actual}) the IMP ticket matches the dense network "
              f"(ticket − dense: {STRICTER})",
              level_source, gap, threshold, ">", "")
    v.measured = f"ticket − dense at {actual}: {fmt_interval(v)}; threshold {threshold.value:+.2f} pp (−1 SD of dense)"
    verdicts = [v]
    for kind, cid, what in [("reinit", "reinit_falls_behind", "the same mask on re-initialised weights"),
                            ("random_mask", "random_mask_falls_behind",
                             "a random mask with the ticket's per-layer densities")]:
        gap = paired(ticket, at_level(rows, kind, level, accuracy), cid)
        v = judge(cid, f"At ≈{level:g}% ({actual}) {what} trains below the ticket (ticket − control > 0)",
                  "random re-initialisation and random pruning fall behind the ticket (Frankle & Carbin 2019, "
                  "Figs. 3–4; no number at this level)", gap, direction_only(setting_name), ">", "")
        v.measured = f"ticket − {kind} at {actual}: {fmt_interval(v)}"
        verdicts.append(v)
    if not step_schedule:
        fast_level, fast_source = level_for("ticket_learns_faster", model, dataset, default_fast_level)
        earlier = paired(at_level(rows, "ticket", 100.0, "early_stop_iteration"),
                         at_level(rows, "ticket", fast_level, "early_stop_iteration"), "ticket_learns_faster")
        at = _level_text(rows, fast_level)
        v = judge("ticket_learns_faster",
                  f"At ≈{fast_level:g}% ({at}) the ticket reaches its minimum validation loss earlier than dense "
                  "(dense − ticket early-stop iteration > 0)", fast_source, earlier,
                  direction_only(f"the size of the speed-up on {setting_name}"), ">", "")
        v.measured = f"dense − ticket early-stop iteration at {at}: {fmt_interval(v, 'it', 0)}"
        verdicts.append(v)
    return verdicts


# --- 05_anatomy: Zhou et al. 2019 ---------------------------------------------------------------------
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


def anatomy_claims(rows: list[dict], supermasks: list[dict], claim_round: int, claim_percent: float,
                   model: str, dataset: str) -> list[Verdict]:
    """Criteria, signs, zeros and the supermask, from 05's tidy rows (seed, study, kind, round, test_accuracy)
    and its untrained-mask rows (seed, source, criterion, weights, level, val_accuracy, test_accuracy)."""
    at = pct(claim_percent)
    setting_name = f"{model}/{dataset}"

    def acc(study: str, kind: str) -> dict:
        return select_values(rows, study=study, kind=kind, round=claim_round)

    random_c = acc("criterion", "random")
    margins = {name: paired(acc("criterion", name), random_c, "criteria", f"{name} vs random")
               for name in ["large_final", "magnitude_increase"]}
    worst = {s: min(m[s] for m in margins.values()) for s in random_c}
    v_crit = judge("criteria",
                   f"At {at}, the large_final and magnitude_increase masks (one shot, rewound) each train above a "
                   "random mask of the same per-layer densities (the smaller of the two margins per seed > 0)",
                   "large_final and magnitude_increase work, random masks do not (Zhou et al. 2019, Fig. 2; figure number "
                   "unverified offline)",
                   worst, direction_only(f"criteria margins on {setting_name}"), ">", "")
    v_crit.measured = (f"min(criterion − random) at {at}: {fmt_interval(v_crit)}; means: "
                       + ", ".join(f"{k} {_mean(m):+.2f} pp" for k, m in margins.items()))

    signs = paired(acc("mask1", "signed_constant"), acc("mask1", "random_sign_constant"), "signs_matter")
    v_sign = judge("signs_matter",
                   f"At {at}, a constant with θ0's signs trains above a constant with random signs (one-sided: "
                   "signed − random-sign > 0)",
                   "keeping signs matters more than magnitudes (Zhou et al. 2019, Fig. 3; figure number unverified offline)",
                   signs,
                   direction_only(f"signs on {setting_name}"), ">", "")
    rewind_minus_signed = paired(acc("mask1", "rewind"), acc("mask1", "signed_constant"), "signs_matter")
    v_sign.measured = (f"signed − random-sign constant at {at}: {fmt_interval(v_sign)}; rewind − signed constant "
                       f"{_mean(rewind_minus_signed):+.2f} pp (mean)")

    zeros = paired(acc("mask0", "zero"), acc("mask0", "freeze"), "zeros_matter")
    v_zero = judge("zeros_matter",
                   f"At {at}, setting the pruned weights to zero trains above freezing them at θ0 (zero − freeze > 0)",
                   "mask-0 = zero beats freezing at init (Zhou et al. 2019, Fig. 4; figure number unverified offline)", zeros,
                   direction_only(f"zeros on {setting_name}"), ">", "")
    v_zero.measured = f"zero − freeze at {at}: {fmt_interval(v_zero)}"

    config = [r for r in supermasks if r["criterion"] == "large_final_same_sign" and r["weights"] == "signed_constant"
              and r["source"] == "one shot"]
    chosen = {seed: max((r for r in config if r["seed"] == seed),
                        key=lambda r: (r["val_accuracy"], -r["percent_remaining"]))
              for seed in sorted({r["seed"] for r in config})}
    if not chosen:
        raise ValueError("claim 'supermask': no large_final_same_sign / signed_constant supermask was evaluated")
    threshold = threshold_for("supermask", model, dataset)
    v_super = judge("supermask",
                    "The paper's supermask (large_final_same_sign mask on signed-constant weights, untrained), at the "
                    "density chosen on validation, reaches the paper's test accuracy with its whole interval: stricter than the "
                    "paper, whose number is its best case over all levels",
                    setting("supermask", model, dataset).paper or "supermasks far above chance (Zhou et al. 2019, abstract)",
                    {s: r["test_accuracy"] for s, r in chosen.items()}, threshold, ">", "")
    v_super.measured = (f"test accuracy {fmt_interval(v_super, '%')} at "
                        + ", ".join(f"{r['percent_remaining']:.1f}%" for r in chosen.values())
                        + f" remaining (chosen on validation per seed); threshold {threshold.value:g}%")
    return [v_crit, v_sign, v_zero, v_super]


# --- 02_conservation: Tanaka et al. 2020, Frankle et al. 2021 -------------------------------------------
CONSERVATION_TOLERANCE = Threshold(
    1e-9, "ours: SynFlow's per-layer (cut) totals are equal in exact arithmetic; float64 round-off over a "
          "few dozen layer sums is ~1e-15, so 1e-9 allows for it and still catches any real violation", "ours")
CHANCE_MARGIN = Threshold(
    5.0, "ours: a tie at chance is no win; 5 pp above the majority class is several binomial standard errors "
         "at 2,000 test images", "ours")
SHUFFLE_TOLERANCE = Threshold(
    1.0, "ours: Frankle et al. 2021 give no tolerance; 1 pp, the tolerance this project used before judging over "
         "seeds (set before any multi-seed run)", "ours")


def conservation_law(spreads: Mapping[str, float], shift_share: float, model: str) -> Verdict:
    """Identity check: SynFlow's per-layer cut totals agree; SNIP's and magnitude's shown for contrast."""
    v = judge("conservation_law",
              f"On {model} at init, SynFlow's per-layer totals (weights + downstream biases/BN shifts) are equal "
              "(relative spread ≤ 1e-9): the conservation law, checked numerically",
              "SynFlow conserves synaptic saliency layer to layer (Tanaka et al. 2020, Thm. 1; Figs. 3–4)",
              {0: spreads["SynFlow (cut)"]}, CONSERVATION_TOLERANCE, "<", "", kind="identity", deterministic=True)
    v.measured = (f"relative spread: SynFlow {spreads['SynFlow (cut)']:.1e} (biases/BN shifts carry {shift_share:.1e} "
                  f"of R); for contrast SNIP {spreads['SNIP']:.2f}, magnitude {spreads['magnitude']:.2f}")
    return v


def synflow_max_critical_compression(critical: Mapping[str, float], synflow_key: str, single_shot: list[str],
                                     ceiling: float, model: str, dataset: str) -> Verdict:
    """SynFlow's critical compression minus the best single-shot method's (log10), deterministic at one init."""
    best = max(single_shot, key=lambda k: critical[k])
    gap = critical[synflow_key] - critical[best]
    threshold = threshold_for("synflow_max_critical_compression", model, dataset)
    v = judge("synflow_max_critical_compression",
              f"On {model} at init, iterative SynFlow's critical compression exceeds every single-shot method's by "
              f"more than {threshold.value:g} in log10"
              + (" (the paper's gap of 2.5 less one step of its 0.25 grid)" if threshold.basis == "paper" else ""),
              setting("synflow_max_critical_compression", model, dataset).paper or "SynFlow avoids layer collapse",
              {0: gap}, threshold, ">", "", deterministic=True)
    v.measured = (f"SynFlow 10^{critical[synflow_key]:.2f} (ceiling, one weight per layer: 10^{ceiling:.2f}) − best "
                  f"single-shot ({best}) 10^{critical[best]:.2f} = {gap:.2f}; "
                  + ", ".join(f"{k} 10^{critical[k]:.2f}" for k in single_shot))
    return v


def iteration_avoids_collapse(versus: list[dict], one_shot_cc: float, model: str) -> Verdict:
    """IMP's deepest round with every layer alive lies beyond one-shot magnitude's critical compression."""
    alive = [r for r in versus if not r["imp_collapsed"] and r["imp_empty_layers"] == 0]
    deepest = max(alive, key=lambda r: r["log_compression"])
    v = judge("iteration_avoids_collapse",
              f"IMP (global magnitude, small rate, retraining) on {model} keeps every layer alive beyond the "
              "compression at which one-shot magnitude pruning of its trained dense network collapses (log10 gap > 0)",
              "IMP avoids layer collapse by iterating at small rates (Tanaka et al. 2020, Sec. 5, section number "
              "unverified offline; no number)",
              {0: deepest["log_compression"] - one_shot_cc}, direction_only(f"IMP on {model}"), ">", "",
              deterministic=True)
    v.measured = (f"IMP alive to round {int(deepest['round'])} at 10^{deepest['log_compression']:.2f}; one-shot "
                  f"magnitude of the trained dense net collapses beyond 10^{one_shot_cc:.2f} (gap {v.estimate:+.2f}); "
                  "one seed: a structural, deterministic outcome of that IMP run")
    return v


def synflow_wins_at_high_compression(rows: list[dict], top: float, chance: float, accuracy: str = "test_accuracy"
                                     ) -> Verdict:
    """At the highest compression: SynFlow above every other method (paired per seed), and above chance."""
    plain = [r for r in rows if r["control"] == "none" and r["log_compression"] == top]
    methods = sorted({r["method"] for r in plain} - {"synflow"})
    synflow = select_values(plain, accuracy, method="synflow")
    others = {m: select_values(plain, accuracy, method=m) for m in methods}
    best_other = {s: max(others[m][s] for m in methods) for s in synflow}
    wins = judge("synflow_wins_at_high_compression", "", "", paired(synflow, best_other, "synflow_wins"),
                 direction_only(f"the winning margin at 10^{top}"), ">", "")
    above = judge("synflow_wins_at_high_compression", "", "",
                  {s: a - chance for s, a in checked(synflow, "synflow_wins").items()}, CHANCE_MARGIN, ">", "")
    mean = {m: _mean(v) for m, v in {"synflow": synflow, **others}.items()}
    return combine([wins, above], "synflow_wins_at_high_compression",
                   f"At 10^{top}, SynFlow trains above every other pruning-at-init method (paired per seed) and at "
                   f"least {CHANCE_MARGIN.value:g} pp above chance: a tie at chance is no win",
                   "VGG-16/CIFAR-10 at 1000x: SynFlow 80.4%, SNIP 76.3, GraSP 70.9, magnitude 10.0 (Tanaka et al. "
                   "2020, Fig. 6; figure number unverified offline)",
                   f"SynFlow − best other: {fmt_interval(wins)}; SynFlow − chance ({chance:.2f}%): "
                   f"{fmt_interval(above)}; means: " + ", ".join(f"{m} {a:.2f}%" for m, a in mean.items()))


def shuffle_does_not_hurt(rows: list[dict], compression: float, methods: list[str],
                          accuracy: str = "test_accuracy") -> Verdict:
    """One-sided: unshuffled − shuffled below the tolerance (the worse of the methods, per seed)."""
    at = [r for r in rows if r["log_compression"] == compression and r["method"] in methods]
    loss = {m: paired(select_values(at, accuracy, method=m, control="none"),
                      select_values(at, accuracy, method=m, control="shuffle"), "shuffle_does_not_hurt", m)
            for m in methods}
    seeds = next(iter(loss.values()))
    worst = {s: max(loss[m][s] for m in methods) for s in seeds}
    v = judge("shuffle_does_not_hurt",
              f"Shuffling the {' and '.join(methods)} masks within each layer at 10^{compression} costs less than "
              f"{SHUFFLE_TOLERANCE.value:g} pp (one-sided: unshuffled − shuffled, the worse method per seed, below it)",
              "shuffling a pruning-at-init mask within layers does not hurt (Frankle et al. 2021, Fig. 2; figure "
              "number unverified offline)",
              worst, SHUFFLE_TOLERANCE, "<", "")
    v.measured = (f"max over methods of (unshuffled − shuffled): {fmt_interval(v)}; per method (mean): "
                  + ", ".join(f"{m} {_mean(g):+.2f} pp" for m, g in loss.items()))
    return v


# --- 04_early_tickets: You et al. 2020 --------------------------------------------------------------------
def earlybird_claims(detected: Mapping, epochs: int, costs: list[dict], latency: Mapping[str, list[float]],
                     early_fraction: float, cost_ratio: float, step_schedule: bool, latency_p: float,
                     latency_contention: Mapping[str, Mapping] | None = None) -> list[Verdict]:
    """Early emergence, matching, cost and speed, over seeds. `detected`: {seed: {ratio: epoch or None}}; `costs`:
    `earlybird.pipeline_costs` rows with a "seed"; `latency`: {"dense": [...], "pruned": [...]} paired, interleaved
    forward passes of one network, `latency_contention` their `contention.Attempts.record`s (None: not measured).
    Accuracies at the end of training for SGD step schedules, as the paper reports."""
    fraction = {s: max((e if e is not None else epochs) / epochs for e in per_p.values())
                for s, per_p in detected.items()}
    early_threshold = Threshold(early_fraction, "ours: You et al. detect at epochs 14–31 of 160 (≤ 19%) for "
                                                "VGG-16/CIFAR-100; no number for this setting, so 'early' is taken as "
                                                f"the first {100 * early_fraction:.0f}% of training (set in the params)",
                                "ours")
    v_early = judge("early_emergence",
                    f"For every p the early-bird ticket is detected within the first {100 * early_fraction:.0f}% of the "
                    "epochs (the latest p per seed; never detected counts as 100%)",
                    "epochs 14–31 of 160, 9–19% (You et al. 2020, VGG-16/CIFAR-100; figure or table unverified offline)",
                    fraction, early_threshold, "<", "")
    v_early.measured = (f"latest detection as a fraction of {epochs} epochs: {fmt_interval(v_early, '', 3)}; "
                        "per seed: " + "; ".join(f"seed {s}: " + ", ".join(
                            f"p={r} {'never' if e is None else e}" for r, e in per_p.items())
                            for s, per_p in detected.items()))
    return [v_early, *_pipeline_claims(costs, cost_ratio, step_schedule),
            *earlybird_latency(latency, latency_p, latency_contention)]


def _pipeline_claims(costs: list[dict], cost_ratio: float, step_schedule: bool) -> list[Verdict]:
    """eb_ticket_matches and cost_saved, over the seeds where an early-bird ticket was detected."""
    key = "final_accuracy" if step_schedule else "accuracy"
    found = [r for r in costs if r["detected_epoch"] is not None]  # no early-bird ticket, no pipeline to judge
    if len(found) < 2:
        reason = (f"an early-bird ticket at p = {costs[0]['ratio']} was detected in {len(found)} of {len(costs)} seeds: "
                  "fewer than 2, so there is nothing to compare over seeds")
        return [not_judged("eb_ticket_matches", reason), not_judged("cost_saved", reason)]
    costs = found
    standard = {r["seed"]: 100 * r[f"standard_{key}"] for r in costs}
    early = {r["seed"]: 100 * r[f"early_{key}"] for r in costs}
    matching = matching_threshold(standard, "eb_ticket_matches")
    v_match = judge("eb_ticket_matches",
                    f"At p = {costs[0]['ratio']}, the early-bird ticket trained to the end matches the ticket drawn from the "
                    f"fully trained network and retrained (EB − standard: {STRICTER})",
                    "comparable or better accuracy (You et al. 2020, Table 2)", paired(early, standard, "eb_ticket_matches"),
                    matching, ">", "")
    v_match.measured = (f"EB − standard ({'end of training' if step_schedule else 'early stop'}): {fmt_interval(v_match)}; "
                        f"threshold {matching.value:+.2f} pp")

    devices = sorted({d for r in costs for d in r.get("devices", [])})
    if len(devices) > 1:  # wall times from different machines say nothing about the pipelines
        return [v_match, not_judged("cost_saved", f"its wall times were measured on different devices "
                                                  f"({', '.join(devices)}): re-run the units on one device")]
    ratio = {r["seed"]: max(r["early_seconds"] / r["standard_seconds"], r["early_flops"] / r["standard_flops"])
             for r in costs}
    cost_threshold = Threshold(cost_ratio, "ours: You et al. report up to 4.7x energy savings for their settings; "
                                           f"at most {cost_ratio:g}x of the standard pipeline's cost, set in the params",
                               "ours")
    v_cost = judge("cost_saved",
                   f"At p = {costs[0]['ratio']}, the early-bird pipeline costs ≤ {cost_ratio:g}x the standard one in both "
                   "measured wall time and FLOPs (the larger of the two ratios per seed)",
                   "up to 4.7x less energy (You et al. 2020, Fig. 5; figure number unverified offline)", ratio, cost_threshold, "<", "")
    v_cost.measured = (f"max(wall, FLOP) ratio: {fmt_interval(v_cost, 'x', 3)}; FLOP ratio per seed: "
                       + ", ".join(f"{r['early_flops'] / r['standard_flops']:.2f}x" for r in costs))
    # the wall-time half is a timing: the contention rule over each seed's training units (FLOPs are not timed)
    return [v_match, _under_load(v_cost, [contention.from_record(r.get("contention")) for r in costs], "wall times ")]


def earlybird_latency(latency: Mapping[str, list[float]], latency_p: float,
                      recorded: Mapping[str, Mapping] | None = None) -> list[Verdict]:
    """The slimmed network's forward-pass latency over the dense one's, over interleaved repeats, under the
    contention rule (`recorded`: each network's contention record; None: not measured)."""
    windows = [contention.from_record((recorded or {}).get(k)) for k in ("pruned", "dense")]
    return [_latency_verdict("smaller_network_is_faster",
                            f"The physically pruned network at p = {latency_p} runs a forward pass faster than the "
                            "dense one (pruned / dense latency < 1, over interleaved repeats)",
                            "structured pruning cuts FLOPs and latency (You et al. 2020, section unverified)", latency["pruned"],
                            latency["dense"], Threshold(1.0, "no number in the paper for this CPU: judged on direction "
                                                             "(a ratio below 1 is faster)", "direction"), "<", ".1f",
                            windows)]


def _latency_verdict(claim: str, statement: str, paper: str, a: Sequence[float], b: Sequence[float],
                     threshold: Threshold, direction: str, median_format: str,
                     windows: Sequence[contention.Window | None]) -> Verdict:
    """Judge the latency ratio a / b over paired, interleaved repeats (the i-th samples of each) against 1,
    under the contention rule over the samples' `windows`."""
    n = min(len(a), len(b))
    v = judge(claim, statement, paper, {i: x / y for i, (x, y) in enumerate(zip(a, b))}, threshold, direction, "")
    median = lambda s: 1e3 * sorted(s)[n // 2]  # noqa: E731
    v.measured = (f"latency ratio {_span(v, 3)} over {n} interleaved repeats (samples, not seeds); "
                  f"medians {median(a):{median_format}} vs {median(b):{median_format}} ms")
    return _under_load(v, windows)


def _under_load(v: Verdict, windows: Sequence[contention.Window | None], what: str = "") -> Verdict:
    """`contention`'s rule: a timing whose windows were busy is inconclusive and says it was measured under load;
    one not measured is judged as before and says so; the summary goes into the record (`contention`)."""
    v.contention = contention.summary(windows)
    if v.contention["state"] == "busy":
        v.verdict = "inconclusive"
    v.measured += f"; {what}{v.contention['text']}"
    return v


# --- 03_bert_transfer: Chen et al. 2020 ---------------------------------------------------------------
def bert_claims(rows: list[dict], transfer: list[dict], sentiment: str, claim_sparsity: float,
                downstream: list[str], accuracy: str = "test_accuracy") -> list[Verdict]:
    """Matching, the two controls and MLM transfer, over seeds, from `bert_tickets.tickets_and_transfer` rows
    (with a "seed")."""
    def imp_at(task: str, sparsity: float) -> dict:
        imp = [r for r in rows if r["task"] == task and r["kind"] == "imp"]
        out = {seed: min((r for r in imp if r["seed"] == seed), key=lambda r: abs(r["sparsity"] - sparsity))
               for seed in sorted({r["seed"] for r in imp})}
        if not out:
            raise ValueError(f"no IMP rounds on task {task!r}")
        return out

    target = 100 * claim_sparsity
    at = imp_at(sentiment, target)
    full = {s: r[accuracy] for s, r in imp_at(sentiment, 0.0).items()}
    imp = {s: r[accuracy] for s, r in at.items()}
    where = f"{next(iter(at.values()))['sparsity']:.0f}% sparsity"
    matching = matching_threshold(full, "matching_subnetwork_exists")
    v_match = judge("matching_subnetwork_exists",
                    f"On {sentiment}, the IMP subnetwork at {where} (rewound to the pre-trained weights) matches the "
                    f"full fine-tuned model (IMP − full: {STRICTER})", chen_matching_text(sentiment, where),
                    paired(imp, full, "matching_subnetwork_exists"), matching, ">", "")
    v_match.measured = f"IMP − full at {where}: {fmt_interval(v_match)}; threshold {matching.value:+.2f} pp (−1 SD of full)"
    verdicts = [v_match]
    for kind, cid, what, paper in [
            ("random_pruning", "random_pruning_falls_behind", "random pruning at the same sparsity",
             "random pruning far worse, e.g. MNLI 67.5 vs 82.6 (Chen et al. 2020, Table 2)"),
            ("random_weights", "pretrained_weights_matter", "the IMP mask on randomly initialised weights",
             "random re-initialisation fails (Chen et al. 2020, Table 2)")]:
        control = {r["seed"]: r[accuracy] for r in rows if r["task"] == sentiment and r["kind"] == kind
                   and r["round"] == at[r["seed"]]["round"]}
        v = judge(cid, f"On {sentiment} at {where}, {what} is below IMP (IMP − control > 0)", paper,
                  paired(imp, control, cid, kind), direction_only(f"{kind} on {sentiment}"), ">", "")
        v.measured = f"IMP − {kind} at {where}: {fmt_interval(v)}"
        verdicts.append(v)
    return verdicts + transfer_claims(rows, transfer, downstream, imp_at, accuracy)


def _transfer_values(transfer: list[dict], source: str, target: str, accuracy: str) -> dict:
    """{seed: accuracy} of the transfer runs from `source` ("mlm", "random" or a task) fine-tuned on `target`."""
    return {r["seed"]: r[accuracy] for r in transfer if r["source"] == source and r["target"] == target}


def _one_shot_shown(rows: list[dict], transfer: list[dict], task: str, sparsity: float, accuracy: str) -> str:
    """Chen et al.'s one-shot θ0 row on `task`, as a shown number (not judged): one-shot − own IMP subnetwork, mean
    over seeds, when the run trained the one-shot control at the transfer sparsity; else empty."""
    one_shot = {r["seed"]: r[accuracy] for r in rows if r["task"] == task and r["kind"] == "one_shot"
                and abs(r["sparsity"] - sparsity) < 1e-6}
    own = _transfer_values(transfer, task, task, accuracy)
    if not one_shot or set(one_shot) != set(own):
        return ""
    return f"; shown, not judged: one-shot θ0 − own on {task} {_mean(paired(one_shot, own, 'transfer')):+.2f} pp"


FULL_MARGIN = ("ours, stricter than the paper: −1 SD over seeds of the full model's accuracy (matching, Chen et al. 2020, "
               "Table 2), where the paper's transfer compares with TRANSFER(T, T) (Fig. 2)")


def transfer_claims(rows: list[dict], transfer: list[dict], downstream: list[str], imp_at: Callable,
                    accuracy: str = "test_accuracy") -> list[Verdict]:
    """`transfer` as Chen et al. 2020 (Fig. 2) state it: on each downstream task T, TRANSFER(MLM, T) against T's own
    IMP subnetwork at the same sparsity, TRANSFER(T, T), paired per seed; the pre-registered non-inferiority margin
    is −1 SD over seeds of TRANSFER(T, T) (the paper's "≥" over noisy seeds, with its own notion of matching).
    And `transfer_matches_full`, ours and stricter than the paper: MLM against the full model and a random mask."""
    sparsity = next(r["sparsity"] for r in transfer if r["source"] == "mlm")
    at_transfer = f"{sparsity:.0f}% sparsity"
    universal, strict, shown = [], [], ""
    for task in downstream:
        mlm, own = _transfer_values(transfer, "mlm", task, accuracy), _transfer_values(transfer, task, task, accuracy)
        margin = sd_margin(own, "transfer", "non-inferiority margin, pre-registered from the paper's definition: "
                           "TRANSFER(MLM, T) ≥ TRANSFER(T, T) (Chen et al. 2020, Fig. 2), allowing −1 SD over seeds of "
                           "TRANSFER(T, T), the paper's own notion of matching (Table 2)")
        universal.append(judge("transfer", "", "", paired(mlm, own, "transfer", f"mlm vs own -> {task}"), margin, ">",
                               f"{task}: MLM − own IMP subnetwork"))
        shown += _one_shot_shown(rows, transfer, task, sparsity, accuracy)
        full_t = {s: r[accuracy] for s, r in imp_at(task, 0.0).items()}
        strict.append(judge("transfer_matches_full", "", "", paired(mlm, full_t, "transfer_matches_full",
                            f"mlm -> {task}"), sd_margin(full_t, "transfer_matches_full", FULL_MARGIN, "ours"), ">",
                            f"{task}: MLM − full"))
        strict.append(judge("transfer_matches_full", "", "", paired(mlm, _transfer_values(transfer, "random", task,
                            accuracy), "transfer_matches_full", f"random -> {task}"),
                            direction_only(f"MLM vs random masks on {task} (ours: the paper has no random row)"), ">",
                            f"{task}: MLM − random"))
    listed = lambda parts: "; ".join(f"{p.measured}: {fmt_interval(p)} (threshold {p.threshold:+.2f})"  # noqa: E731
                                     for p in parts)
    return [combine(universal, "transfer",
                    f"At {at_transfer}, the MLM subnetwork fine-tuned on every downstream task T is not worse than T's "
                    "own IMP subnetwork at the same sparsity (MLM − own, paired per seed, with its whole interval above "
                    "−1 SD of own over seeds): Chen et al.'s universal transfer",
                    "TRANSFER(MLM, T) ≥ TRANSFER(T, T) on 10 of 11 targets at 70% sparsity (Chen et al. 2020, Fig. 2)",
                    listed(universal) + shown),
            combine(strict, "transfer_matches_full",
                    f"Ours, stricter than the paper: at {at_transfer}, the MLM subnetwork fine-tuned on every downstream "
                    "task matches the full model (above −1 SD of full) and beats a random mask of the same sparsity",
                    "ours (stricter than the paper): Chen et al. 2020, Fig. 2 compare with TRANSFER(T, T), never with "
                    "the full model or a random mask; their MLM row falls below full on MRPC −3.65, RTE −6.35, CoLA "
                    "−7.36", listed(strict))]


# --- 06_deployment: what a ticket buys at inference ------------------------------------------------------
COMPACT_TARGET = Threshold(
    0.10, "ours: the deployment issue's own target (the compact ticket file at most 10% of the dense float32 "
          "state dict); no paper reports the file size of a bitmask ticket, and the storage formula "
          "(1 + 32·density)/32 puts the masked weights under 10% below 6.9% of them remaining", "ours")
LATENCY_DIRECTION = Threshold(1.0, "no number in the papers for this CPU and torch's kernels: judged on direction "
                                   "(a latency ratio below 1 is faster)", "direction")


def matching_rounds(rows: list[dict], accuracy: str) -> list[Verdict]:
    """Per IMP round, whether the ticket matches the dense network, as 01 judges it: ticket − dense per seed
    above minus one standard deviation (over seeds) of dense. `rows`: `imp.round_row` rows of kind "ticket"."""
    tickets = [r for r in rows if r["kind"] == "ticket"]
    dense = {r["seed"]: r[accuracy] for r in tickets if r["round"] == 0}
    threshold = matching_threshold(dense, "ticket_matches_dense")
    verdicts = []
    for index in sorted({r["round"] for r in tickets}):
        at = [r for r in tickets if r["round"] == index]
        v = judge("ticket_matches_dense", f"round {index} matches dense", "", paired(
            {r["seed"]: r[accuracy] for r in at}, dense, "ticket_matches_dense", f"round {index}"), threshold, ">", "")
        v.measured = f"round {index} ({pct(min(r['percent_remaining'] for r in at))}): ticket − dense {fmt_interval(v)}"
        verdicts.append(v)
    return verdicts


def sparsest_matching(verdicts: list[Verdict]) -> int | None:
    """The last (sparsest) round whose matching verdict holds; None when none does (not even the dense round)."""
    held = [i for i, v in enumerate(verdicts) if v.holds]
    return max(held) if held else None


def compact_ticket_claim(storage: list[dict], round_index: int | None, model: str, dataset: str,
                         reason: str = "") -> Verdict:
    """Compact file bytes / dense state-dict bytes, per seed, at IMP round `round_index` (the sparsest matching
    ticket; None when no round matches). `storage`: rows with seed, round, percent_remaining, compact, dense."""
    at_round = [r for r in storage if round_index is not None and r["round"] == round_index]
    if not at_round:
        return not_judged("compact_ticket_small", reason or "no IMP round matches the dense network in this run")
    ratios = {r["seed"]: r["compact"] / r["dense"] for r in at_round}
    percent = at_round[0]["percent_remaining"]
    threshold = setting("compact_ticket_small", model, dataset).threshold or COMPACT_TARGET
    v = judge("compact_ticket_small",
              f"At the sparsest matching ticket ({pct(percent)} of weights remaining) the compact ticket file (packed "
              f"bitmask + float32 kept values + unpruned tensors) is at most {100 * threshold.value:g}% of the dense "
              "float32 state dict's bytes",
              "ours: masks alone store every zero; the literature sells tickets on deployment (no paper number)", ratios, threshold, "<", "")
    v.measured = (f"compact / dense bytes at {pct(percent)}: {_span(v, 4)} over {v.seeds} seed(s) "
                  "(exact byte counts per seed)")
    return v


def _timed(rows: list[dict], claim: str, **where) -> tuple[list[float], contention.Window | None]:
    """The latency samples of the one row matching `where` and the contention they were timed under (None: not
    recorded); raises naming the claim and the row asked for."""
    match = [r for r in rows if all(r.get(k) == v for k, v in where.items())]
    if len(match) != 1:
        raise ValueError(f"claim {claim!r}: {len(match)} latency rows match {where} (expected exactly 1)")
    return list(match[0]["seconds"]), contention.from_record(match[0].get("contention"))


def _latency_ratio(rows: list[dict], claim: str, form: dict, reference: dict, statement: str, paper: str,
                   direction: str, what: str) -> Verdict:
    """Judge form / reference latency over paired, interleaved repeats (the i-th samples of each) against 1."""
    (a, load_a), (b, load_b) = _timed(rows, claim, **form), _timed(rows, claim, **reference)
    if len(a) != len(b):
        raise ValueError(f"claim {claim!r}: {len(a)} vs {len(b)} samples: the repeats are not paired")
    v = _latency_verdict(claim, statement, paper, a, b, LATENCY_DIRECTION, direction, ".3g", [load_a, load_b])
    v.measured = f"{what}: {v.measured}"
    return v


def _percent_of_round(rows: list[dict], round_index: int, claim: str) -> float:
    """The % of weights remaining of IMP round `round_index`, from the latency rows timed there."""
    found = {r["percent"] for r in rows if r.get("model") == "imp" and r.get("round") == round_index}
    if len(found) != 1:
        raise ValueError(f"claim {claim!r}: IMP round {round_index} was not timed (rows give {sorted(found)})")
    return found.pop()


def side_of_zero(low: float, high: float) -> str:
    """Where an interval lies against zero, in words, for diagnostics that are not claims."""
    return "above zero" if low > 0 else "below zero" if high < 0 else "not distinguishable from zero"


def crossover_text(crossover: Mapping) -> str:
    """A crossover (`deploy.crossovers`: where a form's median latency ratio to dense crosses 1) in words."""
    if crossover["how"] == "never":
        return "never faster than dense at the densities timed"
    if crossover["how"] == "all":
        return f"faster than dense at every density timed (up to {100 * crossover['density']:.1f}%)"
    return f"faster than dense below ≈ {100 * crossover['density']:.1f}% of weights remaining"


def matching_summary(verdicts: list[Verdict], percents: Sequence[float]) -> list[dict]:
    """One row per IMP round of `matching_rounds`' verdicts (round i at `percents[i]` % remaining), for tables
    and the record: estimate, interval, verdict, threshold."""
    return [{"round": i, "percent_remaining": percents[i], "estimate": v.estimate, "interval": list(v.interval),
             "verdict": v.verdict, "threshold": v.threshold} for i, v in enumerate(verdicts)]


def sparse_latency_claims(rows: list[dict], sparsest_round: int, moderate_round: int, batch: int, threads: int,
                          crossovers: Mapping[str, Mapping]) -> list[Verdict]:
    """Sparse (CSR) kernels against dense, batch `batch`: faster at the sparsest ticket timed (IMP round
    `sparsest_round`), slower at moderate sparsity (`moderate_round`). `rows`: latency rows (model, form,
    round, percent, batch, threads, seconds); `crossovers` (`deploy.crossovers`): the CSR crossover of this
    batch and thread setting is named in the measured string."""
    csr = [c for c in crossovers.values() if (c["layout"], c["batch"], c["threads"]) == ("csr", batch, threads)]
    if len(csr) != 1:
        raise ValueError(f"sparse_kernels_pay_when_sparse: no CSR crossover for batch {batch}, threads {threads}")
    crossover = f"CSR {crossover_text(csr[0])} (batch {batch}, medians)"
    sparsest = _percent_of_round(rows, sparsest_round, "sparse_kernels_pay_when_sparse")
    moderate = _percent_of_round(rows, moderate_round, "sparse_kernels_lose_at_moderate_sparsity")
    dense = dict(model="imp", form="dense", batch=batch, threads=threads)
    setting_text = f"batch {batch}, {threads} thread(s)"
    pays = _latency_ratio(
        rows, "sparse_kernels_pay_when_sparse", dict(dense, form="csr", percent=sparsest), dense,
        f"At {pct(sparsest)} of weights remaining (the sparsest ticket timed), the ticket on torch's CSR kernels runs "
        f"a forward pass faster than the dense network ({setting_text}; CSR / dense latency < 1): there is a density "
        "below which sparse kernels pay", "tickets are sold on inference cost; no paper measures torch's CPU kernels",
        "<", f"CSR / dense at {pct(sparsest)}")
    pays.measured += f"; {crossover}"
    loses = _latency_ratio(
        rows, "sparse_kernels_lose_at_moderate_sparsity", dict(dense, form="csr", percent=moderate), dense,
        f"At moderate sparsity ({pct(moderate)} of weights remaining) sparse kernels do not pay: the CSR ticket is "
        f"slower than the dense network ({setting_text}; CSR / dense latency > 1)",
        "unstructured sparsity is commonly said to pay only at high sparsity on general-purpose hardware; "
        "no paper number for this CPU", ">", f"CSR / dense at {pct(moderate)}")
    return [pays, loses]


def slim_latency_claim(rows: list[dict], ratio: float, batches: Sequence[int], threads: int) -> Verdict:
    """The early-bird network slimmed at p = `ratio` against its dense network, one part per batch size."""
    parts = [_latency_ratio(rows, "slim_network_is_faster", dict(model="earlybird", form="slim", ratio=ratio,
                                                                 batch=b, threads=threads),
                            dict(model="earlybird", form="dense", batch=b, threads=threads), "", "", "<",
                            f"batch {b}") for b in batches]
    v = combine(parts, "slim_network_is_faster",
                f"The early-bird network physically slimmed at p = {ratio} runs a forward pass faster than the dense "
                f"network at every batch size ({', '.join(str(b) for b in batches)}; {threads} thread(s); slim / dense "
                "latency < 1 over interleaved repeats)",
                "structured (channel) pruning shrinks the network itself, so every kernel gets cheaper (You et al. 2020, unverified)",
                "; ".join(p.measured for p in parts))
    v.contention = contention.summary([contention.from_record(p.contention["window"]) for p in parts])
    return v


# --- parameter checks: refuse, before anything runs, params whose claims could not be judged -------------
def check_params(run: str, params: Mapping) -> list[str]:
    """Problems that would leave a claim of notebook `run` unjudgeable (empty when none)."""
    check = PARAM_CHECKS.get(run)
    return check(params) if check else []


def _near(level: float, levels: Sequence[float]) -> bool:
    return any(lv > 0 and abs(math.log(lv / level)) < 0.05 for lv in levels)


def _seeds(p: Mapping, need: str = "the claims compare over seeds and need at least 2") -> list[str]:
    return [f"'seeds' has {len(p['seeds'])}; {need}"] if len(p["seeds"]) < 2 else []


def _included(p: Mapping, needs: Mapping[str, list[str]]) -> list[str]:
    """One error per params list that lacks names the claims judge."""
    missing = {key: [n for n in names if n not in p[key]] for key, names in needs.items()}
    return [f"'{key}' must include {names} (the claims judge them)" for key, names in missing.items() if names]


def check_imp_params(p: Mapping) -> list[str]:
    errors = _seeds(p)
    level = level_for("ticket_matches_dense", p["model"], p["dataset"], 3.6)[0]  # imp_claims' default level
    if not _near(level, p["control_levels"]):
        errors.append(f"'control_levels' {p['control_levels']} must include {level:g} "
                      f"(the level the claims judge for {p['model']}/{p['dataset']})")
    reached = 100 * (1 - p["prune_fraction"]) ** p["rounds"]
    if reached > 1.25 * level:
        errors.append(f"'rounds' = {p['rounds']} at 'prune_fraction' {p['prune_fraction']} stops at "
                      f"~{reached:.1f}%, short of {level:g}% where the claims judge")
    return errors


def check_conservation_params(p: Mapping) -> list[str]:
    errors = _seeds(p, "the trained-accuracy claims need at least 2")
    if "synflow" not in p["methods"] or len(p["methods"]) < 2:
        errors.append(f"'methods' {p['methods']} must include synflow and at least one other method")
    missing = [m for m in p["control_methods"] if m not in p["methods"]]
    if missing or "shuffle" not in p["controls"]:
        errors.append(f"the shuffle claim needs 'shuffle' in controls and control_methods {p['control_methods']} "
                      f"among methods {p['methods']}")
    return errors


def check_bert_params(p: Mapping) -> list[str]:
    errors = _seeds(p)
    if not p["mlm"]:
        errors.append("'mlm' must be true: the transfer claim judges the MLM subnetwork")
    errors += _included(p, {"controls": ["random_pruning", "random_weights"]})
    if p["claim_sparsity"] not in p["control_sparsities"]:
        errors.append("'control_sparsities' must include 'claim_sparsity' (the claims compare IMP with its controls there)")
    if p["rounds"] * p["prune_fraction"] < p["claim_sparsity"] - 1e-9:
        errors.append(f"'rounds' x 'prune_fraction' = {p['rounds'] * p['prune_fraction']:g} stops short of "
                      f"claim_sparsity {p['claim_sparsity']:g}")
    from .text import size_problems  # GLUE's split sizes are known before anything downloads

    if p.get("glue", "nyu-mll/glue") == "nyu-mll/glue" and "tasks" in p:
        errors += size_problems(p["tasks"], {part: p.get(f"{part}_size") for part in ("train", "val", "test")})
    return errors


def check_earlybird_params(p: Mapping) -> list[str]:
    errors = _seeds(p)
    missing = [r for r in p["pipeline_ratios"] if r not in p["ratios"]]
    if missing or not p["pipeline_ratios"]:
        errors.append(f"'pipeline_ratios' {p['pipeline_ratios']} must be a non-empty subset of 'ratios' {p['ratios']}")
    if p["latency_ratio_p"] not in p["pipeline_ratios"]:
        errors.append(f"'latency_ratio_p' {p['latency_ratio_p']} must be one of 'pipeline_ratios' "
                      f"{p['pipeline_ratios']}: the claims judge the pipelines and the latency at that p")
    if p["latency_repeats"] < 2:
        errors.append("'latency_repeats' must be at least 2 for an interval")
    return errors


def check_anatomy_params(p: Mapping) -> list[str]:
    errors = _seeds(p) + _included(p, {"criteria_trained": ["large_final", "magnitude_increase", "random"],
                                       "mask1_actions": ["signed_constant", "random_sign_constant"],
                                       "supermask_criteria": ["large_final_same_sign"]})
    for key in ["criteria_levels", "action_levels"]:
        if not _near(p["claim_level"], p[key]):
            errors.append(f"'{key}' {p[key]} must include claim_level {p['claim_level']:g}")
    return errors


def check_deployment_params(p: Mapping) -> list[str]:
    errors = []
    for key, run in [("imp_params", "01_imp"), ("earlybird_params", "04_early_tickets")]:
        stem = str(p[key]).rsplit("/", 1)[-1].removesuffix(".yaml")
        if not str(p[key]).endswith(".yaml") or stem.split("-")[0] != run:
            errors.append(f"'{key}' = {p[key]!r} must name a {run} params file (params/<profile>/{run}[-variant].yaml)")
    batches = list(p["batch_sizes"])
    if 1 not in batches or max(batches, default=1) <= 1:
        errors.append(f"'batch_sizes' {batches} must include 1 and a larger batch: the claims judge both")
    if p["claim_threads"] not in p["threads"]:
        errors.append(f"'claim_threads' {p['claim_threads']} must be one of 'threads' {p['threads']}")
    if p["latency_repeats"] < 2:
        errors.append("'latency_repeats' must be at least 2 for an interval")
    if not 0 < p["moderate_percent"] < 100:
        errors.append(f"'moderate_percent' {p['moderate_percent']} must lie strictly between 0 and 100")
    return errors


def check_stability_params(p: Mapping) -> list[str]:
    """07_stability: seeds for intervals, 01's params file, the claim level among the analysed levels, k = 0 and a
    later rewind point (the CNN claim compares them)."""
    errors = _seeds(p)
    stem = str(p["imp_params"]).rsplit("/", 1)[-1].removesuffix(".yaml")
    if not str(p["imp_params"]).endswith(".yaml") or stem.split("-")[0] != "01_imp":
        errors.append(f"'imp_params' = {p['imp_params']!r} must name a 01_imp params file")
    if not _near(p["claim_level"], p["lenet_levels"]):
        errors.append(f"'lenet_levels' {p['lenet_levels']} must include claim_level {p['claim_level']:g}")
    points = [str(k).strip() for k in p["rewind_points"]]
    if "0it" not in points or len(set(points)) < 2:
        errors.append(f"'rewind_points' {p['rewind_points']} must include 0it and a later point (the CNN claim compares them)")
    return errors


PARAM_CHECKS: dict[str, Callable[[Mapping], list[str]]] = {
    "01_imp": check_imp_params, "02_conservation": check_conservation_params, "03_bert_transfer": check_bert_params,
    "04_early_tickets": check_earlybird_params, "05_anatomy": check_anatomy_params,
    "06_deployment": check_deployment_params, "07_stability": check_stability_params}

"""Verdicts over seeds: every claim of every notebook is judged here, never in a notebook cell.

A claim is a statistic per seed (usually a *paired* difference of two runs that share a seed, such
as a ticket minus the dense network of the same seed), a threshold with its source, and the side of
the threshold the paper claims (`direction` ">" or "<").

Method: the mean over seeds and a two-sided 95% Student-t confidence interval on it,
mean ± t(0.975, n−1) · s / √n (s the sample standard deviation of the per-seed values). Then

- ``holds``        the whole interval lies on the claimed side of the threshold;
- ``fails``        the whole interval lies on the other side;
- ``inconclusive`` otherwise (a single seed of a noisy quantity is always inconclusive).

A deterministic quantity (a data-free computation at one initialisation, or a numerical identity)
has a point interval: there is no seed noise to average out. A claim made of several parts holds
when every part holds, fails when any part fails, and is inconclusive otherwise.

Thresholds are looked up per (claim, model, dataset) in `SETTINGS`, each with its source. Where a
paper gives no number for a setting the threshold is 0 and the claim is judged on direction only
(it says so); a threshold of our own is labelled "ours" with its reason. "Matching" follows Chen et
al. 2020 (Table 2) and Frankle et al. 2020: within one standard deviation (over seeds) of the full
model's accuracy, so its threshold is minus that standard deviation, computed from the run.
Missing values and NaN raise an error naming the claim and the seed: never a silent False.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

CONFIDENCE = 0.95
METHOD = ("mean over seeds with a two-sided 95% Student-t interval on the per-seed (paired) values; "
          "holds when the whole interval lies on the claimed side of the threshold, fails when it lies "
          "wholly on the other side, inconclusive otherwise")
VERDICTS = ("holds", "fails", "inconclusive")
KINDS = ("finding", "identity")
BASES = ("paper", "direction", "ours", "definition")


@dataclass(frozen=True)
class Threshold:
    """A threshold and where it comes from.

    basis: "paper" (a number the paper reports for this setting), "direction" (the paper gives no
    number here: 0, judged on the sign only), "definition" (a paper's definition applied to this
    run, e.g. matching = within one standard deviation) or "ours" (our own, `source` says why).
    """

    value: float
    source: str
    basis: str = "paper"

    def __post_init__(self):
        if self.basis not in BASES:
            raise ValueError(f"threshold basis must be one of {BASES}, got {self.basis!r}")
        if not math.isfinite(self.value):
            raise ValueError(f"threshold must be finite, got {self.value} ({self.source})")


def direction_only(setting: str) -> Threshold:
    """Threshold 0, for a setting the paper gives no number for."""
    return Threshold(0.0, f"no number in the paper for {setting}: judged on direction only", "direction")


@dataclass
class Verdict:
    """One judged claim, as it goes into the run record (DESIGN.md §4 of the project's contract)."""

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

    @property
    def holds(self) -> bool:
        return self.verdict == "holds"

    def to_dict(self) -> dict:
        body = asdict(self)
        body["interval"] = list(self.interval)
        body["holds"] = self.holds
        return body


def interval(values: Sequence[float], confidence: float = CONFIDENCE,
             deterministic: bool = False) -> tuple[float, float, float]:
    """(mean, low, high): a Student-t interval over the values, a point for a deterministic one.

    One value of a noisy quantity gives (v, -inf, inf): nothing is known about its spread.
    """
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
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


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
    """A claim of several parts: holds if all hold, fails if any fails, else inconclusive.

    The estimate, interval and threshold shown are the first part's; every part is kept in `parts`.
    """
    if not parts:
        raise ValueError(f"claim {claim_id!r}: no parts")
    outcomes = [p.verdict for p in parts]
    verdict = ("fails" if "fails" in outcomes else "holds" if all(o == "holds" for o in outcomes)
               else "inconclusive")
    head = parts[0]
    return Verdict(claim_id, statement, paper, "; ".join(dict.fromkeys(p.source for p in parts)), head.direction,
                   head.threshold, head.threshold_basis, head.estimate, head.interval, min(p.seeds for p in parts),
                   verdict, measured, head.kind, head.values, [p.to_dict() for p in parts])


def matching_threshold(reference: Mapping, claim: str) -> Threshold:
    """Minus one standard deviation over seeds of the reference (full/dense) accuracy: the papers'
    'matching' (Chen et al. 2020, Table 2; Frankle et al. 2020). Needs two or more seeds."""
    values = list(checked(reference, claim).values())
    if len(values) < 2:
        raise ValueError(f"claim {claim!r}: 'matching' needs the reference's standard deviation over >= 2 seeds")
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return Threshold(-sd, "matching = within one standard deviation (over seeds) of the full model's accuracy "
                          "(Chen et al. 2020, Table 2; Frankle et al. 2020)", "definition")


# --- per-setting thresholds and levels, from the papers ----------------------------------------------
# key: (claim, model, dataset). "level" is where a claim is judged (% of weights remaining or a sparsity),
# "threshold" the number the estimate is compared with. Every entry names its source.
@dataclass(frozen=True)
class Setting:
    level: float | None = None
    threshold: Threshold | None = None
    paper: str = ""


SETTINGS: dict[tuple[str, str, str], Setting] = {
    # Frankle & Carbin 2019: the sparsest level at which IMP tickets reach the dense accuracy.
    ("ticket_matches_dense", "lenet_300_100", "mnist"): Setting(
        3.6, paper="LeNet-300-100/MNIST: tickets reach dense accuracy down to 3.6% (Frankle & Carbin 2019, Fig. 3)"),
    ("ticket_matches_dense", "conv2", "cifar10"): Setting(
        8.8, paper="Conv-2/CIFAR-10: matching at 8.8% (Frankle & Carbin 2019, Fig. 5)"),
    ("ticket_matches_dense", "conv4", "cifar10"): Setting(
        9.2, paper="Conv-4/CIFAR-10: matching at 9.2% (Frankle & Carbin 2019, Fig. 5)"),
    ("ticket_matches_dense", "conv6", "cifar10"): Setting(
        15.1, paper="Conv-6/CIFAR-10: matching at 15.1% (Frankle & Carbin 2019, Fig. 5)"),
    ("ticket_matches_dense", "resnet20", "cifar10"): Setting(
        16.8, paper="ResNet-20/CIFAR-10 with late rewinding: sparsest matching 16.8% (Frankle et al. 2020, Table 1)"),
    ("ticket_matches_dense", "vgg16", "cifar10"): Setting(
        1.5, paper="VGG-16/CIFAR-10 with late rewinding: sparsest matching 1.5% (Frankle et al. 2020, Table 1)"),
    # Frankle & Carbin 2019: tickets reach minimum validation loss earlier (LeNet: ~38% earlier at 21%).
    ("ticket_learns_faster", "lenet_300_100", "mnist"): Setting(
        21.1, paper="LeNet-300-100: early stop ~38% earlier at 21.1% (Frankle & Carbin 2019, Fig. 3)"),
    ("ticket_learns_faster", "conv2", "cifar10"): Setting(
        8.8, paper="Conv-2: minimum validation loss 3.5x sooner at 8.8% (Frankle & Carbin 2019, Sec. 3)"),
    ("ticket_learns_faster", "conv4", "cifar10"): Setting(
        9.2, paper="Conv-4: minimum validation loss 3.5x sooner at 9.2% (Frankle & Carbin 2019, Sec. 3)"),
    ("ticket_learns_faster", "conv6", "cifar10"): Setting(
        15.1, paper="Conv-6: minimum validation loss 2.5x sooner at 15.1% (Frankle & Carbin 2019, Sec. 3)"),
    # Tanaka et al. 2020: critical compressions on VGG-16 (CIFAR-100): SynFlow 10^6.0, best single-shot 10^3.5.
    ("synflow_max_critical_compression", "vgg16", "*"): Setting(
        threshold=Threshold(2.5, "Tanaka et al. 2020, Fig. 3, VGG-16: SynFlow 10^6.0 vs best single-shot "
                                 "(SNIP, GraSP) 10^3.5, a gap of 2.5 in log10 (data-free, so the dataset only "
                                 "sets the input shape)"),
        paper="VGG-16: SynFlow 10^6 vs ≤ 10^3.5 (Tanaka et al. 2020, Fig. 3)"),
    # Zhou et al. 2019: the large_final_same_sign supermask on MNIST reaches 86% untrained.
    ("supermask", "lenet_300_100", "mnist"): Setting(
        threshold=Threshold(86.0, "Zhou et al. 2019: 86% on MNIST (abstract; Fig. 5, large_final_same_sign)"),
        paper="86% test accuracy untrained on MNIST (Zhou et al. 2019)"),
    ("supermask", "conv4", "cifar10"): Setting(
        threshold=Threshold(41.0, "Zhou et al. 2019: 41% on CIFAR-10 (abstract)"),
        paper="41% test accuracy untrained on CIFAR-10 (Zhou et al. 2019)"),
}


def setting(claim: str, model: str, dataset: str) -> Setting:
    """The papers' level/threshold for a claim in a setting; an empty Setting when the papers give none."""
    return SETTINGS.get((claim, model, dataset)) or SETTINGS.get((claim, model, "*")) or Setting()


def threshold_for(claim: str, model: str, dataset: str) -> Threshold:
    """The paper's threshold for this setting, or direction only (0) when it gives none."""
    found = setting(claim, model, dataset).threshold
    return found if found is not None else direction_only(f"{claim} on {model}/{dataset}")


def level_for(claim: str, model: str, dataset: str, default: float) -> tuple[float, str]:
    """(level, where it comes from): the paper's level for this setting, else `default`, labelled as ours."""
    found = setting(claim, model, dataset)
    if found.level is not None:
        return found.level, found.paper
    return default, f"no level in the papers for {model}/{dataset}: ours ({default:g}, set in the params file)"


def fmt_interval(v: Verdict, unit: str = "pp", digits: int = 2) -> str:
    """'+0.42 pp [−0.10, +0.94], 4 seeds' for measured strings and tables."""
    low, high = v.interval
    if v.seeds == 1 and low == high:
        return f"{v.estimate:+.{digits}f} {unit} (deterministic)"
    if v.seeds == 1:
        return f"{v.estimate:+.{digits}f} {unit} (one seed: no interval)"
    return f"{v.estimate:+.{digits}f} {unit} [{low:+.{digits}f}, {high:+.{digits}f}], {v.seeds} seed(s)"


# --- tidy rows -> per-seed values ---------------------------------------------------------------------
def nearest_round(rows: list[dict], seed, percent: float) -> dict:
    """The ticket row of `seed` whose % remaining is nearest `percent` (log scale)."""
    tickets = [r for r in rows if r["seed"] == seed and r["kind"] == "ticket"]
    if not tickets:
        raise ValueError(f"no IMP rounds for seed {seed}")
    return min(tickets, key=lambda r: abs(math.log(max(r["percent_remaining"], 1e-12) / percent)))


def at_level(rows: list[dict], kind: str, percent: float, column: str) -> dict:
    """Per seed, `column` of the `kind` run at the IMP round nearest `percent` % remaining.

    Raises naming the kind and the level when a seed has no such run (a control not trained there).
    """
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


# --- 01_imp: winning tickets --------------------------------------------------------------------------
def imp_claims(rows: list[dict], model: str, dataset: str, accuracy: str, step_schedule: bool,
               default_level: float = 3.6, default_fast_level: float = 21.1) -> list[Verdict]:
    """The four IMP findings from `imp.imp_study` rows (kinds ticket, reinit, random_mask).

    `accuracy`: the row column judged ("test_accuracy" at early stop, or "final_test_accuracy" for SGD
    step-schedule runs, whose papers report the end of training). `step_schedule` drops the
    learns-faster claim: early stopping is not what those papers measure.
    """
    level, level_source = level_for("ticket_matches_dense", model, dataset, default_level)
    dense = at_level(rows, "ticket", 100.0, accuracy)
    ticket = at_level(rows, "ticket", level, accuracy)
    actual = pct(next(iter(at_level(rows, "ticket", level, "percent_remaining").values())))
    setting_name = f"{model}/{dataset}"
    verdicts = []
    gap = paired(ticket, dense, "ticket_matches_dense")
    threshold = matching_threshold(dense, "ticket_matches_dense")
    v = judge("ticket_matches_dense",
              f"At ≈{level:g}% of weights remaining ({actual}) the IMP ticket matches the dense network "
              "(ticket − dense above minus one standard deviation of dense)",
              level_source, gap, threshold, ">", "")
    v.measured = f"ticket − dense at {actual}: {fmt_interval(v)}; threshold {threshold.value:+.2f} pp (−1 SD of dense)"
    verdicts.append(v)
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
        at = pct(next(iter(at_level(rows, "ticket", fast_level, "percent_remaining").values())))
        v = judge("ticket_learns_faster",
                  f"At ≈{fast_level:g}% ({at}) the ticket reaches its minimum validation loss earlier than dense "
                  "(dense − ticket early-stop iteration > 0)", fast_source, earlier,
                  direction_only(f"the size of the speed-up on {setting_name}"), ">", "")
        v.measured = f"dense − ticket early-stop iteration at {at}: {fmt_interval(v, 'it', 0)}"
        verdicts.append(v)
    return verdicts


def imp_required_levels(model: str, dataset: str, default_level: float = 3.6) -> list[float]:
    """The % remaining where 01's controls must be trained for its claims."""
    return [level_for("ticket_matches_dense", model, dataset, default_level)[0]]


def why(claim: Mapping) -> str:
    """One sentence on what decided a recorded claim's verdict."""
    low, high = claim["interval"]
    side = "above" if claim["direction"] == ">" else "below"
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


# --- parameter checks: refuse, before anything runs, params whose claims could not be judged -------------
def _near(level: float, levels: Sequence[float]) -> bool:
    return any(lv > 0 and abs(math.log(lv / level)) < 0.05 for lv in levels)


def check_imp_params(p: Mapping) -> list[str]:
    errors = []
    if len(p["seeds"]) < 2:
        errors.append(f"'seeds' has {len(p['seeds'])}; the claims compare over seeds and need at least 2")
    for level in imp_required_levels(p["model"], p["dataset"]):
        if not _near(level, p["control_levels"]):
            errors.append(f"'control_levels' {p['control_levels']} must include {level:g} "
                          f"(the level the claims judge for {p['model']}/{p['dataset']})")
        if 100 * (1 - p["prune_fraction"]) ** p["rounds"] > 1.25 * level:
            errors.append(f"'rounds' = {p['rounds']} at 'prune_fraction' {p['prune_fraction']} stops at "
                          f"~{100 * (1 - p['prune_fraction']) ** p['rounds']:.1f}%, short of {level:g}% where the claims judge")
    return errors


PARAM_CHECKS: dict[str, object] = {"01_imp": check_imp_params}


def check_params(run: str, params: Mapping) -> list[str]:
    """Problems that would leave a claim of notebook `run` unjudgeable (empty when none)."""
    check = PARAM_CHECKS.get(run)
    return check(params) if check else []

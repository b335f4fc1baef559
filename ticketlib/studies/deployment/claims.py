"""06_deployment's claims: what a ticket buys at inference (storage, latency), judged from the run's own measurements."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from ticketlib.verdicts.engine import latency_verdict
from ticketlib.verdicts.engine import Verdict, _span, combine, fmt_interval, judge, matching_threshold, not_judged, paired, pct
from ticketlib.infra import contention
from ticketlib.studies.imp.rows import RunRow
from ticketlib.verdicts.thresholds import Threshold, setting



# --- 06_deployment: what a ticket buys at inference ------------------------------------------------------
COMPACT_TARGET = Threshold(
    0.10, "ours: the deployment issue's own target (the compact ticket file at most 10% of the dense float32 "
          "state dict); no paper reports the file size of a bitmask ticket, and the storage formula "
          "(1 + 32·density)/32 puts the masked weights under 10% below 6.9% of them remaining", "ours")
LATENCY_DIRECTION = Threshold(1.0, "no number in the papers for this CPU and torch's kernels: judged on direction "
                                   "(a latency ratio below 1 is faster)", "direction")


def matching_rounds(rows: Sequence[RunRow], accuracy: str) -> list[Verdict]:
    """Per IMP round, whether the ticket matches the dense network, as 01 judges it: ticket − dense per seed
    above minus one standard deviation (over seeds) of dense. `rows`: 01's `RunRow`s; only kind "ticket" is read."""
    tickets = [r for r in rows if r.kind == "ticket"]
    dense = {r.seed: r.value(accuracy) for r in tickets if r.round == 0}
    threshold = matching_threshold(dense, "ticket_matches_dense")
    verdicts = []
    for index in sorted({r.round for r in tickets}):
        at = [r for r in tickets if r.round == index]
        where = f"round {index} ({pct(min(r.percent_remaining for r in at))})"
        verdicts.append(judge(
            "ticket_matches_dense", statement=f"round {index} matches dense", paper="",
            values=paired({r.seed: r.value(accuracy) for r in at}, dense, "ticket_matches_dense", f"round {index}"),
            threshold=threshold, direction=">",
            measured=lambda v, where=where: f"{where}: ticket − dense {fmt_interval(v)}"))
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
    return judge("compact_ticket_small",
                 statement=f"At the sparsest matching ticket ({pct(percent)} of weights remaining) the compact ticket "
                           "file (packed bitmask + float32 kept values + unpruned tensors) is at most "
                           f"{100 * threshold.value:g}% of the dense float32 state dict's bytes",
                 paper="ours: masks alone store every zero; the literature sells tickets on deployment (no paper "
                       "number)",
                 values=ratios, threshold=threshold, direction="<",
                 measured=lambda v: (f"compact / dense bytes at {pct(percent)}: {_span(v, 4)} over {v.seeds} seed(s) "
                                     "(exact byte counts per seed)"))


def _timed(rows: list[dict], claim: str, **where) -> tuple[list[float], contention.Window | None]:
    """The latency samples of the one row matching `where` and the contention they were timed under (None: not
    recorded); raises naming the claim and the row asked for."""
    match = [r for r in rows if all(r.get(k) == v for k, v in where.items())]
    if len(match) != 1:
        raise ValueError(f"claim {claim!r}: {len(match)} latency rows match {where} (expected exactly 1)")
    return list(match[0]["seconds"]), contention.from_record(match[0].get("contention"))


def _latency_ratio(rows: list[dict], claim: str, form: dict, reference: dict, statement: str, paper: str,
                   direction: str, what: str, note: str = "") -> Verdict:
    """Judge form / reference latency over paired, interleaved repeats (the i-th samples of each) against 1; the
    measured text starts with `what` and ends with `note` (if any)."""
    (a, load_a), (b, load_b) = _timed(rows, claim, **form), _timed(rows, claim, **reference)
    if len(a) != len(b):
        raise ValueError(f"claim {claim!r}: {len(a)} vs {len(b)} samples: the repeats are not paired")
    return latency_verdict(claim, statement=statement, paper=paper, a=a, b=b, threshold=LATENCY_DIRECTION,
                           direction=direction, median_format=".3g", windows=[load_a, load_b], label=what, note=note)


def _percent_of_round(rows: list[dict], round_index: int, claim: str) -> float:
    """The % of weights remaining of IMP round `round_index`, from the latency rows timed there."""
    found = {r["percent"] for r in rows if r.get("model") == "imp" and r.get("round") == round_index}
    if len(found) != 1:
        raise ValueError(f"claim {claim!r}: IMP round {round_index} was not timed (rows give {sorted(found)})")
    return found.pop()


def crossover_text(crossover: Mapping) -> str:
    """A crossover (`ticketlib.studies.deployment.study.crossovers`: where a form's median latency ratio to dense crosses 1) in words."""
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
    round, percent, batch, threads, seconds); `crossovers` (`ticketlib.studies.deployment.study.crossovers`): the CSR crossover of this
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
        "<", f"CSR / dense at {pct(sparsest)}", note=crossover)
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
    return combine(parts, "slim_network_is_faster",
                   statement=f"The early-bird network physically slimmed at p = {ratio} runs a forward pass faster "
                             f"than the dense network at every batch size ({', '.join(str(b) for b in batches)}; "
                             f"{threads} thread(s); slim / dense latency < 1 over interleaved repeats)",
                   paper="structured (channel) pruning shrinks the network itself, so every kernel gets cheaper (You "
                         "et al. 2020, unverified)",
                   measured="; ".join(p.measured for p in parts),
                   contention=contention.summary([contention.from_record(p.contention["window"]) for p in parts]))



"""04_early_tickets' claims: early-bird detection, the pipelines' costs and the slimmed network's latency (You et al. 2020)."""
from __future__ import annotations

from collections.abc import Mapping

from ticketlib.verdicts.engine import latency_verdict, under_load
from ticketlib.verdicts.engine import STRICTER, Verdict, fmt_interval, judge, matching_threshold, not_judged, paired
from ticketlib.infra import contention
from ticketlib.verdicts.thresholds import Threshold



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
    per_seed = "; ".join(f"seed {s}: " + ", ".join(f"p={r} {'never' if e is None else e}" for r, e in per_p.items())
                         for s, per_p in detected.items())
    v_early = judge("early_emergence",
                    statement=f"For every p the early-bird ticket is detected within the first "
                              f"{100 * early_fraction:.0f}% of the epochs (the latest p per seed; never detected counts "
                              "as 100%)",
                    paper="epochs 14–31 of 160, 9–19% (You et al. 2020, VGG-16/CIFAR-100; figure or table unverified "
                          "offline)",
                    values=fraction, threshold=early_threshold, direction="<",
                    measured=lambda v: (f"latest detection as a fraction of {epochs} epochs: {fmt_interval(v, '', 3)}; "
                                        f"per seed: {per_seed}"))
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
                    statement=f"At p = {costs[0]['ratio']}, the early-bird ticket trained to the end matches the ticket "
                              f"drawn from the fully trained network and retrained (EB − standard: {STRICTER})",
                    paper="comparable or better accuracy (You et al. 2020, Table 2)",
                    values=paired(early, standard, "eb_ticket_matches"), threshold=matching, direction=">",
                    measured=lambda v: (f"EB − standard ({'end of training' if step_schedule else 'early stop'}): "
                                        f"{fmt_interval(v)}; threshold {matching.value:+.2f} pp"))

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
                   statement=f"At p = {costs[0]['ratio']}, the early-bird pipeline costs ≤ {cost_ratio:g}x the standard "
                             "one in both measured wall time and FLOPs (the larger of the two ratios per seed)",
                   paper="up to 4.7x less energy (You et al. 2020, Fig. 5; figure number unverified offline)",
                   values=ratio, threshold=cost_threshold, direction="<",
                   measured=lambda v: (f"max(wall, FLOP) ratio: {fmt_interval(v, 'x', 3)}; FLOP ratio per seed: "
                                       + ", ".join(f"{r['early_flops'] / r['standard_flops']:.2f}x" for r in costs)))
    # the wall-time half is a timing: the contention rule over each seed's training units (FLOPs are not timed)
    return [v_match, under_load(v_cost, [contention.from_record(r.get("contention")) for r in costs],
                                what="wall times ")]


def earlybird_latency(latency: Mapping[str, list[float]], latency_p: float,
                      recorded: Mapping[str, Mapping] | None = None) -> list[Verdict]:
    """The slimmed network's forward-pass latency over the dense one's, over interleaved repeats, under the
    contention rule (`recorded`: each network's contention record; None: not measured)."""
    windows = [contention.from_record((recorded or {}).get(k)) for k in ("pruned", "dense")]
    return [latency_verdict("smaller_network_is_faster",
                            statement=f"The physically pruned network at p = {latency_p} runs a forward pass faster "
                                      "than the dense one (pruned / dense latency < 1, over interleaved repeats)",
                            paper="structured pruning cuts FLOPs and latency (You et al. 2020, section unverified)",
                            a=latency["pruned"], b=latency["dense"],
                            threshold=Threshold(1.0, "no number in the paper for this CPU: judged on direction (a "
                                                     "ratio below 1 is faster)", "direction"),
                            direction="<", median_format=".1f", windows=windows)]



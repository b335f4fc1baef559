"""07_stability's claims (Frankle, Dziugaite, Roy & Carbin 2020), judged over seeds from `stability.Case` rows.

Pre-registered before any `cpu` run (the params header repeats them):
1. `lenet_stable_at_init`: the dense LeNet and its IMP ticket at `claim_level` % (rewound to 0) have error barriers
   below the stability threshold `STABLE_BELOW` (two parts, each over seeds).
2. `ticket_stable_random_not`: at `claim_level` %, the random-mask subnetwork's barrier exceeds the ticket's
   (paired per seed, direction only).
3. `cnn_unstable_at_init`: the SGD-trained CNN's barrier at k = 0 exceeds its barrier at the latest k (paired per
   seed, direction only).
4. `stability_tracks_matching`: per seed, the fraction of subnetwork cases (LeNet: the tickets and the random
   mask at k = 0; CNN: its subnetwork at every k) where "stable" (barrier < `STABLE_BELOW`) and "matching"
   (01's definition: accuracy − dense accuracy of the same seed above minus one SD over seeds of the dense
   accuracy) agree; judged per network against `AGREEMENT_ABOVE` (ours).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ticketlib.verdicts.thresholds import Threshold, direction_only
from ticketlib.verdicts.engine import Verdict, combine, fmt_interval, interval, judge, matching_threshold, paired
from ticketlib.studies.anatomy.claims import select_values

STABLE_BELOW = Threshold(
    2.0, "Frankle et al. 2020, Sec. 3: a network is stable when its error barrier (instability) is below 2% "
    "(their definition, read from memory: unverified offline)", "paper")
AGREEMENT_ABOVE = Threshold(
    0.75, "ours: the paper says matching exactly when stable (agreement 1); an interval over seeds can never lie "
    "strictly above 1, so we ask that more than three quarters of the cases agree, fixed before the cpu run", "ours")
PAPER = "Frankle et al. 2020 (Linear Mode Connectivity and the Lottery Ticket Hypothesis), "


def _where(rows: Sequence[Mapping], network: str, kind: str, k: int | None = None,
           level: float | None = None) -> list[Mapping]:
    """The rows of one network and kind (at rewind iteration k; at the level nearest `level` % per seed)."""
    found = [r for r in rows if r["network"] == network and r["kind"] == kind and (k is None or r["k"] == k)]
    if level is None:
        return found
    nearest = {}
    for r in found:
        best = nearest.get(r["seed"])
        if best is None or abs(math.log(r["percent"] / level)) < abs(math.log(best["percent"] / level)):
            nearest[r["seed"]] = r
    return list(nearest.values())


def per_seed(rows: Sequence[Mapping], column: str, claim: str, network: str, kind: str, k: int | None = None,
             level: float | None = None) -> dict:
    """{seed: row[column]} of one case per seed; raises naming the claim when a seed has none or two."""
    chosen = _where(rows, network, kind, k, level)
    if not chosen:
        raise ValueError(f"claim {claim!r}: no {network} {kind} rows" + (f" at k = {k}" if k is not None else ""))
    return select_values(chosen, column, network=network, kind=kind)


def agreement(rows: Sequence[Mapping], network: str, accuracy: str, claim: str = "stability_tracks_matching"
              ) -> tuple[dict, dict]:
    """Per seed, the fraction of the network's subnetwork cases where stable and matching agree; and the counts
    {stable, matching, agree, cases} over all seeds (for the measured text)."""
    dense = per_seed(rows, accuracy, claim, network, "dense", k=0)
    threshold = matching_threshold(dense, claim).value
    cases = [r for r in rows if r["network"] == network and r["kind"] != "dense"]
    if not cases:
        raise ValueError(f"claim {claim!r}: no {network} subnetwork cases")
    counts = {"stable": 0, "matching": 0, "agree": 0, "cases": len(cases)}
    hits: dict = {}
    for r in cases:
        stable = r["barrier"] < STABLE_BELOW.value
        matching = r[accuracy] - dense[r["seed"]] > threshold
        counts["stable"] += stable
        counts["matching"] += matching
        counts["agree"] += stable == matching
        hits.setdefault(r["seed"], []).append(stable == matching)
    return {s: sum(h) / len(h) for s, h in hits.items()}, counts


def _barrier_part(rows: Sequence[Mapping], claim: str, kind: str, level: float | None, what: str) -> Verdict:
    values = per_seed(rows, "barrier", claim, "lenet", kind, k=0, level=level)
    return judge(claim, statement=f"{what} is stable at initialisation (error barrier < {STABLE_BELOW.value:g} pp)",
                 paper=PAPER + "Fig. 3: LeNet/MNIST and its IMP subnetworks are stable at k = 0", values=values,
                 threshold=STABLE_BELOW, direction="<", measured=lambda v: f"{what}: barrier {fmt_interval(v)}")


def stability_claims(rows: Sequence[Mapping], claim_level: float, latest_k: int,
                     lenet_accuracy: str = "test_accuracy", cnn_accuracy: str = "final_test_accuracy",
                     cnn: str = "the CNN") -> list[Verdict]:
    """The four claims of 07 from `stability.Case` rows (`Case.row()`), in the order of the module docstring."""
    parts = [_barrier_part(rows, "lenet_stable_at_init", "dense", None, "the dense LeNet"),
             _barrier_part(rows, "lenet_stable_at_init", "ticket", claim_level, f"the ≈{claim_level:g}% ticket")]
    verdicts = [combine(parts, "lenet_stable_at_init",
                        statement=f"LeNet-300-100 and its IMP ticket at ≈{claim_level:g}%, rewound to 0, have error "
                                  f"barriers below {STABLE_BELOW.value:g} pp",
                        paper=parts[0].paper, measured="; ".join(p.measured for p in parts))]

    gap = paired(per_seed(rows, "barrier", "ticket_stable_random_not", "lenet", "random_mask", 0, claim_level),
                 per_seed(rows, "barrier", "ticket_stable_random_not", "lenet", "ticket", 0, claim_level),
                 "ticket_stable_random_not")
    verdicts.append(judge("ticket_stable_random_not",
                          statement=f"At ≈{claim_level:g}% the random-mask subnetwork's barrier exceeds the IMP "
                                    "ticket's (random − ticket > 0)",
                          paper=PAPER + "Fig. 5: randomly pruned subnetworks are unstable where IMP's are stable (no "
                                "number)",
                          values=gap, threshold=direction_only("the barrier gap of random pruning"), direction=">",
                          measured=lambda v: f"random − ticket barrier at ≈{claim_level:g}%: {fmt_interval(v)}"))

    gap = paired(per_seed(rows, "barrier", "cnn_unstable_at_init", "cnn", "dense", 0),
                 per_seed(rows, "barrier", "cnn_unstable_at_init", "cnn", "dense", latest_k),
                 "cnn_unstable_at_init")
    verdicts.append(judge("cnn_unstable_at_init",
                          statement=f"{cnn}'s barrier at k = 0 exceeds its barrier at k = {latest_k} "
                                    f"(barrier(0) − barrier({latest_k}) > 0)",
                          paper=PAPER + "Fig. 3: ResNet-20 and VGG-16 on CIFAR-10 are unstable at k = 0 and stable "
                                "early in training (no number for this CNN)",
                          values=gap, threshold=direction_only(f"{cnn}'s barrier drop"), direction=">",
                          measured=lambda v: f"barrier(k=0) − barrier(k={latest_k}): {fmt_interval(v)}"))

    parts = []
    for network, accuracy in [("lenet", lenet_accuracy), ("cnn", cnn_accuracy)]:
        values, counts = agreement(rows, network, accuracy)
        parts.append(judge(
            "stability_tracks_matching", statement=f"{network}: stable exactly where matching",
            paper=PAPER + "Figs. 4–6: IMP subnetworks are matching exactly when they are stable", values=values,
            threshold=AGREEMENT_ABOVE, direction=">",
            measured=lambda v, network=network, counts=counts: (
                f"{network}: agreement {fmt_interval(v, 'of cases', 3)} ({counts['agree']} of {counts['cases']} "
                f"cases agree; {counts['stable']} stable, {counts['matching']} matching)")))
    verdicts.append(combine(parts, "stability_tracks_matching",
                            statement="Across subnetworks and rewind points, a subnetwork is matching (01's definition) "
                                      f"where it is stable (barrier < {STABLE_BELOW.value:g} pp): per-seed agreement "
                                      f"above {AGREEMENT_ABOVE.value:g}",
                            paper=parts[0].paper, measured="; ".join(p.measured for p in parts)))
    return verdicts


def barrier_table(rows: Sequence[Mapping], accuracy: Mapping[str, str]) -> list[dict]:
    """One row per (network, kind, % remaining, k): the mean barrier over seeds with its 95% interval and the mean
    test accuracy (`accuracy[network]`: the column 07 judges for that network), for the notebook and the record."""
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["network"], r["kind"], round(r["percent"], 1), r["k"]), []).append(r)
    table = []
    for (network, kind, percent, k), group in sorted(groups.items(),
                                                     key=lambda g: (g[0][0], g[0][1], -g[0][2], g[0][3])):
        mean, low, high = interval([g["barrier"] for g in group])
        table.append({"network": network, "kind": kind, "percent": percent, "k": k, "barrier": mean,
                      "barrier_low": low, "barrier_high": high, "stable": high < STABLE_BELOW.value,
                      "test_accuracy": sum(g[accuracy[network]] for g in group) / len(group), "seeds": len(group)})
    return table

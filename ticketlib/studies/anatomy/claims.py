"""05_anatomy's claims: Zhou et al. 2019's mask criteria, mask-1 actions and supermasks."""
from __future__ import annotations


from ticketlib.verdicts.engine import select_values
from ticketlib.verdicts.engine import Verdict, _mean, fmt_interval, judge, paired, pct
from ticketlib.verdicts.thresholds import direction_only, setting, threshold_for



# --- 05_anatomy: Zhou et al. 2019 ---------------------------------------------------------------------


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
                   statement=f"At {at}, the large_final and magnitude_increase masks (one shot, rewound) each train "
                             "above a random mask of the same per-layer densities (the smaller of the two margins per "
                             "seed > 0)",
                   paper="large_final and magnitude_increase work, random masks do not (Zhou et al. 2019, Fig. 2; "
                         "figure number unverified offline)",
                   values=worst, threshold=direction_only(f"criteria margins on {setting_name}"), direction=">",
                   measured=lambda v: (f"min(criterion − random) at {at}: {fmt_interval(v)}; means: "
                                       + ", ".join(f"{k} {_mean(m):+.2f} pp" for k, m in margins.items())))

    signs = paired(acc("mask1", "signed_constant"), acc("mask1", "random_sign_constant"), "signs_matter")
    rewind_minus_signed = paired(acc("mask1", "rewind"), acc("mask1", "signed_constant"), "signs_matter")
    v_sign = judge("signs_matter",
                   statement=f"At {at}, a constant with θ0's signs trains above a constant with random signs "
                             "(one-sided: signed − random-sign > 0)",
                   paper="keeping signs matters more than magnitudes (Zhou et al. 2019, Fig. 3; figure number "
                         "unverified offline)",
                   values=signs, threshold=direction_only(f"signs on {setting_name}"), direction=">",
                   measured=lambda v: (f"signed − random-sign constant at {at}: {fmt_interval(v)}; rewind − signed "
                                       f"constant {_mean(rewind_minus_signed):+.2f} pp (mean)"))

    zeros = paired(acc("mask0", "zero"), acc("mask0", "freeze"), "zeros_matter")
    v_zero = judge("zeros_matter",
                   statement=f"At {at}, setting the pruned weights to zero trains above freezing them at θ0 (zero − "
                             "freeze > 0)",
                   paper="mask-0 = zero beats freezing at init (Zhou et al. 2019, Fig. 4; figure number unverified "
                         "offline)",
                   values=zeros, threshold=direction_only(f"zeros on {setting_name}"), direction=">",
                   measured=lambda v: f"zero − freeze at {at}: {fmt_interval(v)}")

    config = [r for r in supermasks if r["criterion"] == "large_final_same_sign" and r["weights"] == "signed_constant"
              and r["source"] == "one shot"]
    chosen = {seed: max((r for r in config if r["seed"] == seed),
                        key=lambda r: (r["val_accuracy"], -r["percent_remaining"]))
              for seed in sorted({r["seed"] for r in config})}
    if not chosen:
        raise ValueError("claim 'supermask': no large_final_same_sign / signed_constant supermask was evaluated")
    threshold = threshold_for("supermask", model, dataset)
    v_super = judge("supermask",
                    statement="The paper's supermask (large_final_same_sign mask on signed-constant weights, "
                              "untrained), at the density chosen on validation, reaches the paper's test accuracy with "
                              "its whole interval: stricter than the paper, whose number is its best case over all "
                              "levels",
                    paper=setting("supermask", model, dataset).paper
                    or "supermasks far above chance (Zhou et al. 2019, abstract)",
                    values={s: r["test_accuracy"] for s, r in chosen.items()}, threshold=threshold, direction=">",
                    measured=lambda v: (f"test accuracy {fmt_interval(v, '%')} at "
                                        + ", ".join(f"{r['percent_remaining']:.1f}%" for r in chosen.values())
                                        + f" remaining (chosen on validation per seed); threshold {threshold.value:g}%"))
    return [v_crit, v_sign, v_zero, v_super]



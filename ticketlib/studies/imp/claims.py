"""01_imp's claims: winning tickets match the dense network, random re-init does not (Frankle & Carbin 2019; Frankle et al. 2020).

Rows of kind `EARLY_STOP_KIND` (extra seeds whose rounds stop at the learns-faster level, no controls) count for
`ticket_learns_faster` alone: every other claim reads kind "ticket" rows, which they are not.
"""
from __future__ import annotations

from collections.abc import Sequence

from ticketlib.studies.imp.rows import EARLY_STOP_KIND, RunRow, at_level, early_stop_pooled, level_text
from ticketlib.verdicts.engine import STRICTER, Verdict, fmt_interval, judge, matching_threshold, paired
from ticketlib.verdicts.thresholds import direction_only, level_for

__all__ = ["DEFAULT_FAST_LEVEL", "EARLY_STOP_KIND", "early_stop_pooled", "imp_claims", "learns_faster_level"]
DEFAULT_FAST_LEVEL = 21.1  # % remaining, where no paper gives the learns-faster level for the setting


def learns_faster_level(model: str, dataset: str, default: float = DEFAULT_FAST_LEVEL) -> float:
    """The % remaining at which `ticket_learns_faster` compares the ticket with dense (the paper's, else `default`):
    early-stop seeds train down to it."""
    return level_for("ticket_learns_faster", model, dataset, default)[0]


# --- 01_imp: winning tickets --------------------------------------------------------------------------
def imp_claims(rows: Sequence[RunRow], model: str, dataset: str, accuracy: str, step_schedule: bool,
               default_level: float = 3.6, default_fast_level: float = DEFAULT_FAST_LEVEL) -> list[Verdict]:
    """The four IMP findings from `imp.imp_study` rows (kinds ticket, reinit, random_mask, early_stop_ticket).
    `accuracy`: the column judged ("final_test_accuracy" for SGD step schedules, whose papers report the end of
    training); `step_schedule` drops the learns-faster claim: early stopping is not what those papers measure.
    The learns-faster claim pairs per seed over the full and the early-stop seeds; the others use the full ones."""
    level, level_source = level_for("ticket_matches_dense", model, dataset, default_level)
    dense = at_level(rows, "ticket", 100.0, accuracy)
    ticket = at_level(rows, "ticket", level, accuracy)
    actual = level_text(rows, level)
    setting_name = f"{model}/{dataset}"
    gap = paired(ticket, dense, "ticket_matches_dense")
    threshold = matching_threshold(dense, "ticket_matches_dense")
    v = judge("ticket_matches_dense",
              statement=f"At ≈{level:g}% of weights remaining ({actual}) the IMP ticket matches the dense network "
                        f"(ticket − dense: {STRICTER})",
              paper=level_source, values=gap, threshold=threshold, direction=">",
              measured=lambda v: (f"ticket − dense at {actual}: {fmt_interval(v)}; threshold {threshold.value:+.2f} "
                                  "pp (−1 SD of dense)"))
    verdicts = [v]
    for kind, cid, what in [("reinit", "reinit_falls_behind", "the same mask on re-initialised weights"),
                            ("random_mask", "random_mask_falls_behind",
                             "a random mask with the ticket's per-layer densities")]:
        gap = paired(ticket, at_level(rows, kind, level, accuracy), cid)
        v = judge(cid, statement=f"At ≈{level:g}% ({actual}) {what} trains below the ticket (ticket − control > 0)",
                  paper="random re-initialisation and random pruning fall behind the ticket (Frankle & Carbin 2019, "
                        "Figs. 3–4; no number at this level)",
                  values=gap, threshold=direction_only(setting_name), direction=">",
                  measured=lambda v, kind=kind: f"ticket − {kind} at {actual}: {fmt_interval(v)}")
        verdicts.append(v)
    if not step_schedule:
        fast_level, fast_source = level_for("ticket_learns_faster", model, dataset, default_fast_level)
        pooled = early_stop_pooled(rows)
        earlier = paired(at_level(pooled, "ticket", 100.0, "early_stop_iteration"),
                         at_level(pooled, "ticket", fast_level, "early_stop_iteration"), "ticket_learns_faster")
        at = level_text(rows, fast_level)
        v = judge("ticket_learns_faster",
                  statement=f"At ≈{fast_level:g}% ({at}) the ticket reaches its minimum validation loss earlier than "
                            "dense (dense − ticket early-stop iteration > 0)",
                  paper=fast_source, values=earlier,
                  threshold=direction_only(f"the size of the speed-up on {setting_name}"), direction=">",
                  measured=lambda v: f"dense − ticket early-stop iteration at {at}: {fmt_interval(v, 'it', 0)}")
        verdicts.append(v)
    return verdicts



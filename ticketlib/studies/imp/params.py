"""01_imp's params checks: the level the claims judge must be among the controls and reachable."""
from __future__ import annotations

from collections.abc import Mapping

from ticketlib.studies.checks import near_level, seed_problems
from ticketlib.verdicts.thresholds import level_for



def check_imp_params(p: Mapping) -> list[str]:
    errors = seed_problems(p)
    level = level_for("ticket_matches_dense", p["model"], p["dataset"], 3.6)[0]  # imp_claims' default level
    if not near_level(level, p["control_levels"]):
        errors.append(f"'control_levels' {p['control_levels']} must include {level:g} "
                      f"(the level the claims judge for {p['model']}/{p['dataset']})")
    reached = 100 * (1 - p["prune_fraction"]) ** p["rounds"]
    if reached > 1.25 * level:
        errors.append(f"'rounds' = {p['rounds']} at 'prune_fraction' {p['prune_fraction']} stops at "
                      f"~{reached:.1f}%, short of {level:g}% where the claims judge")
    return errors


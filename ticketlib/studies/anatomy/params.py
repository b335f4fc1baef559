"""05_anatomy's params checks."""
from __future__ import annotations

from ticketlib.studies.checks import missing_names, near_level, seed_problems
from collections.abc import Mapping




def check_anatomy_params(p: Mapping) -> list[str]:
    errors = seed_problems(p) + missing_names(p, {"criteria_trained": ["large_final", "magnitude_increase", "random"],
                                       "mask1_actions": ["signed_constant", "random_sign_constant"],
                                       "supermask_criteria": ["large_final_same_sign"]})
    for key in ["criteria_levels", "action_levels"]:
        if not near_level(p["claim_level"], p[key]):
            errors.append(f"'{key}' {p[key]} must include claim_level {p['claim_level']:g}")
    return errors


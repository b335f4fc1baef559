"""04_early_tickets' params checks."""
from __future__ import annotations

from ticketlib.studies.checks import seed_problems
from collections.abc import Mapping




def check_earlybird_params(p: Mapping) -> list[str]:
    errors = seed_problems(p)
    missing = [r for r in p["pipeline_ratios"] if r not in p["ratios"]]
    if missing or not p["pipeline_ratios"]:
        errors.append(f"'pipeline_ratios' {p['pipeline_ratios']} must be a non-empty subset of 'ratios' {p['ratios']}")
    if p["latency_ratio_p"] not in p["pipeline_ratios"]:
        errors.append(f"'latency_ratio_p' {p['latency_ratio_p']} must be one of 'pipeline_ratios' "
                      f"{p['pipeline_ratios']}: the claims judge the pipelines and the latency at that p")
    if p["latency_repeats"] < 2:
        errors.append("'latency_repeats' must be at least 2 for an interval")
    return errors


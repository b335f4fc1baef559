"""07_stability's params checks."""
from __future__ import annotations

from ticketlib.studies.checks import near_level, seed_problems
from collections.abc import Mapping




def check_stability_params(p: Mapping) -> list[str]:
    """07_stability: seeds for intervals, 01's params file, the claim level among the analysed levels, k = 0 and a
    later rewind point (the CNN claim compares them)."""
    errors = seed_problems(p)
    stem = str(p["imp_params"]).rsplit("/", 1)[-1].removesuffix(".yaml")
    if not str(p["imp_params"]).endswith(".yaml") or stem.split("-")[0] != "01_imp":
        errors.append(f"'imp_params' = {p['imp_params']!r} must name a 01_imp params file")
    if not near_level(p["claim_level"], p["lenet_levels"]):
        errors.append(f"'lenet_levels' {p['lenet_levels']} must include claim_level {p['claim_level']:g}")
    points = [str(k).strip() for k in p["rewind_points"]]
    if "0it" not in points or len(set(points)) < 2:
        errors.append(f"'rewind_points' {p['rewind_points']} must include 0it and a later point (the CNN claim compares them)")
    return errors



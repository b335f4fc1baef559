"""02_conservation's params checks."""
from __future__ import annotations

from ticketlib.studies.checks import seed_problems
from collections.abc import Mapping




def check_conservation_params(p: Mapping) -> list[str]:
    errors = seed_problems(p, "the trained-accuracy claims need at least 2")
    if "synflow" not in p["methods"] or len(p["methods"]) < 2:
        errors.append(f"'methods' {p['methods']} must include synflow and at least one other method")
    missing = [m for m in p["control_methods"] if m not in p["methods"]]
    if missing or "shuffle" not in p["controls"]:
        errors.append(f"the shuffle claim needs 'shuffle' in controls and control_methods {p['control_methods']} "
                      f"among methods {p['methods']}")
    return errors


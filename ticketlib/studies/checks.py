"""Shared pieces of the studies' params checks: refuse, before anything runs, params whose claims could not be judged."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def near_level(level: float, levels: Sequence[float]) -> bool:
    return any(lv > 0 and abs(math.log(lv / level)) < 0.05 for lv in levels)


def seed_problems(p: Mapping, need: str = "the claims compare over seeds and need at least 2") -> list[str]:
    return [f"'seeds' has {len(p['seeds'])}; {need}"] if len(p["seeds"]) < 2 else []


def missing_names(p: Mapping, needs: Mapping[str, list[str]]) -> list[str]:
    """One error per params list that lacks names the claims judge."""
    missing = {key: [n for n in names if n not in p[key]] for key, names in needs.items()}
    return [f"'{key}' must include {names} (the claims judge them)" for key, names in missing.items() if names]


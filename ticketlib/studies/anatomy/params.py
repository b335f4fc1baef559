"""05_anatomy's parameters (a frozen Params, the schema of its notebook) and their cross-field checks. 05 dissects
01's IMP tickets: `imp_params` names the 01_imp params file whose tickets, rounds and re-init controls it reuses, so
the network, data, recipe, IMP schedule and seeds are 01's by construction, not by keeping two files equal."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ticketlib.infra.schema import StudyParams, param
from ticketlib.studies.checks import missing_names, near_level, seed_problems


def check_anatomy_params(p: Mapping) -> list[str]:
    from ticketlib.studies.anatomy.study import CRITERIA, MASK1

    errors = missing_names(p, {"criteria_trained": ["large_final", "magnitude_increase", "random"],
                               "mask1_actions": ["signed_constant", "random_sign_constant"],
                               "supermask_criteria": ["large_final_same_sign"]})
    unknown = [c for c in [*p["criteria_trained"], *p["supermask_criteria"]] if c not in CRITERIA]
    if unknown:
        errors.append(f"unknown criteria {unknown} in 'criteria_trained'/'supermask_criteria'; known: {list(CRITERIA)}")
    if [a for a in p["mask1_actions"] if a not in MASK1]:
        errors.append(f"'mask1_actions' {p['mask1_actions']} may only hold {list(MASK1)}")
    for key in ["criteria_levels", "action_levels"]:
        if not near_level(p["claim_level"], p[key]):
            errors.append(f"'{key}' {p[key]} must include claim_level {p['claim_level']:g}")
    return errors


def check_against_imp(p: Mapping, imp: Mapping) -> list[str]:
    """05's levels against the 01 run it reuses: seeds for intervals, and IMP rounds that reach the claim level."""
    errors = seed_problems(imp, "05's claims compare over 01's seeds and need at least 2")
    reached = 100 * (1 - imp["prune_fraction"]) ** imp["rounds"]
    if reached > 1.25 * p["claim_level"]:
        errors.append(f"'claim_level' {p['claim_level']:g} is past the {imp['rounds']} IMP rounds of "
                      f"{p['imp_params']} (~{reached:.1f}% remaining)")
    return errors


@dataclass(frozen=True)
class AnatomyParams(StudyParams):
    """05_anatomy's parameters: the schema its notebook's parameters cell shows (and a test keeps equal)."""

    REUSES = {"imp_params": "01_imp"}

    imp_params: str = param("params/cpu/01_imp.yaml", "the 01_imp run whose IMP tickets are dissected "
                            "(its network, data, recipe and seeds; its cached rounds and re-init controls are reused)")
    criteria_trained: list[str] = param(["large_final", "small_final", "large_init", "large_init_large_final", "magnitude_increase", "movement", "random"],
                                        'criteria whose one-shot masks are trained')
    criteria_levels: list[float] = param([21.1, 3.6], "% weights remaining where each criterion's mask is trained",
                                         minimum=0, maximum=100)
    action_levels: list[float] = param([21.1, 3.6, 1.9],
                                       "% remaining where the ticket's mask-1 and mask-0 actions are trained",
                                       minimum=0, maximum=100)
    mask1_actions: list[str] = param(["reshuffle", "signed_constant", "random_sign_constant"],
                                     'trained besides rewind and reinit')
    claim_level: float = param(3.6, '% remaining at which the criteria and signs claims are judged', minimum=0,
                               maximum=100)
    supermask_criteria: list[str] = param(["large_final", "large_final_same_sign", "magnitude_increase", "large_init_large_final", "movement", "random"],
                                          'criteria whose masks are evaluated untrained')
    cache_dir: str = param("runs/cache", "05's own trainings are reused from here (\"\": this run only); 01's units come from 01's cache_dir")
    workers: int = param(2, 'parallel single-threaded training processes', minimum=1, maximum=64)
    executor: str = param("auto",
                          'where independent units run: auto ($TICKETLIB_EXECUTOR, else local), local processes, a dask cluster or slurm',
                          choices=('auto', 'local', 'dask', 'slurm'))
    progress: bool = param(True, 'tqdm progress bars')

    def problems(self) -> list[str]:
        return check_anatomy_params(self.as_dict())

    def problems_with(self, reused: Mapping[str, Mapping[str, Any]]) -> list[str]:
        return check_against_imp(self.as_dict(), reused["imp_params"])

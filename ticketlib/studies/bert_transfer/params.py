"""03_bert_transfer's params checks (GLUE's split sizes are known before anything downloads)."""
from __future__ import annotations

from ticketlib.studies.checks import missing_names, seed_problems
from collections.abc import Mapping




def check_bert_params(p: Mapping) -> list[str]:
    errors = seed_problems(p)
    if not p["mlm"]:
        errors.append("'mlm' must be true: the transfer claim judges the MLM subnetwork")
    errors += missing_names(p, {"controls": ["random_pruning", "random_weights"]})
    if p["claim_sparsity"] not in p["control_sparsities"]:
        errors.append("'control_sparsities' must include 'claim_sparsity' (the claims compare IMP with its controls there)")
    if p["rounds"] * p["prune_fraction"] < p["claim_sparsity"] - 1e-9:
        errors.append(f"'rounds' x 'prune_fraction' = {p['rounds'] * p['prune_fraction']:g} stops short of "
                      f"claim_sparsity {p['claim_sparsity']:g}")
    from ticketlib.core.text import size_problems  # GLUE's split sizes are known before anything downloads

    if p.get("glue", "nyu-mll/glue") == "nyu-mll/glue" and "tasks" in p:
        errors += size_problems(p["tasks"], {part: p.get(f"{part}_size") for part in ("train", "val", "test")})
    return errors


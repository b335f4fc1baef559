"""06_deployment's params checks: the params files it reuses, and the batches and threads its claims judge."""
from __future__ import annotations

from collections.abc import Mapping




def check_deployment_params(p: Mapping) -> list[str]:
    errors = []
    for key, run in [("imp_params", "01_imp"), ("earlybird_params", "04_early_tickets")]:
        stem = str(p[key]).rsplit("/", 1)[-1].removesuffix(".yaml")
        if not str(p[key]).endswith(".yaml") or stem.split("-")[0] != run:
            errors.append(f"'{key}' = {p[key]!r} must name a {run} params file (params/<profile>/{run}[-variant].yaml)")
    batches = list(p["batch_sizes"])
    if 1 not in batches or max(batches, default=1) <= 1:
        errors.append(f"'batch_sizes' {batches} must include 1 and a larger batch: the claims judge both")
    if p["claim_threads"] not in p["threads"]:
        errors.append(f"'claim_threads' {p['claim_threads']} must be one of 'threads' {p['threads']}")
    if p["latency_repeats"] < 2:
        errors.append("'latency_repeats' must be at least 2 for an interval")
    if not 0 < p["moderate_percent"] < 100:
        errors.append(f"'moderate_percent' {p['moderate_percent']} must lie strictly between 0 and 100")
    return errors


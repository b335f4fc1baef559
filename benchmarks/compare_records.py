"""Compare the metrics and claims of two run folders field by field, timings left out.

    .venv/bin/python benchmarks/compare_records.py results/cpu runs/cpu [--runs 01_imp 02_conservation]

A refactoring that must keep every mask and metric (issue 14) shows it here: every field of every record
is compared exactly (floats included), except wall times (any key containing "seconds", "latency" or
"crossover", and the numbers of claims judged on wall times) and the devices units ran on.
Prints each difference with its path and exits 1 when there is any, or when a record is missing.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

TIMING = ("seconds", "latency", "crossover", "contention")  # 06's crossover densities come from wall times; contention is the machine's load while timing
# Claims judged on wall times: only their identity and threshold are compared, not their numbers.
TIMED_CLAIMS = {"smaller_network_is_faster", "cost_saved", "sparse_kernels_pay_when_sparse",
                "sparse_kernels_lose_at_moderate_sparsity", "slim_network_is_faster"}
PROVENANCE = ("devices",)  # where a unit ran: recorded with it, not a result


def untimed(value):
    """`value` without the fields that are wall times (or where they were measured)."""
    if isinstance(value, dict):
        if value.get("id") in TIMED_CLAIMS:
            return {k: value[k] for k in ("id", "threshold", "direction", "threshold_basis") if k in value}
        return {k: untimed(v) for k, v in value.items()
                if not any(t in str(k) for t in TIMING) and k not in PROVENANCE}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value


def differences(a, b, path: str = "") -> list[str]:
    """Every path where `a` and `b` differ (NaN equals NaN)."""
    if isinstance(a, dict) and isinstance(b, dict):
        found = [f"{path}.{k}: only in {'first' if k in a else 'second'}" for k in sorted(set(a) ^ set(b), key=str)]
        return found + [d for k in a if k in b for d in differences(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return []
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first")
    parser.add_argument("second")
    parser.add_argument("--runs", nargs="*", help="run names (default: every record in the first folder)")
    args = parser.parse_args(argv)
    runs = args.runs or sorted(p.stem for p in Path(args.first).glob("*.json") if not p.stem.startswith("scorecard"))
    total = 0
    for run in runs:
        paths = [Path(folder) / f"{run}.json" for folder in (args.first, args.second)]
        if not all(p.exists() for p in paths):
            print(f"{run}: missing in {' and '.join(str(p.parent) for p in paths if not p.exists())}")
            total += 1
            continue
        a, b = (json.loads(p.read_text()) for p in paths)
        found = differences(untimed({"metrics": a["metrics"], "claims": a["claims"]}),
                            untimed({"metrics": b["metrics"], "claims": b["claims"]}))
        print(f"{run}: {'identical' if not found else f'{len(found)} difference(s)'} (metrics and claims, timings left out)")
        for line in found[:20]:
            print(f"  {line}")
        total += len(found)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())

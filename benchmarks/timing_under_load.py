"""Run a notebook with (or without) CPU-bound processes beside it, and print two records' timing rows side by side.

    python benchmarks/timing_under_load.py run params/cpu/06_deployment.yaml --hogs 0 --out runs/alone
    python benchmarks/timing_under_load.py run params/cpu/06_deployment.yaml --hogs 1 --out runs/loaded
    python benchmarks/timing_under_load.py compare runs/alone/cpu/06_deployment.json runs/loaded/cpu/06_deployment.json

`run` starts `--hogs` CPU-bound Python processes (a busy loop each), runs `python -m ticketlib run PARAMS --out
OUT` beside them, and stops them by their process ids when it ends. `compare` prints, per timing claim
(`ticketlib.infra.contention.TIMING_CLAIMS`), each record's verdict, estimate and interval and whether its machine was
quiet (the claim's `contention` summary: state and other processes' share of the cores), so that the alone and the
loaded run can be read side by side.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from ticketlib.infra.contention import TIMING_CLAIMS

ROOT = Path(__file__).resolve().parents[1]

HOG = "while True: pass"


def timing_rows(record: dict) -> dict[str, dict]:
    """Per timing claim of a record: verdict, estimate, interval, contention state and other processes' share."""
    rows = {}
    for claim in record["claims"]:
        found = claim.get("contention")
        if claim["id"] not in TIMING_CLAIMS and found is None:
            continue
        window = (found or {}).get("window") or {}
        share = window.get("others_share")
        rows[claim["id"]] = {"verdict": claim["verdict"], "estimate": claim.get("estimate"),
                             "interval": claim.get("interval"),
                             "state": found["state"] if found else "not judged" if claim.get("source") == "not judged"
                             else "not recorded",
                             "others": None if share is None else 100 * share}
    return rows


def _cell(row: dict | None) -> str:
    if row is None:
        return "—"
    low, high = row["interval"] or (None, None)
    span = f"{row['estimate']:.3f} [{low:.3f}, {high:.3f}]" if None not in (row["estimate"], low, high) else "n/a"
    others = "" if row["others"] is None else f", others {row['others']:.0f}%"
    return f"{row['verdict']} {span} ({row['state']}{others})"


def side_by_side(a: dict, b: dict, names: tuple[str, str] = ("A", "B")) -> str:
    """The timing rows of two records as a Markdown table, one line per claim found in either."""
    rows_a, rows_b = timing_rows(a), timing_rows(b)
    lines = [f"| claim | {names[0]} | {names[1]} |", "|---|---|---|"]
    for claim in dict.fromkeys([*rows_a, *rows_b]):
        lines.append(f"| {claim} | {_cell(rows_a.get(claim))} | {_cell(rows_b.get(claim))} |")
    return "\n".join(lines)


def run_beside(params: str, out: str, hogs: int) -> int:
    """Run the notebook of `params` into `out` with `hogs` busy-loop processes beside it; its exit status."""
    started = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(hogs)]
    try:
        print(f"{hogs} CPU-bound process(es) beside the run: {[p.pid for p in started]}", flush=True)
        return subprocess.call([sys.executable, "-m", "ticketlib", "run", params, "--out", out], cwd=ROOT)
    finally:
        for process in started:
            process.terminate()
            process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="run a params file with CPU-bound processes beside it")
    run_p.add_argument("params")
    run_p.add_argument("--hogs", type=int, default=1, help="CPU-bound processes beside the run (0: alone)")
    run_p.add_argument("--out", required=True, help="output root of the run (its record: OUT/<profile>/<run>.json)")
    cmp_p = sub.add_parser("compare", help="print two records' timing rows side by side")
    cmp_p.add_argument("records", nargs=2)
    args = parser.parse_args(argv)
    if args.command == "run":
        return run_beside(args.params, args.out, args.hogs)
    a, b = (json.loads(Path(p).read_text()) for p in args.records)
    print(side_by_side(a, b, tuple(args.records)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

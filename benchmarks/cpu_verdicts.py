"""Do the verdicts survive the machine? Compare two run folders of one profile, claim by claim.

Runs of the same params on two CPU paths (say the default path and `ATEN_CPU_CAPABILITY=avx2
ONEDNN_MAX_CPU_ISA=AVX2`, or two machines) differ in the last digits: different vector units sum in a
different order. A verdict judged on an interval over seeds should not flip. This prints, per run, the scorecard's own
run notes for both records (wall time, ATen capability, oneDNN ISA, threads, and a warning when the
capabilities differ), then every claim's verdict, estimate and interval on both sides, marking the
verdicts that differ. Exit status 1 when a verdict differs (or is missing on the second side), 0 otherwise.

    .venv/bin/python benchmarks/cpu_verdicts.py runs/cpu /path/to/other/runs/cpu [--runs 01_imp 02_conservation]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def load_records(folder: Path, runs: list[str] | None) -> dict[str, dict]:
    """run name -> record, for every <run>.json in `folder` (or only `runs`)."""
    records = {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}
    if runs:
        missing = [r for r in runs if r not in records]
        if missing:
            raise SystemExit(f"error: {folder} has no record for {', '.join(missing)}")
        records = {r: records[r] for r in runs}
    if not records:
        raise SystemExit(f"error: no run records (*.json) in {folder}")
    return records


def interval_text(claim: dict) -> str:
    low, high = claim.get("interval", [None, None])
    if low is None or low == high:
        return f"{claim.get('estimate', float('nan')):.4g}"
    return f"{claim['estimate']:.4g} [{low:.4g}, {high:.4g}]"


def compare(a: dict[str, dict], b: dict[str, dict], names: tuple[str, str]) -> tuple[list[str], int]:
    """(lines of the comparison, number of verdicts that differ); the last line says how many differ.

    Each run's two records are described by the scorecard's own `report.run_notes` (wall time, CPU capability,
    oneDNN ISA, threads, and a warning when the capabilities differ)."""
    from ticketlib.report import run_notes

    lines, differ, compared = [], 0, 0
    for run in sorted(set(a) & set(b)):
        lines.append(f"## {run}")
        notes = run_notes([a[run], b[run]])
        lines += [f"- {names[0]}: {notes[0]}", f"- {names[1]}: {notes[1]}", *(f"- {n}" for n in notes[2:])]
        claims_b = {c["id"]: c for c in b[run].get("claims", [])}
        lines += [f"| claim | {names[0]} | {names[1]} | same verdict |", "| --- | --- | --- | --- |"]
        for claim in a[run].get("claims", []):
            other = claims_b.get(claim["id"])
            same = other is not None and claim["verdict"] == other["verdict"]
            compared, differ = compared + 1, differ + (not same)
            right = f"{other['verdict']}: {interval_text(other)}" if other else "(missing)"
            lines.append(f"| {claim['id']} | {claim['verdict']}: {interval_text(claim)} | {right} | "
                         f"{'yes' if same else '**no**'} |")
    only = sorted(set(a) ^ set(b))
    if only:
        lines.append(f"runs on one side only (not compared): {', '.join(only)}")
    lines.append(f"{differ} of {compared} verdicts differ")
    return lines, differ


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--runs", nargs="*", help="run names to compare (default: every run on both sides)")
    args = parser.parse_args()
    lines, differ = compare(load_records(args.first, args.runs), load_records(args.second, args.runs),
                            (str(args.first), str(args.second)))
    print("\n".join(lines))
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())

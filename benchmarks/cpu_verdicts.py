"""Do the verdicts survive the machine? Compare two run folders of one profile, claim by claim.

Runs of the same params on two CPU paths (say the default path and `ATEN_CPU_CAPABILITY=avx2
ONEDNN_MAX_CPU_ISA=AVX2`, or two machines) differ in the last digits: different vector units sum in a
different order. A verdict judged on an interval over seeds should not flip. This prints, per run, the CPU
each record names (model, ATen capability, oneDNN ISA, threads) and its wall time, says when the two
sides came from different capabilities, then every claim's verdict, estimate and interval on both sides,
marking the verdicts that differ. Exit status 1 when a verdict differs, 0 otherwise.

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


def cpu_line(record: dict) -> str:
    """The CPU and wall time a record names."""
    cpu = record.get("provenance", {}).get("cpu", {})
    return (f"{cpu.get('model', '?')}, ATen {cpu.get('capability', '?')}, oneDNN ISA {cpu.get('onednn_max_isa', '?')}, "
            f"{record.get('provenance', {}).get('threads', '?')} threads, {record.get('seconds', float('nan')):.0f} s")


def interval_text(claim: dict) -> str:
    low, high = claim.get("interval", [None, None])
    if low is None or low == high:
        return f"{claim.get('estimate', float('nan')):.4g}"
    return f"{claim['estimate']:.4g} [{low:.4g}, {high:.4g}]"


def compare(a: dict[str, dict], b: dict[str, dict], names: tuple[str, str]) -> list[str]:
    """Lines of the comparison; the last says how many verdicts differ."""
    lines, differ, compared = [], 0, 0
    for run in sorted(set(a) & set(b)):
        ra, rb = a[run], b[run]
        lines.append(f"## {run}")
        lines.append(f"- {names[0]}: {cpu_line(ra)}")
        lines.append(f"- {names[1]}: {cpu_line(rb)}")
        cap_a = ra.get("provenance", {}).get("cpu", {}).get("capability")
        cap_b = rb.get("provenance", {}).get("cpu", {}).get("capability")
        if cap_a != cap_b:
            lines.append(f"- the two records come from different CPU capabilities ({cap_a} vs {cap_b})")
        claims_b = {c["id"]: c for c in rb.get("claims", [])}
        lines.append(f"| claim | {names[0]} | {names[1]} | same verdict |")
        lines.append("| --- | --- | --- | --- |")
        for claim in ra.get("claims", []):
            other = claims_b.get(claim["id"])
            if other is None:
                lines.append(f"| {claim['id']} | {claim['verdict']}: {interval_text(claim)} | (missing) | no |")
                differ += 1
                continue
            same = claim["verdict"] == other["verdict"]
            differ += not same
            compared += 1
            lines.append(f"| {claim['id']} | {claim['verdict']}: {interval_text(claim)} | "
                         f"{other['verdict']}: {interval_text(other)} | {'yes' if same else '**no**'} |")
    only = sorted(set(a) ^ set(b))
    if only:
        lines.append(f"runs on one side only (not compared): {', '.join(only)}")
    lines.append(f"{differ} of {compared} verdicts differ")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--runs", nargs="*", help="run names to compare (default: every run on both sides)")
    args = parser.parse_args()
    lines = compare(load_records(args.first, args.runs), load_records(args.second, args.runs),
                    (str(args.first), str(args.second)))
    print("\n".join(lines))
    return 1 if not lines[-1].startswith("0 of") else 0


if __name__ == "__main__":
    raise SystemExit(main())

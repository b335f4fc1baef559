"""Your scorecard against another one: two run folders of one profile compared claim by claim.

Runs of the same params on two CPU paths (the default path and `ATEN_CPU_CAPABILITY=avx2
ONEDNN_MAX_CPU_ISA=AVX2`, or two machines) differ in the last digits: different vector units sum in a
different order, and a verdict near its threshold can move. `make reproduce` ends by comparing its run with
the published one in `results/<profile>/` (`python -m ticketlib compare runs/cpu results/cpu`): how many
verdicts agree, which differ and how, and both sides' CPU paths, so a newcomer sees why their run differs.
`benchmarks/cpu_verdicts.py` prints the full claim-by-claim table of the same comparison.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ClaimPair:
    """One claim of one run on both sides; `second` is None when the second side lacks it."""
    run: str
    claim: str
    first: dict
    second: dict | None

    @property
    def same(self) -> bool:
        return self.second is not None and self.first["verdict"] == self.second["verdict"]


def load_records(folder: Path, runs: list[str] | None = None) -> dict[str, dict]:
    """run name -> record, for every <run>.json in `folder` (or only `runs`); raises naming what is missing."""
    records = {p.stem: json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))}
    if runs:
        missing = [r for r in runs if r not in records]
        if missing:
            raise FileNotFoundError(f"{folder} has no record for {', '.join(missing)}")
        records = {r: records[r] for r in runs}
    if not records:
        raise FileNotFoundError(f"no run records (*.json) in {folder}")
    return records


def interval_text(claim: dict) -> str:
    """'0.57 [0.55, 0.59]', or the estimate alone for a point."""
    low, high = claim.get("interval", [None, None])
    if low is None or low == high:
        return f"{claim.get('estimate', float('nan')):.4g}"
    return f"{claim['estimate']:.4g} [{low:.4g}, {high:.4g}]"


def pairs(a: dict[str, dict], b: dict[str, dict]) -> list[ClaimPair]:
    """Every claim of every run present on both sides, in the first side's order."""
    found = []
    for run in sorted(set(a) & set(b)):
        claims_b = {c["id"]: c for c in b[run].get("claims", [])}
        found += [ClaimPair(run, c["id"], c, claims_b.get(c["id"])) for c in a[run].get("claims", [])]
    return found


def cpu_path(record: dict) -> str:
    """'AMD EPYC, ATen AVX2, oneDNN AVX2' from a record's provenance (what decides the last digits)."""
    cpu = (record.get("provenance") or {}).get("cpu") or {}
    if not cpu:
        return "CPU path not recorded"
    return f"{cpu.get('model') or 'unknown CPU'}, ATen {cpu.get('capability')}, oneDNN {cpu.get('onednn_max_isa')}"


def paths_text(records: dict[str, dict]) -> str:
    """The distinct CPU paths of a folder's records, with the runs on each when there are several."""
    by_path: dict[str, list[str]] = {}
    for run, record in sorted(records.items()):
        by_path.setdefault(cpu_path(record), []).append(run)
    if len(by_path) == 1:
        return next(iter(by_path))
    return "; ".join(f"{path} ({', '.join(runs)})" for path, runs in by_path.items())


def table(a: dict[str, dict], b: dict[str, dict], names: tuple[str, str]) -> tuple[list[str], int]:
    """(lines of the claim-by-claim comparison, number of verdicts that differ); the last line counts them.

    Each run's two records are described by the scorecard's own `report.run_notes` (wall time, CPU capability,
    oneDNN ISA, threads, and a warning when the capabilities differ)."""
    from ticketlib.runner.report import run_notes

    lines, found = [], pairs(a, b)
    for run in sorted(set(a) & set(b)):
        notes = run_notes([a[run], b[run]])
        lines += [f"## {run}", f"- {names[0]}: {notes[0]}", f"- {names[1]}: {notes[1]}",
                  *(f"- {n}" for n in notes[2:]),
                  f"| claim | {names[0]} | {names[1]} | same verdict |", "| --- | --- | --- | --- |"]
        for pair in (p for p in found if p.run == run):
            right = f"{pair.second['verdict']}: {interval_text(pair.second)}" if pair.second else "(missing)"
            lines.append(f"| {pair.claim} | {pair.first['verdict']}: {interval_text(pair.first)} | {right} | "
                         f"{'yes' if pair.same else '**no**'} |")
    only = sorted(set(a) ^ set(b))
    if only:
        lines.append(f"runs on one side only (not compared): {', '.join(only)}")
    differ = sum(not p.same for p in found)
    lines.append(f"{differ} of {len(found)} verdicts differ")
    return lines, differ


def summary(mine: dict[str, dict], published: dict[str, dict], names: tuple[str, str]) -> list[str]:
    """A few lines for the end of `make reproduce`: agreement count, each differing verdict, both CPU paths."""
    found = pairs(mine, published)
    differ = [p for p in found if not p.same]
    lines = [f"{len(found) - len(differ)} of {len(found)} verdicts agree with {names[1]}",
             f"- {names[0]}: {paths_text(mine)}", f"- {names[1]}: {paths_text(published)}"]
    for p in differ:
        theirs = f"{p.second['verdict']} {interval_text(p.second)}" if p.second else "missing"
        lines.append(f"  {p.run} {p.claim}: yours {p.first['verdict']} {interval_text(p.first)}, "
                     f"{names[1]} {theirs}")
    if differ and paths_text(mine) != paths_text(published):
        lines.append("  the CPU paths differ: the last digits of every number differ, and a verdict whose interval "
                     "lies near its threshold can move (README, 'Your run and the published one')")
    only = sorted(set(mine) ^ set(published))
    if only:
        lines.append(f"- runs on one side only (not compared): {', '.join(only)}")
    return lines

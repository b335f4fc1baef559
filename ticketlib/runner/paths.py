"""A profile published on several CPU paths: which claims are provisional (issue 26).

The same params give different last digits on different vector units (AVX2, AVX-512, AMX sum in different
orders), and a verdict whose interval lies near its threshold can move. `results/<profile>/` holds the
reference publication; `results/<profile>/paths/<label>/` holds the same profile's records from other CPU
paths (`make publish-path`), one folder per path, labelled by the ATen capability the run dispatched to.
A claim whose verdict differs between the published paths of the same params is *provisional*: the README's
scorecard, scorecard.md and index.html say so next to the verdict.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

PATHS = "paths"  # results/<profile>/paths/<label>/


class PathError(ValueError):
    """Records whose CPU path cannot be named (none recorded, or several in one run folder)."""


def path_label(records: list[dict]) -> str:
    """The one ATen capability of `records`, lower-case ('avx2', 'avx512'); raises PathError otherwise."""
    found = {((r.get("provenance") or {}).get("cpu") or {}).get("capability") for r in records}
    if None in found or "" in found:
        missing = [r["run"] for r in records if not ((r.get("provenance") or {}).get("cpu") or {}).get("capability")]
        raise PathError(f"no CPU capability recorded for {', '.join(missing)}: the path cannot be named")
    if len(found) != 1:
        raise PathError(f"the records come from several CPU capabilities ({', '.join(sorted(found))}): "
                        "publish one path at a time")
    return next(iter(found)).lower()


def other_paths(results: str | Path) -> dict[str, dict[str, dict]]:
    """label -> run -> record, for every results/<profile>/paths/<label>/*.json."""
    root = Path(results) / PATHS
    if not root.is_dir():
        return {}
    return {folder.name: {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}
            for folder in sorted(root.iterdir()) if folder.is_dir()}


@dataclass(frozen=True)
class PathVerdict:
    """One claim's verdict on another CPU path; `comparable` is False when that path ran other params."""
    label: str
    verdict: str | None  # None: the claim is missing there
    comparable: bool

    def text(self) -> str:
        if not self.comparable:
            return f"{self.label.upper()}: other params (not compared)"
        return f"{self.label.upper()}: {self.verdict or 'missing'}"


def verdicts_elsewhere(record: dict, others: dict[str, dict[str, dict]], own_label: str | None = None
                       ) -> dict[str, list[PathVerdict]]:
    """claim id -> its verdict on each other path that published this run (skipping `own_label`)."""
    out: dict[str, list[PathVerdict]] = {c["id"]: [] for c in record["claims"]}
    for label, runs in sorted(others.items()):
        other = runs.get(record["run"])
        if other is None or label == own_label:
            continue
        comparable = other.get("params") == record.get("params")
        verdicts = {c["id"]: c.get("verdict") for c in other.get("claims", [])}
        for claim in out:
            out[claim].append(PathVerdict(label, verdicts.get(claim), comparable))
    return out


def provisional(verdict: str, elsewhere: list[PathVerdict]) -> bool:
    """True when a comparable path judged the claim differently."""
    return any(p.comparable and p.verdict is not None and p.verdict != verdict for p in elsewhere)


def own_label(records: list[dict]) -> str | None:
    """The reference records' path label, or None when it cannot be named (old records)."""
    try:
        return path_label(records)
    except PathError:
        return None

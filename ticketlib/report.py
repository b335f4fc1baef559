"""Run records and the scorecard.

A notebook fills a `Record` with the metrics its claims are computed from and the
claims themselves (`holds` must be a real bool computed from metrics); the runner
completes it into the JSON contract of DESIGN.md §4. `scorecard` gathers every
record of a profile into `scorecard.md` and an `index.html` that links the
executed notebooks.
"""
from __future__ import annotations

import html
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


def _plain(value: Any) -> Any:
    """JSON-friendly copy: numpy/torch scalars to Python, NaN to None, tuples to lists."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | Path, payload: Any) -> None:
    """Write JSON atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(_plain(payload), handle, indent=1)
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; records are for reading
    os.replace(tmp, path)


class Record:
    """Metrics and claims of one notebook run."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else None
        self.metrics: dict[str, Any] = {}
        self.claims: list[dict] = []

    def metric(self, name: str, value: Any) -> Any:
        self.metrics[name] = _plain(value)
        return value

    def claim(self, id: str, statement: str, paper: str, measured: str, holds: Any) -> bool:
        """Add a claim; `holds` is the result of a comparison on this run's metrics."""
        if hasattr(holds, "item"):
            holds = holds.item()
        if not isinstance(holds, bool):
            raise TypeError(f"claim {id!r}: holds must be a computed bool, got {type(holds).__name__}")
        if any(c["id"] == id for c in self.claims):
            raise ValueError(f"claim {id!r} recorded twice")
        self.claims.append({"id": id, "statement": statement, "paper": paper,
                            "measured": measured, "holds": holds})
        return holds

    def table(self):
        """The claims as a pandas DataFrame, for display in the notebook."""
        import pandas as pd

        return pd.DataFrame(self.claims).set_index("id") if self.claims else pd.DataFrame()

    def save(self) -> None:
        if self.path is None:
            return
        write_json(self.path, {"metrics": self.metrics, "claims": self.claims})


def load_records(run_dir: str | Path) -> list[dict]:
    """Every completed run record (`*.json` beside an executed notebook) in a profile folder."""
    records = []
    for path in sorted(Path(run_dir).glob("*.json")):
        record = json.loads(path.read_text())
        if isinstance(record, dict) and "claims" in record and "run" in record:
            records.append(record)
    return records


def scorecard_markdown(records: list[dict], profile: str) -> str:
    lines = [f"# Scorecard — profile `{profile}`", "",
             "| run | claim | holds | measured | paper | statement |", "|---|---|---|---|---|---|"]
    held = total = 0
    for record in records:
        for claim in record["claims"]:
            total += 1
            held += bool(claim["holds"])
            cells = [record["run"], claim["id"], "yes" if claim["holds"] else "**no**",
                     claim["measured"], claim["paper"], claim["statement"]]
            lines.append("| " + " | ".join(str(c).replace("|", "/").replace("\n", " ") for c in cells) + " |")
    lines += ["", f"{held} of {total} claims hold across {len(records)} run(s)."]
    for record in records:
        seconds = record.get("seconds")
        took = f"{seconds:.0f} s" if isinstance(seconds, (int, float)) else "time not recorded"
        lines.append(f"- `{record['run']}`: {took} on {record.get('device')}")
    return "\n".join(lines) + "\n"


def scorecard_html(records: list[dict], profile: str, run_dir: Path) -> str:
    rows = []
    for record in records:
        run = record["run"]
        page = run + (".html" if (run_dir / f"{run}.html").exists() else ".ipynb")
        for claim in record["claims"]:
            colour = "#dfd" if claim["holds"] else "#fdd"
            rows.append(f"<tr style='background:{colour}'><td><a href='{html.escape(page)}'>{html.escape(run)}</a></td>"
                        f"<td>{html.escape(claim['id'])}</td><td>{'yes' if claim['holds'] else 'no'}</td>"
                        f"<td>{html.escape(str(claim['measured']))}</td><td>{html.escape(str(claim['paper']))}</td>"
                        f"<td>{html.escape(claim['statement'])}</td></tr>")
    return ("<!doctype html><meta charset='utf-8'><title>ticketlib scorecard</title>"
            f"<h1>Scorecard — profile {html.escape(profile)}</h1><table border=1 cellpadding=4>"
            "<tr><th>run</th><th>claim</th><th>holds</th><th>measured</th><th>paper</th><th>statement</th></tr>"
            + "".join(rows) + "</table>")


def export_html(notebook: Path) -> Path:
    """An HTML copy of an executed notebook beside it (redone only when the notebook is newer)."""
    from nbconvert import HTMLExporter

    target = notebook.with_suffix(".html")
    if not target.exists() or target.stat().st_mtime < notebook.stat().st_mtime:
        body, _ = HTMLExporter().from_filename(str(notebook))
        target.write_text(body)
    return target


def scorecard(run_dir: str | Path, html_pages: bool = True) -> str:
    """Write `scorecard.md` and `index.html` for a profile's runs; return the markdown."""
    run_dir = Path(run_dir)
    records = load_records(run_dir)
    if html_pages:
        for record in records:
            notebook = run_dir / f"{record['run']}.ipynb"
            if notebook.exists():
                export_html(notebook)
    profile = records[0]["profile"] if records else run_dir.name
    text = scorecard_markdown(records, profile)
    (run_dir / "scorecard.md").write_text(text)
    (run_dir / "index.html").write_text(scorecard_html(records, profile, run_dir))
    return text

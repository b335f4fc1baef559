"""Run records and the scorecard.

A notebook fills a `Record` with the metrics its claims are computed from and the
claims themselves (`holds` must be a real bool computed from metrics); the runner
completes it into the run record (ARCHITECTURE.md, "The run record"). `scorecard` gathers every
record of a profile into `scorecard.md`, a `summary.png` of estimates against
thresholds and an `index.html` that links the executed notebooks, counting
holds / fails / inconclusive and marking runs whose files have changed since.
"""
from __future__ import annotations

import html
import json
import math
import time
from pathlib import Path
from typing import Any

from ticketlib.infra.cache import atomic_write
from ticketlib.infra.contention import RULE
from ticketlib.runner.paths import own_label, provisional, verdicts_elsewhere


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
    """Write JSON atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(_plain(payload), indent=1)))


class Record:
    """Metrics and claims of one notebook run; its clock starts when it is opened."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else None
        self.metrics: dict[str, Any] = {}
        self.claims: list[dict] = []
        self.started = time.perf_counter()

    def metric(self, name: str, value: Any) -> Any:
        self.metrics[name] = _plain(value)
        return value

    def claim(self, verdict) -> bool:
        """Add a claim judged by `ticketlib.verdicts` (an `engine.Verdict`); returns whether it holds."""
        from ticketlib.verdicts.engine import Verdict

        if not isinstance(verdict, Verdict):
            raise TypeError(f"a claim must be an engine.Verdict judged from metrics, got {type(verdict).__name__}")
        if any(c["id"] == verdict.id for c in self.claims):
            raise ValueError(f"claim {verdict.id!r} recorded twice")
        self.claims.append(_plain(verdict.to_dict()))
        return verdict.holds

    def table(self):
        """The claims as a pandas DataFrame, for display in the notebook."""
        import pandas as pd

        columns = ["verdict", "estimate", "interval", "threshold", "seeds", "measured", "source"]
        return pd.DataFrame(self.claims).set_index("id")[columns] if self.claims else pd.DataFrame()

    def save(self) -> None:
        """Write the record, its last metric `notebook_seconds` the wall time since it was opened."""
        self.metrics["notebook_seconds"] = time.perf_counter() - self.started
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


VERDICT_COLOURS = {"holds": "#2e7d32", "fails": "#c62828", "inconclusive": "#e0a100"}
ROW_COLOURS = {"holds": "#e3f4e1", "fails": "#fbe0e0", "inconclusive": "#fff1c2"}
COLUMNS = ["run", "claim", "verdict", "estimate [interval]", "threshold (basis)", "seeds", "measured", "paper",
           "source"]


def verdict_of(claim: dict) -> str:
    """holds / fails / inconclusive; an old record without a verdict has only `holds`."""
    return claim.get("verdict") or ("holds" if claim.get("holds") else "fails")


def _number(value: float) -> str:
    return f"{value:.4g}"


def estimate_text(claim: dict) -> str:
    """'1.17 [0.4, 1.9]'; 'deterministic' for a point interval, 'no interval' for one noisy seed."""
    if claim.get("estimate") is None:
        return ""
    low, high = claim.get("interval") or (None, None)
    if low is None or high is None:
        return f"{_number(claim['estimate'])} (no interval: one seed)"
    if low == high:
        return f"{_number(claim['estimate'])} (deterministic)"
    return f"{_number(claim['estimate'])} [{_number(low)}, {_number(high)}]"


def threshold_text(claim: dict) -> str:
    """'> 86 (paper)': the claimed side, the threshold and where it comes from."""
    if claim.get("threshold") is None:
        return ""
    return f"{claim.get('direction', '')} {_number(claim['threshold'])} ({claim.get('threshold_basis', '?')})".strip()


def counts(claims: list[dict]) -> str:
    """'N hold, M fail, K inconclusive of T claims'."""
    found = [verdict_of(c) for c in claims]
    return (f"{found.count('holds')} hold, {found.count('fails')} fail, {found.count('inconclusive')} inconclusive "
            f"of {len(found)} claims")


OTHER_PATHS = "other CPU paths"  # the column added when another CPU path of the profile is published


def claims_frame(records: list[dict], others: dict[str, dict[str, dict]] | None = None):
    """One row per claim, every cell a display string (the scorecard's and the README's table). With `others`
    (`paths.other_paths`: label -> run -> record) a column gives each claim's verdict on the other CPU paths,
    led by "provisional" where a comparable path judged it differently."""
    import pandas as pd

    rows = [[record["run"], claim["id"], verdict_of(claim), estimate_text(claim), threshold_text(claim),
             "" if claim.get("seeds") is None else str(claim["seeds"]), str(claim.get("measured", "")),
             str(claim.get("paper", "")), str(claim.get("source", ""))]
            for record in records for claim in record["claims"]]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    if others:
        own = own_label(records)
        cells = []
        for record in records:
            elsewhere = verdicts_elsewhere(record, others, own)
            for claim in record["claims"]:
                found = elsewhere[claim["id"]]
                text = "; ".join(p.text() for p in found) or "not published there"
                cells.append(f"provisional — {text}" if provisional(verdict_of(claim), found) else text)
        frame.insert(3, OTHER_PATHS, cells)
    return frame


def paths_notes(records: list[dict], others: dict[str, dict[str, dict]] | None) -> list[str]:
    """Per other published CPU path: how many of its comparable verdicts agree with these records'."""
    notes = []
    own = own_label(records)
    for label in sorted(others or {}):
        if label == own:
            continue
        compared = differ = 0
        for record in records:
            elsewhere = verdicts_elsewhere(record, {label: others[label]})
            for claim in record["claims"]:
                judged = [p for p in elsewhere[claim["id"]] if p.comparable and p.verdict is not None]
                compared += bool(judged)
                differ += provisional(verdict_of(claim), judged)
        notes.append(f"{label.upper()} (results/<profile>/paths/{label}/): {compared - differ} of {compared} comparable "
                     f"verdicts agree; {differ} provisional")
    return notes


def markdown_table(frame) -> list[str]:
    """A GitHub-markdown table of a frame of strings (pipes and tags escaped, newlines flattened)."""
    # Own writer: DataFrame.to_markdown needs tabulate (no dependency) and pads cells, changing the published tables.
    def row(cells) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")
                                 for c in cells) + " |"

    return [row(frame.columns), row(["---"] * len(frame.columns)), *(row(r) for r in frame.itertuples(index=False))]


def run_notes(records: list[dict], root: str | Path = ".") -> list[str]:
    """Per run: wall time, device, CPU capability / oneDNN ISA / threads, and whether it is current;
    then a warning when the records came from different CPU capabilities."""
    from ticketlib.runner.provenance import stale_reasons

    notes, capabilities = [], {}
    for record in records:
        seconds, found = record.get("seconds"), record.get("provenance") or {}
        cpu = found.get("cpu") or {}
        took = f"{seconds:.0f} s" if isinstance(seconds, (int, float)) else "time not recorded"
        kernels = (f"; CPU {cpu.get('capability')}, oneDNN ISA {cpu.get('onednn_max_isa')}, "
                   f"{found.get('threads')} threads" if cpu else "")
        reasons = stale_reasons(record, root)
        state = "current" if not reasons else f"stale: {', '.join(reasons)}"
        notes.append(f"{record['run']}: {took} on {record.get('device')}{kernels}; {state}")
        if cpu.get("capability"):
            capabilities.setdefault(cpu["capability"], []).append(record["run"])
    if len(capabilities) > 1:
        mixed = "; ".join(f"{cap}: {', '.join(runs)}" for cap, runs in sorted(capabilities.items()))
        notes.append(f"warning: the records come from different CPU capabilities ({mixed}); "
                     "their numbers are not bit-comparable")
    return notes


def timing_notes(records: list[dict]) -> list[str]:
    """Per timing claim (`contention.TIMING_CLAIMS` or any claim carrying a contention summary): whether its
    machine was quiet, by `contention`'s rule, in words."""
    from ticketlib.infra.contention import TIMING_CLAIMS

    notes = []
    for record in records:
        for claim in record["claims"]:
            found = claim.get("contention")
            if found is None and claim["id"] not in TIMING_CLAIMS:
                continue
            if found:
                state, text = found["state"], found["text"]
            elif claim.get("source") == "not judged":
                state, text = "not judged", "nothing was timed to judge"
            else:
                state, text = "not measured", "contention not recorded (a record older than the contention rule)"
            notes.append(f"{record['run']} {claim['id']}: {state} — {text}")
    return notes


def scorecard_markdown(records: list[dict], profile: str, root: str | Path = ".",
                       others: dict[str, dict[str, dict]] | None = None) -> str:
    """The scorecard: one row per claim, the verdict counts, the method, and per-run provenance notes; with
    `others`, each claim's verdict on the other published CPU paths and how many agree."""
    from ticketlib.verdicts.engine import METHOD

    claims = [c for r in records for c in r["claims"]]
    lines = [f"# Scorecard — profile `{profile}`", "", f"**{counts(claims)}** across {len(records)} run(s).", "",
             *markdown_table(claims_frame(records, others).replace({"verdict": {"fails": "**fails**",
                                                                                "inconclusive": "*inconclusive*"}})),
             "", f"Method: {METHOD}.", "", "Runs:", *(f"- {note}" for note in run_notes(records, root))]
    elsewhere = paths_notes(records, others)
    if elsewhere:
        lines += ["", "Other CPU paths (a claim is provisional where a path of the same params judged it otherwise):",
                  *(f"- {note}" for note in elsewhere)]
    timing = timing_notes(records)
    if timing:
        lines += ["", f"Timing claims, whether the machine was quiet ({RULE}):", *(f"- {note}" for note in timing)]
    return "\n".join(lines) + "\n"


def notebook_page(run_dir: Path, run: str) -> str:
    """The executed notebook's HTML page when there is one, else the notebook itself."""
    return run + (".html" if (run_dir / f"{run}.html").exists() else ".ipynb")


def scorecard_html(records: list[dict], profile: str, run_dir: Path, root: str | Path = ".",
                   others: dict[str, dict[str, dict]] | None = None) -> str:
    """index.html: the summary figure, the claims coloured by verdict (linking the executed notebooks),
    the method, the per-run notes and the published files."""
    from ticketlib.verdicts.engine import METHOD

    run_dir = Path(run_dir)
    frame = claims_frame(records, others)
    if frame.empty:
        table = "<p>No run records.</p>"
    else:
        verdicts, statements = frame["verdict"], [c["statement"] for r in records for c in r["claims"]]
        frame["run"] = [f"<a href='{html.escape(notebook_page(run_dir, run))}'>{html.escape(run)}</a>"
                        for run in frame["run"]]
        table = (frame.style.hide(axis="index")
                 .format(escape="html", subset=list(frame.columns[1:]))
                 .set_td_classes(frame.apply(lambda row: [verdicts[row.name]] * len(row), axis=1,
                                             result_type="broadcast"))
                 .set_tooltips(frame[["claim"]].assign(claim=statements))
                 .set_table_attributes("class='scorecard'").to_html())
    figure = "<p><img src='summary.png' alt='estimates against thresholds' style='max-width:100%'></p>" \
        if (run_dir / "summary.png").exists() else ""
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in run_notes(records, root))
    timing = "".join(f"<li>{html.escape(note)}</li>" for note in timing_notes(records))
    timing = f"<h2>Timing claims</h2><p>{html.escape(RULE)}.</p><ul>{timing}</ul>" if timing else ""
    elsewhere = "".join(f"<li>{html.escape(note)}</li>" for note in paths_notes(records, others))
    timing += (f"<h2>Other CPU paths</h2><p>A claim is provisional where a path of the same params judged it "
               f"otherwise.</p><ul>{elsewhere}</ul>" if elsewhere else "")
    files = "".join(f"<li>{html.escape(r['run'])}: " + ", ".join(
        f"<a href='{html.escape(r['run'] + ext)}'>{ext[1:]}</a>" for ext in (".html", ".ipynb", ".json")
        if (run_dir / f"{r['run']}{ext}").exists()) + "</li>" for r in records)
    claims = [c for r in records for c in r["claims"]]
    style = ("body{font-family:sans-serif;margin:1.5em} table.scorecard{border-collapse:collapse;font-size:13px}"
             " table.scorecard td,table.scorecard th{border:1px solid #bbb;padding:3px 6px;vertical-align:top}"
             + "".join(f" td.{verdict}{{background:{colour}}}" for verdict, colour in ROW_COLOURS.items()))
    return ("<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>ticketlib scorecard — {html.escape(profile)}</title><style>{style}</style></head><body>"
            f"<h1>Scorecard — profile {html.escape(profile)}</h1><p><b>{html.escape(counts(claims))}</b> across "
            f"{len(records)} run(s) (<a href='scorecard.md'>scorecard.md</a>).</p>{figure}{table}"
            f"<h2>Method</h2><p>{html.escape(METHOD)}.</p><h2>Runs</h2><ul>{notes}</ul>{timing}"
            f"<h2>Files</h2><ul>{files}</ul></body></html>")


def summary_figure(records: list[dict], path: str | Path) -> Path | None:
    """Each claim's estimate and interval against its threshold, one panel per claim, one row per run,
    coloured by verdict (the claimed side shaded). None when no claim has an estimate (old records)."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    rows = [(r["run"], [c for c in r["claims"] if c.get("estimate") is not None]) for r in records]
    rows = [(run, claims) for run, claims in rows if claims]
    if not rows:
        return None
    width = max(len(claims) for _, claims in rows)
    figure = Figure(figsize=(2.3 * width + 1.2, 1.15 * len(rows) + 0.7), layout="constrained")
    axes = figure.subplots(len(rows), width, squeeze=False)
    for row, (run, claims) in zip(axes, rows):
        row[0].set_ylabel(run, rotation=0, ha="right", va="center", fontsize=9)
        for ax in row[len(claims):]:
            ax.set_axis_off()
        for ax, claim in zip(row, claims):
            _claim_panel(ax, claim)
    handles = [Line2D([], [], marker="o", ls="", color=colour, label=verdict)
               for verdict, colour in VERDICT_COLOURS.items()]
    handles += [Line2D([], [], ls="--", color="0.3", label="threshold (basis: paper, direction, definition or ours)"),
                Patch(color="0.5", alpha=0.15, label="claimed side")]
    figure.legend(handles=handles, loc="outside upper center", ncols=3, fontsize=8, frameon=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=96, pil_kwargs={"optimize": True})
    return path


def _claim_panel(ax, claim: dict) -> None:
    """One claim: its estimate (a dot; hollow without an interval), its interval, the threshold line."""
    colour, estimate, threshold = VERDICT_COLOURS[verdict_of(claim)], claim["estimate"], claim["threshold"]
    low, high = claim.get("interval") or (None, None)
    has_interval = low is not None and high is not None
    if has_interval and low != high:
        ax.errorbar([estimate], [0], xerr=[[estimate - low], [high - estimate]], fmt="o", color=colour, capsize=3)
    else:
        ax.plot([estimate], [0], "o", color=colour, mfc=colour if has_interval else "white")
    ends = [estimate, threshold] + ([low, high] if has_interval else [])
    span = (max(ends) - min(ends)) or abs(threshold) or 1.0
    left, right = min(ends) - 0.2 * span, max(ends) + 0.2 * span
    ax.axvline(threshold, color="0.3", ls="--", lw=1)
    ax.axvspan(*((threshold, right) if claim.get("direction") == ">" else (left, threshold)), color="0.5", alpha=0.15)
    ax.set_xlim(left, right)
    ax.set_ylim(-1, 1)
    ax.set_yticks([])
    ax.tick_params(labelsize=7)
    ax.set_title(claim["id"], fontsize=7.5, color=colour)
    ax.text(0.03, 0.93, f"claimed: {threshold_text(claim)}", transform=ax.transAxes, fontsize=6.5, color="0.25",
            va="top")


def export_html(notebook: Path) -> Path:
    """A standalone HTML copy of an executed notebook beside it, figures embedded as data URIs
    (redone only when the notebook is newer)."""
    from nbconvert import HTMLExporter

    target = notebook.with_suffix(".html")
    if not target.exists() or target.stat().st_mtime < notebook.stat().st_mtime:
        body, _ = HTMLExporter(embed_images=True).from_filename(str(notebook))
        target.write_text(body)
    return target


def write_scorecard(out_dir: str | Path, records: list[dict], profile: str, root: str | Path = ".",
                    others: dict[str, dict[str, dict]] | None = None) -> str:
    """Write scorecard.md, summary.png and index.html into `out_dir` (with `others`: the other CPU paths'
    verdicts); return the markdown."""
    out_dir = Path(out_dir)
    text = scorecard_markdown(records, profile, root, others)
    (out_dir / "scorecard.md").write_text(text)
    if summary_figure(records, out_dir / "summary.png") is None:
        (out_dir / "summary.png").unlink(missing_ok=True)
    (out_dir / "index.html").write_text(scorecard_html(records, profile, out_dir, root, others))
    return text


def scorecard(run_dir: str | Path, html_pages: bool = True, root: str | Path = ".") -> str:
    """Write `scorecard.md`, `summary.png` and `index.html` for a profile's runs (stale runs marked,
    against the files under `root`); return the markdown."""
    run_dir = Path(run_dir)
    records = load_records(run_dir)
    if html_pages:
        for record in records:
            notebook = run_dir / f"{record['run']}.ipynb"
            if notebook.exists():
                export_html(notebook)
    profile = records[0]["profile"] if records else run_dir.name
    return write_scorecard(run_dir, records, profile, root)

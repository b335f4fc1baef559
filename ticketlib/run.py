"""The runner: validate a params file, execute its notebook with papermill, complete the run record.

`python -m ticketlib run params/cpu/01_imp.yaml` writes runs/cpu/01_imp.ipynb and
runs/cpu/01_imp.json. The executed notebook is written under a `.partial` name and
renamed only on success, so make never mistakes a failed run for a finished one;
the failed copy stays for reading, and finished training units stay in the cache.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

from . import __version__
from .config import ParamError, resolve
from .report import write_json


def run_paths(params_path: str | Path, out_root: str | Path = "runs") -> tuple[str, str, Path, Path]:
    """(profile, run name, executed-notebook path, record path) for a params file."""
    params_path = Path(params_path)
    profile, run_name = params_path.parent.name, params_path.stem
    out_dir = Path(out_root) / profile
    return profile, run_name, out_dir / f"{run_name}.ipynb", out_dir / f"{run_name}.json"


def versions() -> dict:
    import torch

    found = {"python": platform.python_version(), "torch": torch.__version__, "ticketlib": __version__}
    for package in ("torchvision", "transformers", "papermill"):
        try:
            found[package] = __import__(package).__version__
        except ImportError:
            pass
    return found


def device_name() -> str:
    import torch

    return f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)"


def execute(params_path: str | Path, out_root: str | Path = "runs", notebooks: str | Path = "notebooks",
            log_output: bool = False, kernel_name: str = "python3") -> Path:
    """Validate, execute, record. Raises ParamError before anything runs if the params are wrong."""
    import papermill

    notebook, params = resolve(params_path, notebooks)
    profile, run_name, out_notebook, record_path = run_paths(params_path, out_root)
    out_notebook.parent.mkdir(parents=True, exist_ok=True)
    partial_notebook = out_notebook.with_name(f"{run_name}.partial.ipynb")
    partial_record = record_path.with_name(f"{run_name}.partial.json")
    for stale in (partial_notebook, partial_record):
        stale.unlink(missing_ok=True)
    injected = {**params, "profile": profile, "run_name": run_name, "record_path": str(partial_record.resolve())}
    start = time.perf_counter()
    papermill.execute_notebook(str(notebook), str(partial_notebook), parameters=injected,
                               kernel_name=kernel_name, log_output=log_output, progress_bar=False,
                               cwd=str(Path.cwd()))
    seconds = time.perf_counter() - start
    if not partial_record.exists():
        raise RuntimeError(f"{notebook} finished without saving its record (call record.save() last)")
    body = json.loads(partial_record.read_text())
    record = {"run": run_name, "notebook": str(notebook), "profile": profile, "params": params,
              "seconds": round(seconds, 1), "device": device_name(), "versions": versions(),
              "metrics": body["metrics"], "claims": body["claims"]}
    write_json(record_path, record)
    partial_record.unlink()
    os.replace(partial_notebook, out_notebook)
    return record_path


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m ticketlib", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="validate and execute params files")
    run_p.add_argument("params", nargs="+")
    run_p.add_argument("--out", default="runs", help="output root (default: runs)")
    run_p.add_argument("--log-output", action="store_true", help="stream the notebook's output")
    check_p = sub.add_parser("validate", help="validate params files without running anything")
    check_p.add_argument("params", nargs="+")
    card_p = sub.add_parser("scorecard", help="write and print the scorecard of a runs/<profile> folder")
    card_p.add_argument("run_dir")
    card_p.add_argument("--no-html", action="store_true")
    args = parser.parse_args(argv)

    if args.command == "scorecard":
        from .report import scorecard

        print(scorecard(args.run_dir, html_pages=not args.no_html))
        return 0
    try:  # validate every file first: a typo in the last one must not cost the first one's run
        for path in args.params:
            resolve(path)
    except ParamError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.command == "validate":
        print(f"{len(args.params)} params file(s) valid")
        return 0
    for path in args.params:
        try:
            record = execute(path, out_root=args.out, log_output=args.log_output)
        except Exception as error:  # papermill's error carries the failing cell; keep the message short
            partial = run_paths(path, args.out)[2].with_suffix(".partial.ipynb")
            reason = f"{getattr(error, 'ename', type(error).__name__)}: {getattr(error, 'evalue', error)}"
            print(f"error: {path}: the notebook failed ({reason}); read {partial}; "
                  "finished training units stay cached and a re-run resumes from them", file=sys.stderr)
            return 1
        claims = json.loads(record.read_text())["claims"]
        held = sum(c["holds"] for c in claims)
        print(f"{path}: {held}/{len(claims)} claims hold -> {record}")
    return 0

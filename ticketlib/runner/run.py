"""The runner: validate a params file, execute its notebook with papermill, complete the run record.

`python -m ticketlib run params/cpu/01_imp.yaml` writes runs/cpu/01_imp.ipynb and
runs/cpu/01_imp.json. The executed notebook is written under a `.partial` name and
renamed only on success, so make never mistakes a failed run for a finished one;
the failed copy stays for reading, and finished training units stay in the cache.
"""
from __future__ import annotations

import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from ticketlib import __version__
from ticketlib.infra.cores import machine
from ticketlib.runner.config import ParamError, resolve, reused_runs
from ticketlib.infra.progress import Monitor, expected_units
from ticketlib.runner.report import write_json
from ticketlib.runner.provenance import LIBRARY, library_sha256, sha256_file, stale_reasons  # noqa: F401 (run.stale_reasons)



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

    return f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else f"cpu ({machine()} cores)"


def git_state(repo: str | Path) -> tuple[str | None, bool | None]:
    """(HEAD commit, whether tracked files under ticketlib/ notebooks/ params/ differ from it); Nones outside git."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None, None
    status = git("status", "--porcelain", "--untracked-files=no", "--", "ticketlib", "notebooks", "params")
    return commit.strip(), None if status is None else bool(status.strip())


def cpu_info() -> dict:
    """The CPU and the kernels torch picks on it: numbers may differ across capabilities (AVX2 vs AVX512)."""
    import torch

    try:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), None)
    except OSError:
        model = None
    try:
        bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # not built with oneDNN, or the private op moved
        bf16 = None
    cores = machine()
    return {"model": model or platform.processor() or None, "capability": torch.backends.cpu.get_cpu_capability(),
            "onednn_max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA") or "default",
            "aten_cpu_capability_env": os.environ.get("ATEN_CPU_CAPABILITY"),
            "cores_available": cores, "bf16_native": bf16}


def provenance(params_path: str | Path, notebook: str | Path, library: str | Path = LIBRARY) -> dict:
    """What a run came from (file hashes, commit) and what it ran on (versions, device, CPU, threads)."""
    import torch

    from ticketlib.infra.device import set_policy

    commit, dirty = git_state(Path(library).parent)
    return {"params_sha256": sha256_file(params_path), "notebook_sha256": sha256_file(notebook),
            "library_sha256": library_sha256(library), "commit": commit, "dirty": dirty,
            "versions": versions(), "device": device_name(), "threads": torch.get_num_threads(), "cpu": cpu_info(),
            "policy": set_policy()}


# notebooks that train in their own process (not only through execute.map_units): never from a submit-only host
TRAINS_IN_NOTEBOOK = ("02_conservation", "03_bert_transfer", "04_early_tickets", "06_deployment")


def check_environment(params: dict, notebook: str | None = None) -> None:
    """Fail before the notebook starts when this machine lacks what the params ask for: a CUDA GPU
    (`device: cuda`) or the package of a distributed `executor` (dask, slurm). A host without a GPU may submit
    a notebook (`notebook`, its stem) whose every unit goes to a remote executor (Slurm, a Dask address)."""
    from ticketlib.infra import device
    from ticketlib.infra import execute

    execute.check_backend(params.get("executor", "auto"))
    if notebook is not None and execute.remote(params.get("executor", "auto")) and params.get("device") == "cuda":
        import torch

        if not torch.cuda.is_available():
            if notebook in TRAINS_IN_NOTEBOOK:
                raise RuntimeError(f"{notebook} trains in the notebook's own process, not only through the executor: "
                                   "run it on a GPU node (e.g. `srun --gpus=1 python -m ticketlib run ...`)")
            os.environ[device.SUBMIT_ONLY] = "1"  # this host submits; the units run on the cluster's GPUs
            return
    device.require(params.get("device", "auto"))


def execute(params_path: str | Path, out_root: str | Path = "runs", notebooks: str | Path = "notebooks",
            log_output: bool = False, kernel_name: str = "python3") -> Path:
    """Validate, execute, record. Raises ParamError before anything runs if the params are wrong."""
    import papermill

    from ticketlib.runner import truncate

    notebook, params = resolve(params_path, notebooks)
    check_environment(params, notebook.stem)
    for reused in reused_runs(notebook.stem, params, notebooks).values():  # e.g. 05 trains 01's recipe on 01's device
        check_environment({**reused, "executor": params.get("executor", "auto")}, notebook.stem)
    profile, run_name, out_notebook, record_path = run_paths(params_path, out_root)
    fixtures = truncate.active()
    if fixtures is not None:  # never beside, never mistaken for, a real run of the profile
        profile = f"{profile}-truncated"
        out_notebook, record_path = (Path(out_root) / profile / p.name for p in (out_notebook, record_path))
    out_notebook.parent.mkdir(parents=True, exist_ok=True)
    partial_notebook = out_notebook.with_name(f"{run_name}.partial.ipynb")
    partial_record = record_path.with_name(f"{run_name}.partial.json")
    for stale in (partial_notebook, partial_record):
        stale.unlink(missing_ok=True)
    injected = {**params, "profile": profile, "run_name": run_name, "record_path": str(partial_record.resolve())}
    origin = provenance(params_path, notebook)  # hashed before the run: the files it ran, not later edits
    start = time.perf_counter()
    with Monitor(run_name, record_path.with_name(f"{run_name}.units.jsonl"),
                 expected_units(params, Path("results") / profile / f"{run_name}.json", record_path)
                 ) as monitor:
        papermill.execute_notebook(str(notebook), str(partial_notebook), parameters=injected,
                                   kernel_name=kernel_name, log_output=log_output, progress_bar=False,
                                   cwd=str(Path.cwd()))
    seconds = time.perf_counter() - start
    units = monitor.units()
    monitor.events.unlink(missing_ok=True)
    if not partial_record.exists():
        raise RuntimeError(f"{notebook} finished without saving its record (call record.save() last)")
    body = json.loads(partial_record.read_text())
    record = {"run": run_name, "notebook": str(notebook), "profile": profile, "params": params,
              "provenance": origin, "seconds": round(seconds, 1), "units": units.as_record(), "device": origin["device"],
              "versions": origin["versions"], "metrics": body["metrics"], "claims": body["claims"]}
    if fixtures is not None:
        record["truncated"] = {"fixtures": str(fixtures), "overlay": truncate.overlay(notebook.stem, params, fixtures)}
    write_json(record_path, record)
    partial_record.unlink()
    os.replace(partial_notebook, out_notebook)
    return record_path


def compare_command(mine: Path, other: Path, full_table: bool) -> int:
    """Print how `mine`'s verdicts compare with `other`'s; 0 always (a differing verdict is information), 2 when
    either folder has no records."""
    from ticketlib.runner.compare import load_records, summary, table

    try:
        a, b = load_records(mine), load_records(other)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    names = (str(mine), str(other))
    print("\n".join(table(a, b, names)[0] if full_table else summary(a, b, names)))
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m ticketlib", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="validate and execute params files")
    run_p.add_argument("params", nargs="+")
    run_p.add_argument("--out", default="runs", help="output root (default: runs)")
    run_p.add_argument("--log-output", action="store_true", help="stream the notebook's output")
    run_p.add_argument("--truncate", metavar="DIR", help="a truncated run on the fixtures in DIR (built when "
                       "absent): 2 seeds, 1 round, ~6 iterations; records under <out>/<profile>-truncated/")
    check_p = sub.add_parser("validate", help="validate params files without running anything")
    check_p.add_argument("params", nargs="+")
    card_p = sub.add_parser("scorecard", help="write and print the scorecard of a runs/<profile> folder")
    card_p.add_argument("run_dir")
    card_p.add_argument("--no-html", action="store_true")
    cmp_p = sub.add_parser("compare", help="compare a run folder's verdicts with another's (e.g. the published one)")
    cmp_p.add_argument("mine", type=Path)
    cmp_p.add_argument("other", type=Path)
    cmp_p.add_argument("--table", action="store_true", help="every claim side by side, not only the differences")
    pub_p = sub.add_parser("publish", help="copy a complete, current run into results/<profile>/ and the README")
    pub_p.add_argument("--profile", default="cpu")
    pub_p.add_argument("--runs", default="runs", help="runs root (default: runs)")
    pub_p.add_argument("--results", default="results", help="results root (default: results)")
    pub_p.add_argument("--as-path", action="store_true",
                       help="publish a run of another CPU path into results/<profile>/paths/<capability>/")
    args = parser.parse_args(argv)

    if args.command == "scorecard":
        from ticketlib.runner.report import scorecard

        print(scorecard(args.run_dir, html_pages=not args.no_html))
        return 0
    if args.command == "compare":
        return compare_command(args.mine, args.other, args.table)
    if args.command == "publish":
        from ticketlib.runner.publish import PublishError, publish, publish_path

        try:
            out = (publish_path if args.as_path else publish)(args.profile, runs=args.runs, results=args.results)
        except PublishError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"published {args.runs}/{args.profile} -> {out} and README.md's scorecard")
        return 0
    if getattr(args, "truncate", None):
        from ticketlib.runner import fixtures
        from ticketlib.runner import truncate

        root = Path(args.truncate).resolve()
        if not (root / "fixtures.json").exists():  # GLUE's fixture only where `datasets` (the paper extra) reads it
            fixtures.build(root, with_glue=importlib.util.find_spec("datasets") is not None)
        os.environ[truncate.ENV] = str(root)  # inherited by the notebooks' kernels and their workers
    try:  # validate every file first: a typo in the last one must not cost the first one's run
        for path in args.params:
            notebook, params = resolve(path)
            if args.command == "run":
                check_environment(params, notebook.stem)
    except (ParamError, RuntimeError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.command == "validate":
        print(f"{len(args.params)} params file(s) valid")
        return 0
    from ticketlib.infra.cores import share_under_make

    share_under_make()  # under make -jN: this notebook's share of the cores, for its workers and threads
    from ticketlib.infra.cores import make_jobs
    from ticketlib.infra.device import pin_gpu

    if make_jobs() > 1:
        pin_gpu()  # and a GPU of its own where there are several
    for path in args.params:
        try:
            record = execute(path, out_root=args.out, log_output=args.log_output)
        except Exception as error:  # papermill's error carries the failing cell; keep the message short
            profile, _, executed, _ = run_paths(path, args.out)
            if os.environ.get("TICKETLIB_TRUNCATE"):
                executed = executed.parent.with_name(f"{profile}-truncated") / executed.name
            partial = executed.with_suffix(".partial.ipynb")
            reason = f"{getattr(error, 'ename', type(error).__name__)}: {getattr(error, 'evalue', error)}"
            print(f"error: {path}: the notebook failed ({reason}); read {partial}; "
                  "finished training units stay cached and a re-run resumes from them", file=sys.stderr)
            return 1
        from ticketlib.runner.report import counts

        print(f"{path}: {counts(json.loads(record.read_text())['claims'])} -> {record}")
    return 0

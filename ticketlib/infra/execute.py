"""One way to run many independent units (seeds × settings): an existing engine, never a home-made scheduler.

`map_units(unit, exp, jobs, ...)` calls `unit(exp=exp, data=data, cache=cache, progress=..., **job)` for
every job and returns the results in job order. Where the calls run is the backend:

- ``local`` (default): in this process for one worker, else a `concurrent.futures.ProcessPoolExecutor`
  of spawned processes with cores/workers torch threads each. Nothing to install, no server.
- ``dask``: a `distributed.Client` to the scheduler at `TICKETLIB_DASK_ADDRESS` (a cluster you
  started), or a `LocalCluster` of `workers` single-threaded processes when no address is set.
- ``slurm``: `submitit.AutoExecutor`, one job array per call (`TICKETLIB_SLURM_FOLDER` for its logs,
  `TICKETLIB_SLURM_PARTITION`, `TICKETLIB_SLURM_TIMEOUT_MIN`, `TICKETLIB_SLURM_CPUS`, `TICKETLIB_SLURM_GPUS`,
  `TICKETLIB_SLURM_UNITS_PER_JOB`); with
  `TICKETLIB_SLURM_CLUSTER=local` it runs the same jobs as local processes (tests, dry runs).

The backend comes from the notebook's `executor` parameter (unless "auto"), else the `TICKETLIB_EXECUTOR` variable,
else ``local``. Remote workers load the data themselves (once per process) and share the cache by
path: on a shared filesystem the cache is the results store, and a unit computed twice lands once
(see `cache.Cache.put`). Every worker returns CPU tensors and its cache hit/miss counts, which are
added to the caller's cache counters.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ticketlib.infra import cores
from ticketlib.infra.cache import Cache, canonical

BACKENDS = ("local", "dask", "slurm")
# A Slurm task's size, not the submitting host's: cores to feed one GPU (TICKETLIB_SLURM_CPUS), and a limit
# (TICKETLIB_SLURM_TIMEOUT_MIN) for the longest paper unit, a 01-vgg16 seed study of ~11 GPU-hours on an A100.
SLURM_CPUS = 8
SLURM_TIMEOUT_MIN = 24 * 60
ENV = "TICKETLIB_EXECUTOR"

_DATA: dict[tuple, Any] = {}  # a worker process's datasets, loaded once per (experiment, root)


def backend_name(requested: str | None = None) -> str:
    """The backend to use: `requested` unless it is None, "" or "auto"; else $TICKETLIB_EXECUTOR, else "local"."""
    requested = None if requested in (None, "", "auto") else requested
    name = (requested or os.environ.get(ENV, "") or "local").strip().lower()
    if name not in BACKENDS:
        raise ValueError(f"executor must be one of {BACKENDS}, got {name!r} "
                         f"(from {'the executor parameter' if requested else ENV})")
    return name


def check_backend(name: str) -> None:
    """Fail before any training when the chosen backend's package is missing."""
    package = {"dask": "distributed", "slurm": "submitit"}.get(backend_name(name))
    if package is not None:
        try:
            __import__(package)
        except ImportError:
            raise ImportError(f"executor {name!r} needs the {package} package: "
                              f"pip install 'ticketlib[sweep]' (or pip install {package})") from None


def remote(name: str | None) -> bool:
    """Whether units of backend `name` run on other machines: Slurm on a cluster, Dask at an address."""
    name = backend_name(name)
    if name == "slurm":
        return (os.environ.get("TICKETLIB_SLURM_CLUSTER") or "") != "local"
    return name == "dask" and bool(os.environ.get("TICKETLIB_DASK_ADDRESS", "").strip())


def worker_data(exp: Any, root: str, download: bool) -> Any:
    """`exp.load_data(...)`, loaded once per worker process for each experiment's data."""
    key = (type(exp).__name__, canonical(exp.key()), str(getattr(exp, "device", "")), root)
    if key not in _DATA:
        _DATA[key] = exp.load_data(root=root, download=download)
    return _DATA[key]


def run_unit(unit: Callable, exp: Any, job: dict, data_root: str, download: bool, cache_root: str | None,
             threads: int) -> tuple[Any, int, int]:
    """One unit in a worker: set its threads and the numerics policy, load (or reuse) the data, run; (result, hits,
    misses)."""
    import torch

    from ticketlib.infra.cache import to_cpu
    from ticketlib.infra.device import SUBMIT_ONLY, set_policy

    os.environ.pop(SUBMIT_ONLY, None)  # a worker runs its units where it is: cuda means its GPU, or an error
    torch.set_num_threads(threads)
    set_policy()
    cache = Cache(cache_root)
    result = unit(exp=exp, data=worker_data(exp, data_root, download), cache=cache, progress=False, **job)
    return to_cpu(result), cache.hits, cache.misses


def _local(calls: list[tuple], workers: int) -> list[tuple]:
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_pin_worker) as pool:
        futures = [pool.submit(run_unit, *call) for call in calls]
        return [future.result() for future in futures]


def _pin_worker() -> None:
    """A spawned worker's own GPU where there are several (`device.pin_gpu`), before CUDA starts in it."""
    from ticketlib.infra.device import pin_gpu

    pin_gpu()


def _dask(calls: list[tuple], workers: int) -> list[tuple]:
    from distributed import Client, LocalCluster

    address = os.environ.get("TICKETLIB_DASK_ADDRESS", "").strip()
    if address:
        with Client(address) as client:
            return client.gather([client.submit(run_unit, *call, pure=False) for call in calls])
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        return client.gather([client.submit(run_unit, *call, pure=False) for call in calls])


def _slurm(calls: list[tuple], workers: int, threads: int) -> list[tuple]:
    import submitit

    env = os.environ.get
    folder = Path(env("TICKETLIB_SLURM_FOLDER", "runs/submitit")) / "%j"
    cluster = env("TICKETLIB_SLURM_CLUSTER") or None
    executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    options: dict[str, Any] = {"timeout_min": int(env("TICKETLIB_SLURM_TIMEOUT_MIN", str(SLURM_TIMEOUT_MIN))),
                               # submitit's local mode runs on this host: its share of the cores, as before
                               "cpus_per_task": threads if cluster == "local"
                               else int(env("TICKETLIB_SLURM_CPUS", str(SLURM_CPUS)))}
    if env("TICKETLIB_SLURM_GPUS"):
        options["gpus_per_node"] = int(env("TICKETLIB_SLURM_GPUS"))
    if env("TICKETLIB_SLURM_PARTITION"):
        options["slurm_partition"] = env("TICKETLIB_SLURM_PARTITION")
    executor.update_parameters(**options)
    # One array task per unit on a cluster (TICKETLIB_SLURM_UNITS_PER_JOB groups short units); submitit's
    # local mode starts every task at once, so there the units are split into `workers` tasks.
    per_job = int(env("TICKETLIB_SLURM_UNITS_PER_JOB", "1")) if cluster != "local" else -(-len(calls) // workers)
    groups = [calls[start:start + per_job] for start in range(0, len(calls), per_job)]
    groups = [[(*call[:6], options["cpus_per_task"]) for call in group] for group in groups]  # the task's cores
    jobs = executor.map_array(run_units, groups)  # one job array
    return [outcome for job in jobs for outcome in job.result()]


def run_units(calls: list[tuple]) -> list[tuple[Any, int, int]]:
    """`run_unit` for each call, in order, in one process (one Slurm array task)."""
    return [run_unit(*call) for call in calls]


def map_units(unit: Callable, exp: Any, jobs: list[dict], data: Any = None, cache: Cache | None = None,
              workers: int = 1, backend: str | None = None, progress: bool = True, data_root: str = "data",
              download: bool = False) -> list[Any]:
    """`unit(exp=exp, data=data, cache=cache, progress=progress, **job)` for every job, results in job order.

    With the local backend and one worker the calls run here, on `data`, in order. Otherwise each
    runs in a worker with `cores.split(workers)` threads, loads its own data, and uses the cache at
    `cache.root`; the workers' cache hits and misses are added to `cache`'s counters.
    """
    cache = cache or Cache(None)
    name = backend_name(backend)
    if not jobs:
        return []
    workers, threads = cores.split(min(workers, len(jobs)))
    if name == "local" and workers == 1:
        if data is None:
            data = exp.load_data(root=data_root, download=download)
        return [unit(exp=exp, data=data, cache=cache, progress=progress, **job) for job in jobs]
    check_backend(name)
    root = str(Path(cache.root).resolve()) if cache.root is not None else None
    calls = [(unit, exp, job, str(Path(data_root).resolve()), download, root, threads) for job in jobs]
    if name == "local":
        outcomes = _local(calls, workers)
    elif name == "dask":
        outcomes = _dask(calls, workers)
    else:
        outcomes = _slurm(calls, workers, threads)
    results = []
    for result, hits, misses in outcomes:
        cache.hits, cache.misses = cache.hits + hits, cache.misses + misses
        results.append(result)
    return results

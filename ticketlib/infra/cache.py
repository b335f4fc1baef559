"""A content-addressed cache for expensive units (a training run, an IMP round).

Each unit is stored under `<root>/<hash of its key>/` as `payload.pt` plus `meta.json`: the key,
the payload's SHA-256, and where and how it was computed (device, numerical policy, versions,
seconds, how busy the machine was: `contention`), which identify nothing and so stay out of the key. Keys come from the configs
(`unit_key`: a dataclass contributes its `key()` if it has one, else all its fields), so a field
that does not change a unit's result (IMP's number of rounds, the early-bird detector's ε) is left
out in one place. Payloads are stored and returned on the CPU, fresh or cached alike.

Entries are written into a temporary folder and renamed into place. The rename is the commit: an
interrupted run leaves no half entry, and when two workers (processes, Dask workers, Slurm jobs on a
shared filesystem) compute the same unit, the first rename wins and the second worker drops its copy
(units are pure functions of their keys). An entry whose checksum or contents do not verify is
reported, removed and recomputed, never trusted. See ARCHITECTURE.md, "Units and the cache".
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ticketlib.infra.contention import Monitor, Window

CACHE_VERSION = 2  # bump when the meaning of a cached payload changes


def canonical(config: Any) -> str:
    """The canonical JSON text of a config: sorted keys, no whitespace, tuples as lists."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(config: Any) -> str:
    """16 hex digits naming a config's folder (stable across runs and machines; a test pins it)."""
    return hashlib.sha256(canonical({"v": CACHE_VERSION, "config": config}).encode()).hexdigest()[:16]


def atomic_write(path: str | Path, write: Callable[[Path], None], replace: bool = True) -> bool:
    """Create `path` whole or not at all: `write(tmp)` makes a file or a folder at a fresh path beside it, then
    that is renamed onto `path`. An existing `path` is replaced; with `replace=False` it is kept instead (the
    first writer wins) and False returned. Nothing is left behind on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=".tmp-"))
    tmp = staging / path.name
    try:
        write(tmp)
        if replace:
            if path.is_dir():
                shutil.rmtree(path)
            os.replace(tmp, path)
            return True
        try:  # a link, or a folder's rename, fails on an existing path: check and write in one step
            (os.link if tmp.is_file() else os.rename)(tmp, path)
        except OSError:
            if not path.exists():
                raise
            return False
        return True
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def unit_key(unit: str, **parts: Any) -> dict:
    """The cache key of a unit: its kind plus its parts, each config reduced to what identifies results.

    A part with a `key()` method (e.g. `Experiment`, which leaves out the device) gives that; any other
    dataclass gives all its fields; plain values stay as they are.
    """
    def reduce(part: Any) -> Any:
        if hasattr(part, "key") and callable(part.key):
            return part.key()
        if dataclasses.is_dataclass(part) and not isinstance(part, type):
            return dataclasses.asdict(part)
        return part

    return {"unit": unit, **{name: reduce(part) for name, part in parts.items()}}


def to_cpu(payload: Any) -> Any:
    """`payload` with every tensor (inside dicts, lists, tuples) moved to the CPU."""
    if isinstance(payload, torch.Tensor):
        return payload.detach().cpu()
    if isinstance(payload, dict):
        return {k: to_cpu(v) for k, v in payload.items()}
    if isinstance(payload, (list, tuple)):
        return type(payload)(to_cpu(v) for v in payload)
    return payload


def unit_meta(device: str | None, seconds: float | None, load: Window | None = None) -> dict:
    """Where and how a unit was computed: device, numerical policy, versions, wall seconds, and how busy the
    machine was meanwhile (`contention`, a `contention.Window` record; never part of the key)."""
    from ticketlib import __version__
    from ticketlib.infra.device import policy

    return {"device": device, "policy": policy(), "seconds": seconds,
            "versions": {"torch": torch.__version__, "ticketlib": __version__},
            "contention": None if load is None else load.to_dict()}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Cache:
    """Skip-if-done storage. `Cache(None)` disables caching (everything is recomputed)."""

    def __init__(self, root: str | Path | None = "runs/cache"):
        self.root = Path(root) if root is not None else None
        self.hits = 0
        self.misses = 0

    def path(self, config: Any) -> Path:
        assert self.root is not None
        return self.root / config_hash(config)

    def get(self, config: Any) -> Any | None:
        """The stored payload, or None if absent or corrupt (a corrupt entry is removed)."""
        if self.root is None:
            return None
        folder = self.path(config)
        if not folder.exists():
            return None
        try:
            meta = json.loads((folder / "meta.json").read_text())
            if meta["sha256"] != _sha256(folder / "payload.pt"):
                raise ValueError("checksum mismatch")
            if meta["config"] != json.loads(canonical(config)):
                raise ValueError("config mismatch (hash collision?)")
            return torch.load(folder / "payload.pt", map_location="cpu", weights_only=False)
        except Exception as error:  # any unreadable entry is recomputed
            warnings.warn(f"cache entry {folder} is corrupt ({error}); recomputing it")
            shutil.rmtree(folder, ignore_errors=True)
            return None

    def put(self, config: Any, payload: Any, meta: dict | None = None) -> bool:
        """Store atomically: write a temporary folder, then rename it into place.

        Returns False when another worker stored the same unit first (its entry is kept: same key,
        same result), True when this call's entry landed.
        """
        if self.root is None:
            return False
        record = {"config": json.loads(canonical(config)), "meta": meta or {}}

        def write(folder: Path) -> None:
            folder.mkdir()
            torch.save(payload, folder / "payload.pt")
            record["sha256"] = _sha256(folder / "payload.pt")
            (folder / "meta.json").write_text(json.dumps(record, indent=1, sort_keys=True, default=str))

        return atomic_write(self.path(config), write, replace=False)  # the first writer wins

    def drop(self, config: Any) -> None:
        """Remove a unit's entry (absent or not), so the next `cached` computes it again."""
        if self.root is not None:
            shutil.rmtree(self.path(config), ignore_errors=True)

    def meta(self, config: Any) -> dict | None:
        """The stored metadata of a unit (device, policy, versions, seconds), or None if absent."""
        if self.root is None or not (self.path(config) / "meta.json").exists():
            return None
        return json.loads((self.path(config) / "meta.json").read_text()).get("meta", {})

    def cached(self, config: Any, compute: Callable[[], Any], device: str | None = None) -> Any:
        """`get(config)` if stored, else `compute()` (moved to the CPU), stored before it is returned.

        `device` names where the unit runs (e.g. "cpu (2 cores)"): recorded in its metadata, not its key.
        """
        return self.cached_meta(config, compute, device)[0]

    def cached_meta(self, config: Any, compute: Callable[[], Any], device: str | None = None) -> tuple[Any, dict]:
        """`cached`, with the unit's metadata: the stored one for a hit (an entry older than the contention
        record has none: "not measured"), the fresh one (with its `contention` window) otherwise. Each unit
        reports to the runner's progress file (`progress.unit_done`). A unit computes under `device.set_policy()`
        (TF32 off, cuDNN deterministic: a no-op on the CPU), wherever it runs, so its key names its numerics."""
        from ticketlib.infra.device import set_policy
        from ticketlib.infra.progress import unit_done

        payload = self.get(config)
        if payload is not None:
            self.hits += 1
            unit_done(hit=True, seconds=0.0)
            return payload, self.meta(config) or {}
        self.misses += 1
        set_policy()
        with Monitor() as load:
            payload = to_cpu(compute())
        meta = unit_meta(device, load.window.wall, load.window)
        self.put(config, payload, meta)
        unit_done(hit=False, seconds=load.window.wall)
        return payload, meta

"""A content-addressed cache for expensive units (a training run, an IMP round).

Each unit is stored under `<root>/<hash of its config>/` as `payload.pt` plus
`meta.json` (the config and the payload's SHA-256). Entries are written into a
temporary folder and renamed into place, so an interrupted run leaves no half
entry; a re-run with the same config reuses it; an entry whose checksum or
contents do not verify is reported, removed and recomputed, never trusted.
"""
from __future__ import annotations

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

CACHE_VERSION = 2  # bump when the meaning of a cached payload changes


def canonical(config: Any) -> str:
    """The canonical JSON text of a config: sorted keys, no whitespace, tuples as lists."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(config: Any) -> str:
    """16 hex digits naming a config's folder (stable across runs and machines; a test pins it)."""
    return hashlib.sha256(canonical({"v": CACHE_VERSION, "config": config}).encode()).hexdigest()[:16]


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

    def put(self, config: Any, payload: Any) -> None:
        """Store atomically: write a temporary folder, then rename it into place."""
        if self.root is None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        folder = self.path(config)
        tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=".tmp-"))
        try:
            torch.save(payload, tmp / "payload.pt")
            meta = {"config": json.loads(canonical(config)), "sha256": _sha256(tmp / "payload.pt")}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def cached(self, config: Any, compute: Callable[[], Any]) -> Any:
        """`get(config)` if stored, else `compute()`, stored before it is returned."""
        payload = self.get(config)
        if payload is not None:
            self.hits += 1
            return payload
        self.misses += 1
        payload = compute()
        self.put(config, payload)
        return payload

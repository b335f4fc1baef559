"""Truncated runs: a paper params file end to end, with the paper's models and code paths, in minutes.

`python -m ticketlib run --truncate DIR params/paper/*.yaml` (or `TICKETLIB_TRUNCATE=DIR`) resolves each
params file as usual (every check of the full file runs), then overlays `overlay(...)`: 2 seeds, 1 IMP round
or level, ~10 iterations or a 2-iteration epoch, tiny splits, small batches, the fixtures under DIR
(`ticketlib.runner.fixtures`: CIFAR pickles, a local GLUE, a bert-base-shaped random encoder with its MLM head)
as data and weights, `device: auto`, no downloads, the cache under DIR/cache. The models, recipes'
optimizers, schedules' code paths and every notebook cell stay the paper's. The variable is inherited by
the notebook's kernel and its workers, so params files a notebook resolves itself (06's) are truncated too.

A truncated run's record says `"truncated"` and lands under runs/<profile>-truncated/; `publish` refuses it.
Its claims are computed but mean nothing.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ENV = "TICKETLIB_TRUNCATE"
SEEDS = 2
LEVEL = 80.0  # % remaining after one round of 20%: where truncated controls and criteria train


def active() -> Path | None:
    """The fixtures folder of the truncation in force ($TICKETLIB_TRUNCATE), else None."""
    value = os.environ.get(ENV, "").strip()
    return Path(value) if value else None


def _images(p: Mapping) -> dict:
    """Small splits and batches, ~10 iterations, schedule points scaled into them."""
    return {"batch_size": min(int(p["batch_size"]), 8), "train_size": 64, "val_size": 16, "test_size": 32,
            "duration": "6it", "eval_every": "3it",
            **({"milestones": ["3it"] if p["milestones"] else []} if "milestones" in p else {})}


def _imp(p: Mapping) -> dict:
    out = {**_images(p), "rounds": 1}
    if "control_levels" in p:
        out["control_levels"] = [LEVEL]
    if p.get("early_stop_seeds"):
        out["early_stop_seeds"] = list(p["early_stop_seeds"])[:1]  # the early-stop path, once
    if str(p.get("rewind", "0it")) not in ("0it", "0ep"):
        out["rewind"] = "2it"
    return out


def _conservation(p: Mapping) -> dict:
    return {**_images(p), "compressions": [float(p["control_compression"])], "synflow_iterations": 2,
            "search_tol": 0.5, "per_class": 1, "imp_duration": "6it",
            "imp_rounds": 4, "imp_fraction": 0.9}  # IMP reaches 10^4, past one-shot collapse (02 checks it can)


def _bert(p: Mapping, fixtures: Path | None) -> dict:
    out = {"tasks": list(p["tasks"])[:2], "max_length": 16, "train_size": 8, "val_size": 4, "test_size": 8,
           "mlm_train_size": 8, "mlm_val_size": 4, "mlm_test_size": 8, "batch_size": 4, "duration": "1ep",
           "eval_every": "1ep", "rounds": 1, "control_sparsities": [float(p["claim_sparsity"])]}
    if fixtures is not None and (fixtures / "bert-base-uncased").exists():
        out["encoder"] = str(fixtures / "bert-base-uncased")
    if fixtures is not None and (fixtures / "glue").exists():
        out["glue"] = str(fixtures / "glue")
    return out


def _earlybird(p: Mapping) -> dict:
    return {"batch_size": 8, "train_size": 16, "val_size": 16, "test_size": 32, "duration": "3ep",
            "milestones": ["2ep"], "retrain_duration": "2ep", "retrain_milestones": ["1ep"],
            "imp_duration": "6it", "imp_rounds": 1, "imp_train_size": 256, "latency_batch": 8, "latency_repeats": 2}


def _anatomy(p: Mapping) -> dict:
    """05: the one level truncated 01 (its `imp_params`, truncated too) prunes to; 01's recipe is truncated there."""
    return {"criteria_levels": [LEVEL], "action_levels": [LEVEL], "claim_level": LEVEL}


def _deployment(p: Mapping) -> dict:
    return {"batch_sizes": [1, 8], "threads": [1], "claim_threads": 1, "latency_repeats": 2,
            "min_sample_seconds": 0.0, "latency_percents": [100.0, LEVEL], "moderate_percent": LEVEL,
            "conv_percents": []}


def _stability(p: Mapping) -> dict:
    """07: the CNN's copies ~6 iterations from k in {0, 2}, 3 points on the path, LeNet at truncated 01's level."""
    return {"cnn_batch_size": 8, "cnn_train_size": 64, "cnn_val_size": 16, "cnn_test_size": 32,
            "cnn_duration": "6it", "cnn_eval_every": "3it", "cnn_milestones": ["3it"] if p.get("cnn_milestones") else [],
            "rewind_points": ["0it", "2it"], "points": 3,
            "lenet_levels": [LEVEL], "claim_level": LEVEL}  # the one level truncated 01 prunes to (and controls at)


OVERLAYS: dict[str, Callable[[Mapping], dict]] = {
    "01_imp": _imp, "02_conservation": _conservation, "04_early_tickets": _earlybird, "05_anatomy": _anatomy,
    "06_deployment": _deployment, "07_stability": _stability}


def overlay(notebook: str, params: Mapping, fixtures: Path | None = None) -> dict[str, Any]:
    """The parameters a truncated run of `notebook` (its stem, e.g. "01_imp") replaces in `params`."""
    out = _bert(params, fixtures) if notebook == "03_bert_transfer" else OVERLAYS[notebook](params)
    common: dict[str, Any] = {"seeds": list(params.get("seeds", [0]))[:SEEDS], "device": "auto",
                              "download": False, "progress": False}
    if fixtures is not None:
        common.update({"data_root": str(fixtures / "data"), "cache_dir": str(fixtures / "cache")})
    if "workers" in params:
        common["workers"] = min(int(params["workers"]), 2)
    return {key: value for key, value in {**common, **out}.items() if key in params}


def apply(notebook: str, params: dict) -> dict:
    """`params` with the truncation in force overlaid (unchanged when none is)."""
    fixtures = active()
    return params if fixtures is None else {**params, **overlay(notebook, params, fixtures)}

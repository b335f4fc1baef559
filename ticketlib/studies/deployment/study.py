"""06_deployment's study of forms: each checked against its masked dense reference, timed side by side, counted."""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from ticketlib.core.sparse import OUTPUT_RTOL
from ticketlib.core.cost import counted_flops, crossover_density, estimated_joules, latency_timing, measured_joules, quartiles
from ticketlib.core.sparse import max_relative_error, resident_bytes
from torch import nn




# --- a study of forms: checked, timed side by side, counted -----------------------------------------
@dataclass
class Forms:
    """The forms of one network to time together, each with its metadata and, for a form that is not
    its own reference, the check of its outputs against its masked dense reference (`max_relative_error`)."""

    modules: dict[str, nn.Module] = field(default_factory=dict)
    meta: dict[str, dict] = field(default_factory=dict)
    checks: list[dict] = field(default_factory=list)

    def add(self, key: str, module: nn.Module, reference: nn.Module | None = None, x: torch.Tensor | None = None,
            **info) -> None:
        """Register `module` as `key` with `info` (model, form, percent, ...); check it when `reference` is given."""
        self.modules[key], self.meta[key] = module, info
        if reference is not None:
            error, agree = max_relative_error(module, reference, x)
            self.checks.append({"network": info["model"], "form": info["form"], "% weights": info["percent"],
                                "max |Δ| / max |y|": error, "predictions agree": agree,
                                "within tolerance": error <= OUTPUT_RTOL})


def time_forms(groups: Sequence[tuple[Forms, torch.Tensor]], batch_sizes: Sequence[int], threads: Mapping[int, int],
               repeats: int, min_seconds: float) -> tuple[list[dict], dict[str, float]]:
    """Latency rows (a form's metadata, key, batch, threads, its `latency_timing` samples and `contention`) for
    every batch size and thread setting (`threads`: the setting as asked → the count used), each group's forms timed in turns
    on the first `batch` rows of its inputs; and the wall seconds each setting took."""
    rows, wall = [], {}
    for batch in batch_sizes:
        for asked, count in threads.items():
            begun = time.perf_counter()
            for forms, x in groups:
                timed = latency_timing(forms.modules, x[:batch].contiguous(), repeats, count, min_seconds)
                rows += [{**forms.meta[k], "key": k, "batch": batch, "threads": asked, "seconds": s,
                          "contention": timed.contention.record(k)} for k, s in timed.samples.items()]
            wall[f"batch {batch}, {count} thread(s)"] = time.perf_counter() - begun
    return rows, wall


def ratios_to_dense(rows: Sequence[Mapping], row: Mapping) -> list[float]:
    """Per repeat, `row`'s time over the time of its network's dense form at the same batch and threads."""
    dense = next(r for r in rows if r["model"] == row["model"] and r["form"] == "dense"
                 and r["batch"] == row["batch"] and r["threads"] == row["threads"])
    return [a / b for a, b in zip(row["seconds"], dense["seconds"])]


def crossovers(rows: Sequence[Mapping], model: str, layouts: Sequence[str], batch_sizes: Sequence[int],
               threads: Mapping[int, int]) -> dict[str, dict]:
    """Per layout, batch and thread setting: where `model`'s median latency ratio to dense crosses 1
    (`crossover_density` over the densities timed)."""
    found = {}
    for batch in batch_sizes:
        for asked, count in threads.items():
            for layout in layouts:
                points = [(r["percent"] / 100, quartiles(ratios_to_dense(rows, r))[1]) for r in rows
                          if r["model"] == model and r["form"] == layout and r["batch"] == batch
                          and r["threads"] == asked]
                cross = crossover_density(*zip(*points))
                found[f"{layout}, batch {batch}, {count} thread(s)"] = {
                    "layout": layout, "batch": batch, "threads": asked, "density": cross.density, "how": cross.how}
    return found


def compute_rows(groups: Sequence[tuple[Forms, torch.Tensor]]) -> list[dict]:
    """Per form: FLOPs of one input (its group's first row), resident bytes, and the estimated joules."""
    rows = []
    for forms, x in groups:
        for key, module in forms.modules.items():
            flops = counted_flops(module, x[:1])
            rows.append({**forms.meta[key], "key": key, "flops": flops, "resident_bytes": resident_bytes(module),
                         "estimated_joules": estimated_joules(flops)})
    return rows


def measure_energy(rows: list[dict], groups: Mapping[str, tuple[Forms, torch.Tensor]], counters: Mapping[str, Path],
                   threads: int) -> None:
    """Add `measured_joules` per image to each compute row (RAPL `counters`, on `threads` threads), timing its
    form on its group's whole input batch (`groups`: the rows' model name → forms and inputs)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for row in rows:
            forms, x = groups[row["model"]]
            module, batch = forms.modules[row["key"]], x.contiguous()
            with torch.inference_mode():
                row["measured_joules"] = measured_joules(lambda: module(batch), counters) / len(batch)
    finally:
        torch.set_num_threads(previous)

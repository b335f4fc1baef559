"""The paper profile's GPU-hours on this machine's GPU: each params file's steps (`ticketlib.runner.budget`, from its own
params) at the steps/s measured here for each kind of step it takes.

A step is timed on random inputs of the real shapes (a step's cost does not depend on pixel or token values) under
`device.set_policy()` (fp32, TF32 off, deterministic), BERT at its params' precision (`auto`: bf16 where native) with
`tokens` tokens per example, an upper bound under dynamic padding. Prints one line per file and the total.
Usage: python benchmarks/gpu_units.py [params/paper/*.yaml]; FAKE_STEPS_PER_SECOND=<n> skips the timing (tests).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ticketlib.runner import budget
from ticketlib.runner import config
from ticketlib.core import data
from ticketlib.core import models
from ticketlib.infra.device import resolve_precision, set_policy


def steps_per_second(step, warmup: int = 3, seconds: float = 2.0) -> float:
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    start, count = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        step()
        count += 1
    torch.cuda.synchronize()
    return count / (time.perf_counter() - start)


def cnn_step(kind: budget.StepKind):
    shape = (1, 28, 28) if kind.dataset in ("mnist", "fashion_mnist") else (3, 32, 32)
    model = models.build(kind.model, shape, data.NUM_CLASSES[kind.dataset]).cuda()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(kind.batch, *shape, device="cuda")
    y = torch.randint(0, data.NUM_CLASSES[kind.dataset], (kind.batch,), device="cuda")

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    return step


def bert_step(kind: budget.StepKind):
    from transformers import BertConfig, BertForSequenceClassification

    model = BertForSequenceClassification(BertConfig(num_labels=2)).cuda()  # bert-base's shape
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
    ids = torch.randint(0, 30522, (kind.batch, kind.tokens), device="cuda")
    labels = torch.randint(0, 2, (kind.batch,), device="cuda")
    bf16 = resolve_precision(kind.precision, "cuda")[0] == "bf16"

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        optimizer.step()

    return step


def measure(kind: budget.StepKind, cache: dict) -> float:
    if os.environ.get("FAKE_STEPS_PER_SECOND"):
        return float(os.environ["FAKE_STEPS_PER_SECOND"])
    if kind not in cache:
        cache[kind] = steps_per_second(bert_step(kind) if kind.tokens else cnn_step(kind))
        print(f"  {kind}: {cache[kind]:.1f} steps/s", flush=True)
    return cache[kind]


def main(paths: list[str]) -> None:
    if not os.environ.get("FAKE_STEPS_PER_SECOND"):
        set_policy()
        print(f"GPU: {torch.cuda.get_device_name(0)}; fp32 CNNs, TF32 off, deterministic")
    timed: dict = {}
    total = 0.0
    for path in paths:
        notebook, params = config.resolve(path)
        steps = budget.work(notebook.stem, params)
        hours = budget.gpu_hours(steps, lambda kind: measure(kind, timed))
        total += hours
        print(f"{Path(path).stem}: {sum(n for _, n in steps):,} steps, {hours:.1f} GPU-h", flush=True)
    print(f"paper profile: {total:.0f} GPU-h on this GPU (steps from the params; +-50%: rewound rounds, slimmed "
          f"networks and padding train less, evaluation and data loading are not timed)")


if __name__ == "__main__":
    main(sys.argv[1:] or sorted(str(p) for p in Path("params/paper").glob("*.yaml")))

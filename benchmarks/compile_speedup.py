"""`torch.compile` against eager for each cpu notebook's training step, measured side by side in one run.

Issue 26 asks whether compiling buys the `cpu` profile its hour. Each kind of step runs in a fresh child
process (compilation state and thread pools are per process), with the thread count its notebook uses
(1 in the two-worker notebooks 01, 02, 05, 07; 2 in 03 and 04, which train one unit at a time). In that
child the same model, batch and optimizer are stepped eager and compiled in alternating blocks, so both
see the same machine state; the ratio is compiled / eager seconds per step (below 1: compiling pays).
The first compiled step's time is reported apart, as the cold compile cost a worker pays per model.

    .venv/bin/python benchmarks/compile_speedup.py                  # every kind, 3 alternating blocks each
    .venv/bin/python benchmarks/compile_speedup.py --kinds lenet_b60 --blocks 2

Compilation needs a C++ compiler (inductor's CPU backend): where it fails, the kind prints
"unavailable" with the error's first line, and the eager time alone. The environment's
ATEN_CPU_CAPABILITY / ONEDNN_MAX_CPU_ISA are passed through: run it under both CPU paths.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

STEPS = {"lenet_b60": 200, "vgg16w8_b64": 20, "vgg11w8_b64": 20, "vgg11w8_b256": 6, "minilm_b32x64": 3}
THREADS = {"lenet_b60": 1, "vgg16w8_b64": 1, "vgg11w8_b64": 1, "vgg11w8_b256": 2, "minilm_b32x64": 2}
WHERE = {"lenet_b60": "01, 05, 07 (LeNet-300-100, Adam)", "vgg16w8_b64": "02 (VGG-16/8, SGD)",
         "vgg11w8_b64": "07 (VGG-11/8, SGD)", "vgg11w8_b256": "04 (VGG-11/8, SGD + L1 on BN)",
         "minilm_b32x64": "03 (MiniLM, AdamW, fp32)"}


def _image_step(model_name: str, batch: int, optimizer: str, lr: float, bn_l1: bool = False):
    """(model, step(forward)) for one image kind: `forward` is the eager or the compiled module."""
    import torch
    import torch.nn.functional as F

    from ticketlib.core import models
    from ticketlib.core.train import TrainConfig, make_optimizer

    torch.manual_seed(0)
    if model_name == "lenet_300_100":
        net, shape = models.build(model_name, (1, 28, 28), 10), (1, 28, 28)
    else:
        net, shape = models.build(model_name, (1, 32, 32), 10, width=0.125), (1, 32, 32)
    opt = make_optimizer(net, TrainConfig(optimizer=optimizer, lr=lr, batch_size=batch))
    x, y = torch.randn(batch, *shape), torch.randint(0, 10, (batch,))
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)] if bn_l1 else []

    def step(forward: Callable) -> None:
        loss = F.cross_entropy(forward(x), y)
        if bns:
            loss = loss + 1e-4 * sum(bn.weight.abs().sum() for bn in bns)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return net, step


def _minilm_step():
    """(model, step(forward)) for 03's MiniLM fine-tuning step, batch 32 x 64 tokens, fp32."""
    import torch
    import torch.nn.functional as F

    from ticketlib.core.train import TrainConfig, make_optimizer
    from ticketlib.studies.bert_transfer import study as bert

    setup = bert.BertSetup(TrainConfig(optimizer="adamw", lr=5e-5, batch_size=32), pooling="mean",
                           precision="fp32", device="cpu")
    task = type("Task", (), {"kind": "classification", "num_classes": 2})()
    model = setup.build_model(task, 0)
    opt = make_optimizer(model, setup.train)
    ids = torch.randint(1000, 30000, (32, 64), generator=torch.Generator().manual_seed(0))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.randint(0, 2, (32,))}

    def step(forward: Callable) -> None:
        logits, target = forward(**batch)
        loss = F.cross_entropy(logits.float(), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return model, step


def _build(kind: str):
    if kind == "minilm_b32x64":
        return _minilm_step()
    name, batch = {"lenet_b60": ("lenet_300_100", 60), "vgg16w8_b64": ("vgg16", 64),
                   "vgg11w8_b64": ("vgg11", 64), "vgg11w8_b256": ("vgg11", 256)}[kind]
    optimizer, lr = ("adam", 1.2e-3) if name == "lenet_300_100" else ("sgd", 0.05)
    return _image_step(name, batch, optimizer, lr, bn_l1=kind == "vgg11w8_b256")


def _seconds_per_step(step: Callable, forward: Callable, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step(forward)
    return (time.perf_counter() - start) / steps


def child(kind: str, blocks: int) -> dict:
    """Eager and compiled blocks alternating in this process; medians of each."""
    import torch

    torch.set_num_threads(THREADS[kind])
    model, step = _build(kind)
    step(model)  # eager warm-up (oneDNN primitives, allocator)
    out: dict = {"kind": kind, "threads": THREADS[kind], "capability": torch.backends.cpu.get_cpu_capability()}
    try:
        compiled = torch.compile(model)
        start = time.perf_counter()
        step(compiled)
        out["compile_seconds"] = time.perf_counter() - start
    except Exception as error:  # no C++ compiler, or inductor cannot lower the model
        compiled, out["unavailable"] = None, str(error).strip().splitlines()[0][:200]
    eager, comp = [], []
    for _ in range(blocks):
        eager.append(_seconds_per_step(step, model, STEPS[kind]))
        if compiled is not None:
            comp.append(_seconds_per_step(step, compiled, STEPS[kind]))
    out["eager_ms"] = 1000 * statistics.median(eager)
    if comp:
        out["compiled_ms"] = 1000 * statistics.median(comp)
        out["ratio"] = out["compiled_ms"] / out["eager_ms"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="*", default=list(STEPS), choices=list(STEPS))
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.blocks)))
        return
    print(f"{'kind':<15} {'used in':<34} {'thr':>3} {'eager ms':>9} {'compiled ms':>11} {'ratio':>6} {'compile s':>9}")
    capability = "?"
    for kind in args.kinds:
        done = subprocess.run([sys.executable, __file__, "--child", kind, "--blocks", str(args.blocks)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{kind:<15} failed: {done.stderr.strip().splitlines()[-1][:120]}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        capability = r["capability"]
        if "ratio" in r:
            print(f"{kind:<15} {WHERE[kind]:<34} {r['threads']:>3} {r['eager_ms']:>9.2f} {r['compiled_ms']:>11.2f} "
                  f"{r['ratio']:>6.2f} {r['compile_seconds']:>9.1f}")
        else:
            print(f"{kind:<15} {WHERE[kind]:<34} {r['threads']:>3} {r['eager_ms']:>9.2f} unavailable: {r['unavailable']}")
    print(f"capability: {capability}; ratio = compiled / eager per step (medians of {args.blocks} "
          "alternating blocks); compile s = the first compiled step, cold (includes inductor's codegen)")


if __name__ == "__main__":
    main()

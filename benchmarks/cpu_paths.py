"""Each notebook's typical unit on the default CPU path and on the AVX2-only path, side by side.

The AVX2 path is what a CPU without AVX-512/AMX runs: `ATEN_CPU_CAPABILITY=avx2` limits torch's
own kernels and `ONEDNN_MAX_CPU_ISA=AVX2` oneDNN's (convolutions, bf16 matmuls). Both must be set
before torch is imported, so every measurement runs in a fresh child process, one at a time (two
processes that each use every core would slow each other down far more than 2x). The ratio
AVX2 / default says how much longer the `cpu` profile takes on such a machine; `make reproduce`
must fit its hour on the AVX2 path.

    .venv/bin/python benchmarks/cpu_paths.py            # every unit, both paths
    .venv/bin/python benchmarks/cpu_paths.py --units minilm_step_fp32 --repeats 1
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def _lenet_round(iterations: int = 1000) -> float:
    """Seconds per 1000 iterations of a masked LeNet-300-100 round (01, 05), one thread as in their workers."""
    import torch

    from ticketlib.studies.imp import study as imp
    from ticketlib.core.masks import Mask
    from ticketlib.core.train import TrainConfig, train

    torch.set_num_threads(1)
    exp = imp.Experiment("lenet_300_100", "mnist", TrainConfig(duration=f"{iterations}it", eval_every=f"{iterations}it"))
    data = exp.load_data()
    model = exp.build_model(data, 0)
    start = time.perf_counter()
    train(model, data, exp.train, mask=Mask.ones_like(model), progress=False)
    return (time.perf_counter() - start) * 1000 / iterations


def _vgg16_synflow(iterations: int = 5) -> float:
    """Seconds per SynFlow iteration (scoring and thresholding) on the full VGG-16 at init (02)."""
    import torch

    from ticketlib.core import models
    from ticketlib.studies.conservation import study as pai
    from ticketlib.core.masks import Mask

    torch.manual_seed(0)
    net = models.build("vgg16", (1, 32, 32), 10)
    dense = Mask.ones_like(net)
    scorer = pai.make_scorer("synflow", net, input_shape=(1, 32, 32))
    start = time.perf_counter()
    pai.prune_iteratively(scorer, dense, 0.01, iterations)
    return (time.perf_counter() - start) / iterations


def _minilm_step(precision: str, steps: int = 6) -> float:
    """Seconds per MiniLM fine-tuning step, batch 32 x 64 tokens (03), in `precision`."""
    import torch
    import torch.nn.functional as F

    from ticketlib.studies.bert_transfer import study as bert_tickets
    from ticketlib.core.train import TrainConfig, make_optimizer

    setup = bert_tickets.BertSetup(TrainConfig(optimizer="adamw", lr=5e-5, batch_size=32), pooling="mean",
                           precision=precision, device="cpu")
    task = type("Task", (), {"kind": "classification", "num_classes": 2})()
    model = setup.build_model(task, 0)
    optimizer = make_optimizer(model, setup.train)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 30000, (32, 64), generator=generator)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.randint(0, 2, (32,))}

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits, target = model(**batch)
        loss = F.cross_entropy(logits.float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up: oneDNN primitive creation
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def _vgg11_epoch(images: int = 2048) -> float:
    """Seconds per 1000 images of an early-bird epoch: VGG-11+BN at 1/8 width, batch 256, L1 on BN scales (04)."""
    import torch
    import torch.nn.functional as F

    from ticketlib.core import models
    from ticketlib.core.train import TrainConfig, make_optimizer

    torch.manual_seed(0)
    net = models.build("vgg11", (1, 28, 28), 10, width=0.125)
    optimizer = make_optimizer(net, TrainConfig(optimizer="sgd", lr=0.1, batch_size=256))
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    x, y = torch.randn(256, 1, 28, 28), torch.randint(0, 10, (256,))

    def step() -> None:
        loss = F.cross_entropy(net(x), y) + 1e-4 * sum(bn.weight.abs().sum() for bn in bns)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()
    start = time.perf_counter()
    for _ in range(images // 256):
        step()
    return (time.perf_counter() - start) * 1000 / images


UNITS = {
    "lenet_round_1k_iterations": (_lenet_round, "01, 05: s per 1000 LeNet iterations (1 thread)"),
    "vgg16_synflow_iteration": (_vgg16_synflow, "02: s per SynFlow iteration on VGG-16"),
    "minilm_step_fp32": (lambda: _minilm_step("fp32"), "03: s per MiniLM step, fp32"),
    "minilm_step_bf16": (lambda: _minilm_step("bf16", steps=2), "03: s per MiniLM step, bf16 autocast"),
    "vgg11_epoch_1k_images": (_vgg11_epoch, "04: s per 1000 images of a VGG-11/8 epoch"),
}


def measure_in_child(unit: str, env_extra: dict[str, str]) -> dict:
    """Run one unit in a fresh interpreter with `env_extra` set before torch loads."""
    env = {k: v for k, v in os.environ.items() if k not in AVX2}
    env.update(env_extra)
    out = subprocess.run([sys.executable, __file__, "--child", unit], env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def child(unit: str) -> None:
    import torch

    from ticketlib.infra import contention

    with contention.Monitor() as load:
        seconds = UNITS[unit][0]()
    print(json.dumps({"seconds": seconds, "capability": torch.backends.cpu.get_cpu_capability(),
                      "contention": load.window.to_dict()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", nargs="*", default=list(UNITS))
    parser.add_argument("--repeats", type=int, default=2, help="alternating default/AVX2 measurements per unit")
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    from ticketlib.infra import contention

    print(f"{'unit':<28} {'default':>10} {'avx2':>10} {'avx2/default':>13}   capabilities")
    for unit in args.units:
        default, avx2, caps, windows = [], [], set(), []
        for _ in range(args.repeats):  # interleaved, so drift in machine load hits both paths alike
            a = measure_in_child(unit, {})  # the default path: whatever the CPU offers
            b = measure_in_child(unit, AVX2)
            default.append(a["seconds"])
            avx2.append(b["seconds"])
            caps |= {a["capability"], b["capability"]}
            windows += [contention.Window.from_dict(m["contention"]) for m in (a, b)]
        d, v = min(default), min(avx2)
        print(f"{unit:<28} {d:>10.3f} {v:>10.3f} {v / d:>12.2f}x   {'/'.join(sorted(caps))}   ({UNITS[unit][1]})",
              flush=True)
        print(f"  {unit}: {contention.summary(windows)['text']}", flush=True)


if __name__ == "__main__":
    main()

"""The cost of k seeds relative to one, the way the `cpu` profile trains them (measured side by side in one run).

Verdicts are judged over seeds (`ticketlib.verdicts`), so every comparative claim needs >= 3 of them. Small
networks use the cores better as several single-threaded trainings than as one multi-threaded one, so
`imp.imp_study` (01, 05), `pai.train_grid` (02) and `criteria.train_actions` (05) train seeds in worker
processes, one core each (`ticketlib.infra.cores.split`). This benchmark times a LeNet-300-100 IMP unit (a masked
training of `--iterations` on real MNIST) for 1 seed in-process on all cores, and for k seeds through the
same worker pool, and prints the wall time of k seeds over one seed's. Measured alone on the 2-core
development machine at --iterations 10000 (01's round): k = 2 costs 1.59x one seed (0.80x per seed),
k = 3 2.75x and k = 4 2.70x: seeds run in pairs, so 01 and 05 run 4 seeds, as cheap as 3.

    .venv/bin/python benchmarks/seeds.py [--iterations 2000] [--seeds 1 2 3 4]
"""
from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context


def one_training(seed: int, iterations: int, threads: int) -> float:
    """Seconds of one masked LeNet training under `seed` with `threads` torch threads, data loading included
    (a worker loads its own copy, as the studies' workers do)."""
    import torch

    from ticketlib.studies.imp import study as imp
    from ticketlib.core.masks import Mask
    from ticketlib.core.train import TrainConfig, train

    torch.set_num_threads(threads)
    start = time.perf_counter()
    exp = imp.Experiment("lenet_300_100", "mnist",
                         TrainConfig(duration=f"{iterations}it", eval_every=f"{iterations}it"))
    data = exp.load_data()
    model = exp.build_model(data, seed)
    train(model, data, exp.train, mask=Mask.ones_like(model), seed=seed, progress=False)
    return time.perf_counter() - start


def k_seeds(k: int, iterations: int) -> float:
    """Wall seconds for k seeds: in-process on every core for k = 1, else the workers the studies use."""
    from ticketlib.infra import cores

    if k == 1:
        return one_training(0, iterations, cores.available())
    workers, threads = cores.split(k)
    start = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        trainings = list(pool.map(one_training, range(k), [iterations] * k, [threads] * k))
    assert len(trainings) == k
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3, 4])
    args = parser.parse_args()
    from ticketlib.infra import cores

    print(f"{cores.available()} cores; LeNet-300-100, {args.iterations} masked Adam iterations per seed")
    base = None
    for k in args.seeds:
        seconds = k_seeds(k, args.iterations)
        base = base or seconds
        print(f"{k} seed(s): {seconds:7.1f} s  = {seconds / base:4.2f}x one seed  ({seconds / base / k:4.2f}x per seed)",
              flush=True)


if __name__ == "__main__":
    main()

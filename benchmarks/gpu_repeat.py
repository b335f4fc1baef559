"""A unit computed twice on this GPU must be bit-identical (a unit is a pure function of its key): one VGG-16 IMP
round on the CIFAR fixture, and one bert-base-shaped fine-tune at the paper's precision (`auto`: bf16 where native).
Exit status 1 on any difference. Usage: python benchmarks/gpu_repeat.py FIXTURES (built by ticketlib.runner.fixtures)."""
from __future__ import annotations

import sys

import torch

from ticketlib.core import bert
from ticketlib.studies.bert_transfer import study as bert_tickets
from ticketlib.core import experiment
from ticketlib.studies.imp import study as imp
from ticketlib.core import text
from ticketlib.infra.cache import Cache
from ticketlib.infra.device import resolve_precision
from ticketlib.core.train import TrainConfig


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def cnn_twice(root: str) -> bool:
    exp = experiment.Experiment("vgg16", "cifar10", TrainConfig(optimizer="sgd", lr=0.1, batch_size=32,
                                duration="20it", eval_every="10it", augment=True), val_size=64, train_size=256,
                                test_size=64, device="cuda")
    data = exp.load_data(root=f"{root}/data")
    runs = [imp.find_ticket(exp, imp.IMPConfig(rounds=1, scope="global"), data, seed=0, cache=Cache(None),
                            progress=False) for _ in range(2)]
    return all(same(a.final_state, b.final_state) for a, b in zip(runs[0].rounds, runs[1].rounds))


def bert_twice(root: str) -> bool:
    encoder = f"{root}/bert-base-uncased"
    precision = resolve_precision("auto", "cuda")[0]
    setup = bert_tickets.BertSetup(TrainConfig(optimizer="adamw", lr=2e-5, batch_size=8, duration="2ep",
                                               eval_every="1ep"), encoder=encoder, precision=precision, device="cuda")
    tokenizer = bert.load_tokenizer(encoder)
    task = text.load_task("glue/rte", tokenizer, 64, seed=0, glue=f"{root}/glue", download=False)
    mask = setup.dense_mask(task)
    runs = [bert_tickets.finetune(setup, task, mask, 0, cache=Cache(None), progress=False, keep_trained=True)
            for _ in range(2)]
    return same(runs[0].trained, runs[1].trained) and runs[0].history == runs[1].history


if __name__ == "__main__":
    fixtures = sys.argv[1]
    results = {"VGG-16 IMP round": cnn_twice(fixtures), "bert-base-shaped fine-tune": bert_twice(fixtures)}
    for what, ok in results.items():
        print(f"repeat {what}: {'bit-identical' if ok else 'DIFFERS'}")
    sys.exit(0 if all(results.values()) else 1)

"""Steps per second of two paper-profile units on this machine's GPU, and what the paper profile then costs.

VGG-16 on CIFAR-10 (batch 128, SGD, the 01/04 paper recipe) and bert-base (12 layers, batch 32, 128
tokens, AdamW, the 03 paper recipe). Inputs are random tensors of the real shapes (no dataset is needed
to time a step; the cost of a step does not depend on the pixel values), the weights freshly initialised.
Prints steps/s and the GPU-hours of one 160-epoch VGG-16 training and of the paper IMP run.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from ticketlib import models
from ticketlib.device import set_policy


def steps_per_second(step, warmup: int = 5, steps: int = 30) -> float:
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return steps / (time.perf_counter() - start)


def vgg16_cifar() -> float:
    model = models.build("vgg16", (3, 32, 32), 10).cuda()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(128, 3, 32, 32, device="cuda"), torch.randint(0, 10, (128,), device="cuda")

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    return steps_per_second(step)


def bert_base() -> float:
    from transformers import BertConfig, BertForSequenceClassification

    model = BertForSequenceClassification(BertConfig(num_labels=2)).cuda()  # bert-base sized
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5, fused=True)
    ids = torch.randint(0, 30522, (32, 128), device="cuda")
    labels = torch.randint(0, 2, (32,), device="cuda")

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model(input_ids=ids, labels=labels).loss.backward()
        optimizer.step()

    return steps_per_second(step)


if __name__ == "__main__":
    set_policy()
    print(f"GPU: {torch.cuda.get_device_name(0)}; policy: fp32, TF32 off, cuDNN deterministic")
    vgg = vgg16_cifar()
    epoch = 50_000 / 128 / vgg
    print(f"VGG-16 / CIFAR-10, batch 128: {vgg:.1f} steps/s = {epoch:.1f} s per epoch; "
          f"160 epochs = {160 * epoch / 3600:.2f} GPU-h; 01's paper VGG-16 IMP (20 rounds x 5 seeds) "
          f"~ {21 * 5 * 160 * epoch / 3600:.0f} GPU-h")
    bert = bert_base()
    print(f"bert-base, batch 32 x 128 tokens: {bert:.1f} steps/s; 10k steps = {10_000 / bert / 3600:.2f} GPU-h")

"""Lottery tickets in a pre-trained BERT encoder and their transfer across tasks (Chen et al. 2020): the experiment side.

IMP for fine-tuning: train, prune globally by magnitude (10% of the *original* weights per round),
rewind to the pre-trained weights with the head reset to the same initialisation, repeat. Every
fine-tuning run is one cached unit keyed by (setup, task, mask digest, weights, seed), so an IMP
round, a control and a transfer run that share a mask share the unit. The encoders and heads are
`ticketlib.bert`.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import pruning, rewind, scores
from .bert import (POOLER_PATTERN, POOLINGS, PRUNABLE_PATTERNS, BertClassifier, BertMLM, encoder_weight_names,
                   load_encoder)
from .cache import Cache, unit_key
from .device import PRECISIONS, describe, resolve_device
from .experiment import RANDOM_MASK_SEED_OFFSET
from .imp import IMPConfig, Round
from .masks import Mask, keep_pruned_at_zero
from .text import TextSplit, TextTask
from .train import TrainConfig, TrainResult, batch_order, make_optimizer


# --- the setup: what is fine-tuned, and how -------------------------------------------
@dataclass
class BertSetup:
    """An encoder and a fine-tuning recipe (its dict is part of every cache key).

    `encoder`: "minilm" (offline), a local folder, or a hub name such as "bert-base-uncased".
    `config`: BertConfig keyword arguments for a seeded random stand-in encoder (tests).
    `bucket_batches`: > 0 sorts each run of that many shuffled batches by length before batching
    (less padding, the same examples per epoch); 0 keeps plain shuffled batches.
    `pooling`: the classifier's input, "pooler" (the paper's) or "mean" (see BertClassifier); with "mean"
    the pooler is left out of the prunable weights.
    `precision`: "fp32", or "bf16" for bfloat16 autocast of the forward pass (weights, optimizer and
    masks stay fp32; fast only on CPUs with AMX/AVX-512 bf16 and on GPUs).
    """

    train: TrainConfig
    encoder: str = "minilm"
    config: dict | None = None
    pooling: str = "pooler"
    eval_batch_size: int = 128
    bucket_batches: int = 0
    precision: str = "fp32"
    device: str = "auto"

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")

    def key(self) -> dict:
        key = asdict(self)
        key.pop("device")
        return key

    def build_model(self, task: TextTask, seed: int, weights: str = "pretrained") -> nn.Module:
        """Encoder (pre-trained, or random under `seed`) plus the task's head initialised under `seed`:
        the same seed gives the same head whatever the encoder's weights."""
        encoder = load_encoder(self.encoder, self.config, weights, seed)
        torch.manual_seed(seed)
        model = (BertMLM(encoder) if task.kind == "mlm"
                 else BertClassifier(encoder, task.num_classes, self.pooling))
        return model.to(resolve_device(self.device))

    def patterns(self) -> tuple[str, ...]:
        """The prunable-weight patterns: every encoder Linear, and the pooler when the head uses it."""
        return tuple(p for p in PRUNABLE_PATTERNS if self.pooling == "pooler" or p != POOLER_PATTERN)

    def prunable_names(self, model: nn.Module) -> list[str]:
        return encoder_weight_names(model, self.patterns())

    def dense_mask(self, task: TextTask) -> Mask:
        model = self.build_model(task, 0)
        return Mask.ones_like(model, self.prunable_names(model))


# --- training and evaluation -----------------------------------------------------------
def _to(batch: dict[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


def _autocast(model: nn.Module, precision: str):
    device = next(model.parameters()).device
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


@torch.no_grad()
def evaluate(model: nn.Module, split: TextSplit, batch_size: int = 128, precision: str = "fp32") -> tuple[float, float]:
    """(mean cross-entropy, accuracy) in eval mode, per example or per masked token for MLM.

    Batches are formed in order of length, so little padding is computed; restores the mode.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    order = torch.argsort(split.lengths, stable=True)
    loss, correct, count = 0.0, 0, 0
    for start in range(0, len(split), batch_size):
        with _autocast(model, precision):
            logits, target = model(**_to(split.batch(order[start:start + batch_size]), device))
        loss += float(F.cross_entropy(logits.float(), target, reduction="sum"))
        correct += int((logits.argmax(-1) == target).sum())
        count += len(target)
    model.train(was_training)
    return loss / max(count, 1), correct / max(count, 1)


def epoch_batches(lengths: Tensor, batch_size: int, seed: int, epoch: int, bucket_batches: int = 0) -> list[Tensor]:
    """The batches of one epoch, a function of (seed, epoch) only: a seeded shuffle, then, with
    `bucket_batches` > 0, each run of that many batches sorted by length and the batches shuffled again."""
    order = batch_order(len(lengths), batch_size, seed, epoch)
    if bucket_batches > 0:
        size = bucket_batches * batch_size
        order = torch.cat([chunk[torch.argsort(lengths[chunk], stable=True)] for chunk in order.split(size)])
    batches = list(order.split(batch_size))
    if bucket_batches > 0:
        shuffle = torch.randperm(len(batches), generator=torch.Generator().manual_seed(seed * 100_003 + epoch + 1))
        batches = [batches[i] for i in shuffle.tolist()]
    return batches


def train_text(model: nn.Module, task: TextTask, cfg: TrainConfig, mask: Mask | None = None, seed: int = 0,
               eval_batch_size: int = 128, progress: bool = True, bucket_batches: int = 0,
               precision: str = "fp32") -> TrainResult:
    """Fine-tune `model` in place on `task`, keeping `mask`; shaped like `ticketlib.train.train`.

    Iteration based (`cfg.duration`), a fresh optimizer, the learning rate from `cfg.schedule`,
    the example order a function of (seed, epoch). Validation loss every `cfg.eval_every`; the
    early-stop point is the minimum validation loss and the test accuracy is measured *there*
    (on a copy of the weights kept at that point) and at the end. Deterministic given the seed on CPU.
    """
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    torch.manual_seed(seed)  # dropout
    model.train()
    optimizer = make_optimizer(model, cfg)
    keeper = keep_pruned_at_zero(mask, model, optimizer) if mask is not None else None
    n = len(task.train)
    ipe = cfg.iterations_per_epoch(n)
    total = cfg.iterations(n)
    eval_every = max(1, rewind.Step(cfg.eval_every).iteration(ipe))
    lr_at = cfg.schedule(n)
    history: list[dict] = []
    best: dict = {"val_loss": math.inf}
    best_state = None
    t0 = time.perf_counter()

    def record(iteration: int, train_loss: float) -> None:
        nonlocal best, best_state
        if not math.isfinite(train_loss) and iteration != 0:
            raise FloatingPointError(f"training loss became {train_loss} before iteration {iteration}")
        val_loss, val_acc = evaluate(model, task.val, eval_batch_size, precision)
        row = {"iteration": iteration, "train_loss": train_loss, "val_loss": val_loss, "val_accuracy": val_acc}
        history.append(row)
        if val_loss < best["val_loss"]:
            best, best_state = row, (rewind.capture(model) if iteration != total else None)

    record(0, float("nan"))
    running, seen, order, order_epoch = 0.0, 0, None, -1
    bar = tqdm(range(total), disable=not progress, leave=False, mininterval=2.0)
    for it in bar:
        epoch, index = divmod(it, ipe)
        if epoch != order_epoch:
            order, order_epoch = epoch_batches(task.train.lengths, cfg.batch_size, seed, epoch, bucket_batches), epoch
        batch = _to(task.train.batch(order[index]), device)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(it)
        with _autocast(model, precision):
            logits, target = model(**batch)
        loss = F.cross_entropy(logits.float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        running, seen = running + loss.detach(), seen + 1
        done = it + 1
        if done % eval_every == 0 or done == total:
            record(done, float(running) / max(seen, 1))
            running, seen = 0.0, 0
            bar.set_postfix(val_acc=f"{history[-1]['val_accuracy']:.4f}")
    bar.close()
    if keeper is not None:
        keeper.remove()
    _, final_test = evaluate(model, task.test, eval_batch_size, precision)
    test_at_best = final_test
    if best_state is not None:  # the early-stop point is before the end: measure test there
        final_state = rewind.capture(model)
        rewind.restore(model, best_state)
        _, test_at_best = evaluate(model, task.test, eval_batch_size, precision)
        rewind.restore(model, final_state)
    for row in history:
        row["test_accuracy"] = test_at_best if row is best else (final_test if row is history[-1] else None)
    return TrainResult(history=history, early_stop_iteration=best["iteration"], test_accuracy=test_at_best,
                       final_test_accuracy=final_test, min_val_loss=best["val_loss"],
                       seconds=time.perf_counter() - t0, iterations=total)


# --- cached units ------------------------------------------------------------------
@dataclass
class Finetuned:
    """One fine-tuning run under a mask: what it measured and its trained prunable weights."""

    mask: Mask
    result: dict
    history: list[dict]
    trained: dict[str, Tensor] = field(repr=False)

    @property
    def density(self) -> float:
        return self.mask.density()

    @property
    def test_accuracy(self) -> float:
        return self.result["test_accuracy"]


def finetune(setup: BertSetup, task: TextTask, mask: Mask, seed: int, weights: str = "pretrained",
             cache: Cache | None = None, progress: bool = True) -> Finetuned:
    """Fine-tune the (pre-trained or random) encoder plus a head initialised under `seed`, with `mask`
    applied to the starting weights and held through training. Cached by (setup, task, mask, weights, seed)."""
    cache = cache or Cache(None)
    key = unit_key("bert_finetune", setup=setup, task=task.key, mask=mask.digest(), density=mask.density(),
                   weights=weights, seed=seed)

    def compute() -> dict:
        model = setup.build_model(task, seed, weights)
        mask.apply(model)
        result = train_text(model, task, setup.train, mask=mask, seed=seed,
                            eval_batch_size=setup.eval_batch_size, progress=progress,
                            bucket_batches=setup.bucket_batches, precision=setup.precision)
        params = dict(model.named_parameters())
        return {"mask": dict(mask), "result": result.summary(), "history": result.history,
                "trained": {n: params[n].detach().cpu().clone() for n in mask}}

    payload = cache.cached(key, compute, describe(setup.device))
    return Finetuned(Mask(payload["mask"]), payload["result"], payload["history"], payload["trained"])


def next_mask(imp: IMPConfig, trained: dict[str, Tensor], mask: Mask, round_index: int) -> Mask:
    """Round `round_index`'s mask: global (or layerwise) magnitude pruning of the trained weights,
    to 1 - fraction * round_index of the original count (fraction_of="original") or by `fraction`
    of what remains ("remaining"). Pruned weights never come back."""
    magnitudes = {n: trained[n].abs().float() for n in mask}
    if imp.fraction_of == "original":
        return pruning.prune_to_density(magnitudes, mask, max(0.0, 1.0 - imp.fraction * round_index), imp.scope)
    return pruning.prune(magnitudes, mask, imp.fraction, scope=imp.scope)


def find_ticket(setup: BertSetup, imp: IMPConfig, task: TextTask, seed: int, cache: Cache | None = None,
                progress: bool = True) -> list[Round]:
    """IMP from the pre-trained weights: the dense run, then `imp.rounds` prune-rewind-train rounds.

    Every round rewinds to the pre-trained encoder and the head's initialisation under `seed`
    (only "0it", the pre-trained point, is supported). Returns one `imp.Round` per training.
    """
    if rewind.Step(imp.rewind).iteration(1) != 0:
        raise ValueError("BERT tickets rewind to the pre-trained weights: use rewind='0it'")
    mask = setup.dense_mask(task)
    rounds = []
    for r in range(imp.rounds + 1):
        if r:
            mask = next_mask(imp, run.trained, mask, r)
        run = finetune(setup, task, mask, seed, cache=cache, progress=progress)
        rounds.append(Round(r, run.mask, run.result, run.history))
    return rounds


def one_shot_mask(setup: BertSetup, task: TextTask, density: float) -> Mask:
    """Global magnitude pruning of the pre-trained weights, once, to `density`."""
    model = setup.build_model(task, 0)
    dense = Mask.ones_like(model, setup.prunable_names(model))
    return pruning.prune_to_density(scores.magnitude(model, dense), dense, density, scope="global")


def random_mask(mask: Mask, density: float, seed: int) -> Mask:
    """Random pruning: every weight of `mask`'s layers is a candidate, `density` of them kept uniformly at
    random over all layers together (the same for every task: it depends only on the layers and the seed)."""
    dense = Mask({n: torch.ones_like(keep) for n, keep in mask.items()})
    generator = torch.Generator().manual_seed(seed + RANDOM_MASK_SEED_OFFSET)
    return pruning.prune_to_density(scores.random(None, dense, generator), dense, density, scope="global")


def nearest_density(rounds: list[Round], density: float) -> Round:
    """The round whose density is closest to `density`."""
    return min(rounds, key=lambda r: abs(r.density - density))


CONTROLS = ("one_shot", "random_pruning", "random_weights")


def row(task: str, kind: str, run: Finetuned | Round, seed: int, round_index: int | None = None) -> dict:
    """One tidy row (accuracies in %) for tables and figures."""
    return {"task": task, "kind": kind, "seed": seed, "round": round_index,
            "sparsity": round(100 * (1 - run.density), 4),
            "test_accuracy": 100 * run.result["test_accuracy"],
            "final_test_accuracy": 100 * run.result["final_test_accuracy"],
            "early_stop_iteration": run.result["early_stop_iteration"], "seconds": run.result["seconds"]}


def control(setup: BertSetup, task: TextTask, ticket_mask: Mask, kind: str, seed: int,
            cache: Cache | None = None, progress: bool = True) -> Finetuned:
    """A control at the ticket's density: "one_shot" (magnitude pruning of the pre-trained weights once),
    "random_pruning" (a uniformly random mask), "random_weights" (the ticket's mask on random weights)."""
    if kind not in CONTROLS:
        raise ValueError(f"control must be one of {CONTROLS}, got {kind!r}")
    density = ticket_mask.density()
    if kind == "one_shot":
        return finetune(setup, task, one_shot_mask(setup, task, density), seed, cache=cache, progress=progress)
    if kind == "random_pruning":
        return finetune(setup, task, random_mask(ticket_mask, density, seed), seed, cache=cache, progress=progress)
    return finetune(setup, task, ticket_mask, seed, weights="random", cache=cache, progress=progress)


def study(setup: BertSetup, imp: IMPConfig, tasks: list[TextTask], seed: int, control_sparsities: list[float],
          transfer_sparsity: float, targets: list[str] | None = None, cache: Cache | None = None,
          progress: bool = True, controls: tuple[str, ...] = CONTROLS
          ) -> tuple[dict[str, list[Round]], list[dict], list[dict]]:
    """IMP on every task; the controls on every classification task at the rounds nearest
    `control_sparsities`; every task's ticket at `transfer_sparsity` (plus a random mask, source
    "random") fine-tuned on every target (default: the classification tasks).

    Returns (tickets per task, rows of IMP and controls, transfer rows {source, target, ...}).
    """
    tickets, rows = {}, []
    for task in tasks:
        tickets[task.name] = find_ticket(setup, imp, task, seed, cache=cache, progress=progress)
        rows += [row(task.name, "imp", r, seed, r.round) for r in tickets[task.name]]
    classification = [t for t in tasks if t.kind == "classification"]
    for task in classification:
        for sparsity in control_sparsities:
            ticket = nearest_density(tickets[task.name], 1 - sparsity)
            for kind in controls:
                run = control(setup, task, ticket.mask, kind, seed, cache, progress)
                rows.append(row(task.name, kind, run, seed, ticket.round))
    by_name = {t.name: t for t in tasks}
    targets = [t.name for t in classification] if targets is None else targets
    sources = {name: nearest_density(tickets[name], 1 - transfer_sparsity).mask for name in tickets}
    sources["random"] = random_mask(next(iter(sources.values())), next(iter(sources.values())).density(), seed)
    transfer = []
    for source, mask in sources.items():
        for target in targets:
            run = finetune(setup, by_name[target], mask, seed, cache=cache, progress=progress)
            transfer.append({"source": source, "target": target, **row(target, "transfer", run, seed)})
    return tickets, rows, transfer


def seeds_study(setup: BertSetup, imp: IMPConfig, tasks: list[TextTask], seeds: list[int],
                control_sparsities: list[float], transfer_sparsity: float, cache: Cache | None = None,
                progress: bool = True, controls: tuple[str, ...] = CONTROLS
                ) -> tuple[dict[int, dict[str, list[Round]]], list[dict], list[dict]]:
    """`study` for every seed (a seed sets the heads, the data order, dropout and the random controls):
    (tickets per seed, rows, transfer rows), every row carrying its seed."""
    tickets, rows, transfer = {}, [], []
    for seed in seeds:
        tickets[seed], seed_rows, seed_transfer = study(setup, imp, tasks, seed, control_sparsities, transfer_sparsity,
                                                        cache=cache, progress=progress, controls=controls)
        rows += seed_rows
        transfer += seed_transfer
    return tickets, rows, transfer

"""One masked training loop for every notebook.

Iteration-based (durations are `Step`s like "50000it" or "160ep"), evaluates on a
validation split held out of the training data every `eval_every`, picks the
early-stop iteration by minimum validation loss and reports the test accuracy
*there* (never the best test accuracy) and at the end. Deterministic given a seed on CPU; a
rewound run fast-forwards both the learning-rate schedule and the data order.
"""
from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ticketlib.core.data import Dataset, Split, augment
from ticketlib.core.masks import Mask, keep_pruned_at_zero
from ticketlib.core.models import training_mode
from ticketlib.infra.device import describe
from ticketlib.core.rewind import Step

OPTIMIZERS = ("adam", "adamw", "sgd")


@dataclass
class TrainConfig:
    """Hyperparameters of one training run (a plain, hashable description)."""

    optimizer: str = "adam"
    lr: float = 1.2e-3
    batch_size: int = 60
    duration: str = "50000it"
    eval_every: str = "500it"
    momentum: float = 0.9
    weight_decay: float = 0.0
    milestones: list[str] = field(default_factory=list)
    gamma: float = 0.1
    warmup: str = "0it"
    augment: bool = False

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        for text in [self.duration, self.eval_every, self.warmup, *self.milestones]:
            Step(text)
        if self.lr <= 0 or self.batch_size <= 0:
            raise ValueError("lr and batch_size must be positive")

    def iterations_per_epoch(self, train_size: int) -> int:
        return max(1, math.ceil(train_size / self.batch_size))

    def iterations(self, train_size: int) -> int:
        return Step(self.duration).iteration(self.iterations_per_epoch(train_size))

    def lr_at(self, iteration: int, train_size: int) -> float:
        """Learning rate at an iteration: linear warmup, then step drops at the milestones."""
        return self.schedule(train_size)(iteration)

    def schedule(self, train_size: int) -> Callable[[int], float]:
        """`lr_at` with the steps parsed once (it runs every iteration)."""
        ipe = self.iterations_per_epoch(train_size)
        warmup = Step(self.warmup).iteration(ipe)
        drops = sorted(Step(m).iteration(ipe) for m in self.milestones)

        def lr(iteration: int) -> float:
            scale = self.gamma ** sum(iteration >= d for d in drops)
            if warmup and iteration < warmup:
                scale *= (iteration + 1) / warmup
            return self.lr * scale

        return lr

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    """What one run measured. `history` has one row per evaluation."""

    history: list[dict]
    early_stop_iteration: int
    test_accuracy: float  # at the early-stop iteration
    final_test_accuracy: float
    min_val_loss: float
    seconds: float
    iterations: int
    captured_state: dict | None = None
    device: str = ""  # where it trained (`device.describe`): wall times compare only on the same device

    def summary(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in ("history", "captured_state")}


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    # Fused Adam/AdamW: the same update rule in one kernel. The unfused CPU path spends most of
    # a sparse network's step in sqrt over the pruned weights' exact-zero second moments
    # (benchmarks/masked_training.py), so fused is what keeps masked training near dense speed.
    kind = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return kind(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)


def model_device(model: nn.Module) -> torch.device:
    """Where `model` lives: the device of its first parameter, else of its first buffer (a sparse-kernel form
    holds only buffers), else the CPU."""
    tensor = next(itertools.chain(model.parameters(), model.buffers()), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def evaluate_outputs(model: nn.Module, outputs: Iterable[tuple[Tensor, Tensor]]) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) over `outputs`, batches of (logits, targets), weighted by example count.

    The one evaluator: `outputs` is typically a generator running `model`'s forward pass batch by batch (the
    caller decides how a batch is fed); it is consumed here with `model` in eval mode and gradients off, and
    every submodule gets its own training flag back afterwards. Each batch's summed loss is added as a Python
    float and divided by the number of examples at the end. Raises ValueError when there are no examples.
    """
    loss, correct, count = 0.0, 0, 0
    with torch.no_grad(), training_mode(model, False):
        for logits, target in outputs:
            loss += float(F.cross_entropy(logits, target, reduction="sum"))
            correct += int((logits.argmax(-1) == target).sum())
            count += len(target)
    if count == 0:
        raise ValueError("evaluate_outputs: the split has no examples (nothing to take a mean over)")
    return loss / count, correct / count


def evaluate(model: nn.Module, split: Split, batch_size: int = 2000) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of `model` (any form: dense, sparse-kernel, slimmed) on an image split,
    in eval mode; restores each module's previous mode (`evaluate_outputs`)."""
    device = model_device(model)

    def outputs() -> Iterator[tuple[Tensor, Tensor]]:
        for start in range(0, len(split), batch_size):
            y = split.y[start:start + batch_size].to(device)
            yield model(split.x[start:start + batch_size].to(device)), y

    return evaluate_outputs(model, outputs())


def batch_order(n: int, batch_size: int, seed: int, epoch: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """The shuffled example order of one epoch: a function of (seed, epoch) only, so rewinding can skip ahead.

    Drawn on `device` (where the data lives: no host-to-device copy per step); a CUDA draw differs from
    the CPU one, so CPU and GPU runs of the same seed see different orders.
    """
    generator = torch.Generator(device=device).manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=generator, device=device)


def _augment_generator(seed: int, iteration: int, device: str | torch.device = "cpu") -> torch.Generator:
    """The augmentation draws of one iteration: a function of (seed, iteration) only, so a rewound run
    sees the same crops and flips as the run it was rewound from (a stream disjoint from `batch_order`'s)."""
    return torch.Generator(device=device).manual_seed((seed + 1) * 2**32 + iteration)


class ImageBatches:
    """What `train` needs of an image `Dataset`: each epoch's batches, a batch's loss, an evaluation.

    Other data plugs into the same loop through an object with the same three methods and `size`
    (`bert_tickets.TextBatches` for token sequences).
    """

    def __init__(self, data: Dataset, cfg: TrainConfig, seed: int):
        self.data, self.cfg, self.seed = data, cfg, seed
        self.size = len(data.train)

    def epoch(self, epoch: int) -> list[torch.Tensor]:
        """The index batches of one epoch, a function of (seed, epoch) only."""
        return list(batch_order(self.size, self.cfg.batch_size, self.seed, epoch, self.data.train.x.device)
                    .split(self.cfg.batch_size))

    def loss(self, model: nn.Module, indices: torch.Tensor, iteration: int) -> torch.Tensor:
        device = next(model.parameters()).device
        x = self.data.train.x[indices].to(device, non_blocking=True)
        y = self.data.train.y[indices].to(device, non_blocking=True)
        if self.cfg.augment:
            x = augment(x, _augment_generator(self.seed, iteration, x.device))
        return F.cross_entropy(model(x), y)

    def evaluate(self, model: nn.Module, split: str) -> tuple[float, float]:
        return evaluate(model, getattr(self.data, split))


def train(model: nn.Module, data: Dataset | ImageBatches, cfg: TrainConfig, mask: Mask | None = None, seed: int = 0,
          start_iteration: int = 0, capture_at: int | None = None, progress: bool = True,
          extra_loss: Callable[[nn.Module], torch.Tensor] | None = None,
          on_eval: Callable[[int, nn.Module], None] | None = None,
          trainable: Mask | None = None) -> TrainResult:
    """Train `model` in place from `start_iteration` to the end of `cfg.duration`, keeping `mask`.

    The one training loop: images (`data` a `Dataset`) and token sequences (`data` a batch adapter such
    as `bert_tickets.TextBatches`) alike. Validation every `cfg.eval_every`; the early-stop point is the
    first minimum of the validation loss, and the test accuracy is measured there (on a copy of the
    weights kept at that point) and at the end: never the best test accuracy.

    `capture_at`: also return a copy of the state at that iteration (the rewinding point).
    `extra_loss(model)`: added to the loss (e.g. L1 on BN scales for network slimming).
    `on_eval(iteration, model)`: called at every evaluation (e.g. to draw masks per epoch).
    `trainable`: weights whose entry is False keep their current value (Zhou et al.'s freeze action).
    """
    from tqdm.auto import tqdm

    from ticketlib.core.rewind import capture, restore

    batches = ImageBatches(data, cfg, seed) if isinstance(data, Dataset) else data
    device = next(model.parameters()).device
    model.train()
    optimizer = make_optimizer(model, cfg)
    keeper = keep_pruned_at_zero(mask, model, optimizer) if mask is not None else None
    freezer = _Freezer(trainable, model, optimizer) if trainable is not None else None
    ipe = cfg.iterations_per_epoch(batches.size)
    total = cfg.iterations(batches.size)
    eval_every = max(1, Step(cfg.eval_every).iteration(ipe))
    lr_at = cfg.schedule(batches.size)
    history, captured = [], None
    best, best_state = None, None
    t0 = time.perf_counter()

    def record(iteration: int, train_loss: float) -> None:
        nonlocal best, best_state
        if not math.isfinite(train_loss) and iteration != start_iteration:
            raise FloatingPointError(f"training loss became {train_loss} before iteration {iteration}")
        val_loss, val_acc = batches.evaluate(model, "val")
        row = {"iteration": iteration, "train_loss": train_loss, "val_loss": val_loss, "val_accuracy": val_acc,
               "test_accuracy": None}
        history.append(row)
        if best is None or (val_loss, iteration) < (best["val_loss"], best["iteration"]):
            best, best_state = row, (capture(model) if iteration != total else None)
        if on_eval is not None:
            on_eval(iteration, model)

    if capture_at is not None and capture_at == start_iteration:
        captured = capture(model)
    record(start_iteration, float("nan"))
    running, seen = 0.0, 0
    order, order_epoch = None, -1
    bar = tqdm(range(start_iteration, total), disable=not progress, leave=False, mininterval=2.0)
    try:  # the optimizer hooks come off even when a step raises
        for it in bar:
            epoch, index = divmod(it, ipe)
            if epoch != order_epoch:
                order, order_epoch = batches.epoch(epoch), epoch
            for group in optimizer.param_groups:
                group["lr"] = lr_at(it)
            loss = batches.loss(model, order[index], it)
            if extra_loss is not None:
                loss = loss + extra_loss(model)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running, seen = running + loss.detach(), seen + 1  # summed on device: no sync per step
            done = it + 1
            if capture_at is not None and done == capture_at:
                captured = capture(model)
            if done % eval_every == 0 or done == total:
                record(done, float(running) / max(seen, 1))
                running, seen = 0.0, 0
                bar.set_postfix(val_acc=f"{history[-1]['val_accuracy']:.4f}")
    finally:
        bar.close()
        for handle in (keeper, freezer):
            if handle is not None:
                handle.remove()
    _, history[-1]["test_accuracy"] = batches.evaluate(model, "test")
    if best_state is not None:  # the early-stop point is before the end: measure the test accuracy there
        final_state = capture(model)
        restore(model, best_state)
        _, best["test_accuracy"] = batches.evaluate(model, "test")
        restore(model, final_state)
    return TrainResult(history=history, early_stop_iteration=best["iteration"],
                       test_accuracy=best["test_accuracy"], final_test_accuracy=history[-1]["test_accuracy"],
                       min_val_loss=best["val_loss"], seconds=time.perf_counter() - t0,
                       iterations=total - start_iteration, captured_state=captured, device=describe(device))


class _Freezer:
    """Puts frozen weights back after every step (so weight decay and momentum cannot move them)."""

    def __init__(self, trainable: Mask, model: nn.Module, optimizer: torch.optim.Optimizer):
        params = dict(model.named_parameters())
        self.items = [(params[n], (~trainable[n]).to(params[n].device), params[n].detach().clone())
                      for n in trainable]
        self.handle = optimizer.register_step_post_hook(self._restore)

    @torch.no_grad()
    def _restore(self, *_args) -> None:
        for param, where, value in self.items:  # torch.where, not indexing: no host sync per step
            param.copy_(torch.where(where, value, param))

    def remove(self) -> None:
        self.handle.remove()


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

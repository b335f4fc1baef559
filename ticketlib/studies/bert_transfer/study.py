"""Lottery tickets in a pre-trained BERT encoder and their transfer across tasks (Chen et al. 2020): the experiment side.

IMP for fine-tuning: train, prune globally by magnitude (10% of the *original* weights per round),
rewind to the pre-trained weights with the head reset to the same initialisation, repeat. Every
fine-tuning run is one cached unit keyed by (setup, task, mask digest, weights, seed), so an IMP
round, a control and a transfer run that share a mask share the unit. The encoders and heads are
`ticketlib.core.bert`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ticketlib.core.levels import nearest
from ticketlib.core import pruning
from ticketlib.core import rewind
from ticketlib.core import scores
from ticketlib.core import search
from ticketlib.core.bert import POOLER_PATTERN, POOLINGS, PRUNABLE_PATTERNS, BertClassifier, BertMLM, encoder_weight_names, load_encoder, pretrained_mlm_head
from ticketlib.core.bert_masks import MATRIX_KINDS, density_by_matrix_kind, mask_overlap, matrix_kind  # noqa: F401 (re-exported)
from ticketlib.infra.cache import Cache, unit_key
from ticketlib.infra.device import PRECISIONS, describe, resolve_device
from ticketlib.core.experiment import RANDOM_MASK_SEED_OFFSET
from ticketlib.studies.imp.study import IMPConfig, Round
from ticketlib.core.masks import Mask, full_weights, kept_values
from ticketlib.core.text import TextSplit, TextTask
from ticketlib.core.train import TrainConfig, TrainResult, epoch_batches, evaluate_outputs, model_device, train


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
        head = pretrained_mlm_head(self.encoder) if weights == "pretrained" and self.config is None else None
        model = (BertMLM(encoder, head) if task.kind == "mlm"
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
    return torch.autocast(model_device(model).type, dtype=torch.bfloat16, enabled=precision == "bf16")


def evaluate(model: nn.Module, split: TextSplit, batch_size: int = 128, precision: str = "fp32") -> tuple[float, float]:
    """(mean cross-entropy, accuracy) in eval mode, per example or per masked token for MLM (`train.evaluate_outputs`).

    Batches are formed in order of length, so little padding is computed; the forward pass runs under the
    precision's autocast, the loss in float32; restores each module's mode.
    """
    device = model_device(model)
    order = torch.argsort(split.lengths, stable=True)

    def outputs():
        for start in range(0, len(split), batch_size):
            with _autocast(model, precision):
                logits, target = model(**_to(split.batch(order[start:start + batch_size]), device))
            yield logits.float(), target

    return evaluate_outputs(model, outputs())


class TextBatches:
    """What `train.train` needs of a `TextTask`: each epoch's (optionally length-bucketed) batches, a batch's
    loss under the setup's precision (logits and targets come from the head: per example, or per masked
    token for MLM), an evaluation. Seeds torch's generator for dropout when created, as a run starts."""

    def __init__(self, task: TextTask, cfg: TrainConfig, seed: int, eval_batch_size: int = 128,
                 bucket_batches: int = 0, precision: str = "fp32"):
        self.task, self.cfg, self.seed = task, cfg, seed
        self.eval_batch_size, self.bucket_batches, self.precision = eval_batch_size, bucket_batches, precision
        self.size = len(task.train)
        torch.manual_seed(seed)  # dropout

    def epoch(self, epoch: int) -> list[Tensor]:
        return epoch_batches(self.task.train.lengths, self.cfg.batch_size, self.seed, epoch, self.bucket_batches)

    def loss(self, model: nn.Module, indices: Tensor, iteration: int) -> Tensor:
        batch = _to(self.task.train.batch(indices), model_device(model))
        with _autocast(model, self.precision):
            logits, target = model(**batch)
        return F.cross_entropy(logits.float(), target)

    def evaluate(self, model: nn.Module, split: str) -> tuple[float, float]:
        return evaluate(model, getattr(self.task, split), self.eval_batch_size, self.precision)


def train_text(model: nn.Module, task: TextTask, cfg: TrainConfig, mask: Mask | None = None, seed: int = 0,
               eval_batch_size: int = 128, progress: bool = True, bucket_batches: int = 0,
               precision: str = "fp32") -> TrainResult:
    """Fine-tune `model` in place on `task`, keeping `mask`: `train.train` on the task's `TextBatches`."""
    batches = TextBatches(task, cfg, seed, eval_batch_size, bucket_batches, precision)
    return train(model, batches, cfg, mask=mask, seed=seed, progress=progress)


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


def finetune_key(setup: BertSetup, task: TextTask, mask: Mask, seed: int, weights: str = "pretrained") -> dict:
    """The unit key of one fine-tuning run: an IMP round, a control and a transfer run with one mask share it."""
    return unit_key("bert_finetune", setup=setup, task=task.key, mask=mask.digest(), density=mask.density(),
                    weights=weights, seed=seed)


def finetune(setup: BertSetup, task: TextTask, mask: Mask, seed: int, weights: str = "pretrained",
             cache: Cache | None = None, progress: bool = True, keep_trained: bool = False) -> Finetuned:
    """Fine-tune the (pre-trained or random) encoder plus a head initialised under `seed`, with `mask`
    applied to the starting weights and held through training. Cached by (setup, task, mask, weights, seed).

    `keep_trained` (IMP's rounds, the only readers) stores the trained kept weights too (`kept_values`, ~430 MB
    a dense bert-base); other units store what they measured only. An entry stored without them is recomputed
    when they are asked for."""
    cache = cache or Cache(None)
    key = finetune_key(setup, task, mask, seed, weights)

    def compute() -> dict:
        model = setup.build_model(task, seed, weights)
        mask.apply(model)
        result = train_text(model, task, setup.train, mask=mask, seed=seed,
                            eval_batch_size=setup.eval_batch_size, progress=progress,
                            bucket_batches=setup.bucket_batches, precision=setup.precision)
        params = dict(model.named_parameters())
        trained = {n: params[n].detach().cpu() for n in mask}
        return {"mask": dict(mask), "result": result.summary(), "history": result.history,
                **({"trained": kept_values(trained, mask)} if keep_trained else {})}

    payload = cache.cached(key, compute, describe(setup.device))
    if keep_trained and "trained" not in payload:  # stored by a unit that did not need them: train it again
        cache.drop(key)
        payload = cache.cached(key, compute, describe(setup.device))
    trained = full_weights(payload["trained"], Mask(payload["mask"])) if "trained" in payload else {}
    return Finetuned(Mask(payload["mask"]), payload["result"], payload["history"], trained)


def next_mask(imp: IMPConfig, trained: dict[str, Tensor], mask: Mask, round_index: int) -> Mask:
    """Round `round_index`'s mask: global (or layerwise) magnitude pruning of the trained weights,
    to 1 - fraction * round_index of the original count (fraction_of="original") or by `fraction`
    of what remains ("remaining"). Pruned weights never come back."""
    magnitudes = {n: trained[n].abs().float() for n in mask}
    if imp.fraction_of == "original":
        return pruning.prune_to_density(magnitudes, mask, max(0.0, 1.0 - imp.fraction * round_index), imp.scope)
    return pruning.prune(magnitudes, mask, imp.fraction, scope=imp.scope)


@dataclass
class FinetuneRounds:
    """IMP's rounds as `finetune` units (a `search.RoundCache`), shared with the controls and transfers of a mask."""

    setup: BertSetup
    task: TextTask
    seed: int
    cache: Cache

    def round(self, index: int, mask: Mask, compute) -> dict:
        def unit() -> dict:
            run = compute()
            return {"mask": run["mask"], "result": run["result"], "history": run["history"],
                    "trained": kept_values({n: run["final_state"][n] for n in mask}, mask)}

        key = finetune_key(self.setup, self.task, mask, self.seed)
        payload = self.cache.cached(key, unit, describe(self.setup.device))
        if "trained" not in payload:  # stored by a control or transfer that did not need them: train it again
            self.cache.drop(key)
            payload = self.cache.cached(key, unit, describe(self.setup.device))
        return {"mask": payload["mask"], "result": payload["result"], "history": payload["history"],
                "final_state": full_weights(payload["trained"], Mask(payload["mask"]))}


def find_ticket(setup: BertSetup, imp: IMPConfig, task: TextTask, seed: int, cache: Cache | None = None,
                progress: bool = True) -> list[Round]:
    """IMP from the pre-trained weights: `search.find_ticket` with `train_text` as the loop, each round the
    `finetune` unit of its mask, rewound to the pre-trained encoder and the head's initialisation under `seed`
    (only "0it" is supported). Returns one `imp.Round` per training (without its trained weights)."""
    if rewind.Step(imp.rewind).iteration(1) != 0:
        raise ValueError("BERT tickets rewind to the pre-trained weights: use rewind='0it'")
    model = setup.build_model(task, seed)

    def train_fn(model: nn.Module, mask: Mask, _context) -> TrainResult:
        return train_text(model, task, setup.train, mask=mask, seed=seed, eval_batch_size=setup.eval_batch_size,
                          progress=progress, bucket_batches=setup.bucket_batches, precision=setup.precision)

    ticket = search.find_ticket(model, train_fn, imp, cache=FinetuneRounds(setup, task, seed, cache or Cache(None)),
                                names=setup.prunable_names(model))
    return [Round(r.round, r.mask, r.result, r.history) for r in ticket.rounds]


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
    return nearest(rounds, density, lambda r: r.density, log=False)


def transfer_source_masks(tickets: dict[str, list[Round]], sparsity: float, seed: int) -> dict[str, Mask]:
    """The transfer matrix's sources: each task's ticket at the round nearest `sparsity`, in the tasks' order,
    then "random", a random mask (under `seed`) of the first ticket's density over the same layers."""
    masks = {name: nearest_density(rounds, 1 - sparsity).mask for name, rounds in tickets.items()}
    first = next(iter(masks.values()))
    masks["random"] = random_mask(first, first.density(), seed)
    return masks


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


def tickets_and_transfer(setup: BertSetup, imp: IMPConfig, tasks: list[TextTask], seed: int,
                         control_sparsities: list[float], transfer_sparsity: float, targets: list[str] | None = None,
                         cache: Cache | None = None, progress: bool = True, controls: tuple[str, ...] = CONTROLS
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
    sources = transfer_source_masks(tickets, transfer_sparsity, seed)
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
    """`tickets_and_transfer` for every seed (a seed sets the heads, the data order, dropout and the random controls):
    (tickets per seed, rows, transfer rows), every row carrying its seed."""
    tickets, rows, transfer = {}, [], []
    for seed in seeds:
        tickets[seed], seed_rows, seed_transfer = tickets_and_transfer(
            setup, imp, tasks, seed, control_sparsities, transfer_sparsity, cache=cache, progress=progress,
            controls=controls)
        rows += seed_rows
        transfer += seed_transfer
    return tickets, rows, transfer


def mask_fit_diagnostics(setup: BertSetup, tickets_by_seed: dict[int, dict[str, list[Round]]], rows: list[dict],
                         transfer_rows: list[dict], task: TextTask, seeds: list[int], claim_sparsity: float,
                         cache: Cache | None = None, progress: bool = True
                         ) -> tuple[dict[str, dict], dict[int, int], dict[int, float]]:
    """How much of the ticket's accuracy on `task` is its fit to its own fine-tuning: per-seed differences in pp,
    at each seed's IMP round nearest `claim_sparsity` ("own", from `seeds_study`'s tickets, rows and transfer rows).

    - "own - another seed's ticket" (two seeds or more): own minus the donor seed's mask fine-tuned under
      this seed (the donor of seed t is the seed before it in `seeds`, cyclically: never t itself);
    - "IMP - one-shot (pre-trained)": own minus the `one_shot` control at the same round, when every seed has it;
    - "MLM mask - one-shot (pre-trained)": the "mlm" source's transfer run on `task` minus that control, when
      every seed has both.

    Returns (per_seed {diagnostic: {seed: difference}}, donor {seed: donor seed}, borrowed {seed: the borrowed
    mask's test accuracy in %}); donor and borrowed are empty for one seed.
    """
    from ticketlib.verdicts.engine import paired

    name = task.name
    own_round = {s: nearest_density(tickets_by_seed[s][name], 1 - claim_sparsity) for s in seeds}
    own = {s: 100 * r.result["test_accuracy"] for s, r in own_round.items()}
    per_seed: dict[str, dict] = {}
    donor: dict[int, int] = {}
    borrowed: dict[int, float] = {}
    if len(seeds) > 1:
        donor = dict(zip(seeds, list(seeds)[-1:] + list(seeds)[:-1]))  # seed t fine-tunes the mask of donor[t]
        borrowed = {t: 100 * finetune(setup, task, own_round[d].mask, t, cache=cache, progress=progress).test_accuracy
                    for t, d in donor.items()}
        per_seed["own - another seed's ticket"] = paired(own, borrowed, "mask_fit")
    one_shot = {r["seed"]: r["test_accuracy"] for r in rows
                if r["task"] == name and r["kind"] == "one_shot" and r["round"] == own_round[r["seed"]].round}
    mlm_acc = {r["seed"]: r["test_accuracy"] for r in transfer_rows if r["source"] == "mlm" and r["target"] == name}
    if set(one_shot) == set(own):
        per_seed["IMP - one-shot (pre-trained)"] = paired(own, one_shot, "mask_fit")
        if set(mlm_acc) == set(own):
            per_seed["MLM mask - one-shot (pre-trained)"] = paired(mlm_acc, one_shot, "mask_fit")
    return per_seed, donor, borrowed

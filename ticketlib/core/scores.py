"""Scorers: pure functions `score(model, mask, ...) -> dict[name, tensor]`, higher = keep.

Kept separate from thresholding (`pruning`), as in Synaptic-Flow. Scores are detached
CPU float tensors, one per masked name. Every scorer leaves the model as it found it:
weights, gradients, train/eval mode and BatchNorm statistics. The data-driven scorers
(SNIP, GraSP) and SynFlow never write into the model: they evaluate it with
`torch.func.functional_call` on substituted tensors (the masked weights, or SynFlow's
|θ| copies), so there is nothing to restore and no deepcopy per call.

Example:
    >>> net = nn.Linear(3, 2); mask = Mask.ones_like(net)
    >>> magnitude(net, mask)["weight"].equal(net.weight.detach().abs())
    True
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from ticketlib.core.data import Split
from ticketlib.core.masks import Mask
from ticketlib.core.models import training_mode

Batch = tuple[Tensor, Tensor]


def _params(model: nn.Module, mask: Mask) -> dict[str, torch.Tensor]:
    params = dict(model.named_parameters())
    return {name: params[name] for name in mask}


@torch.no_grad()
def magnitude(model: nn.Module, mask: Mask) -> dict[str, torch.Tensor]:
    """|θ|: large weights are kept (Frankle & Carbin 2019; Zhou et al.'s large_final)."""
    return {n: p.detach().abs().float().cpu() for n, p in _params(model, mask).items()}


def random(model: nn.Module, mask: Mask, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Uniform random scores: the random-pruning baseline."""
    return {n: torch.rand(t.shape, generator=generator) for n, t in mask.items()}


# --- helpers shared by the gradient-based scorers ---------------------------------------


def balanced_batch(split: Split, per_class: int, seed: int = 0) -> Batch:
    """`per_class` examples of every class, picked by a seeded permutation (SNIP/GraSP's fixed sample).

    Raises if a class has fewer examples than asked, so the sample is always exactly balanced.
    """
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))
    labels = split.y.cpu()[order]
    picked = []
    for label in torch.unique(labels).tolist():
        where = order[labels == label][:per_class]
        if len(where) < per_class:
            raise ValueError(f"class {label} has only {len(where)} examples, {per_class} asked")
        picked.append(where)
    index = torch.cat(picked).sort().values.to(split.y.device)
    return split.x[index], split.y[index]


def _substitutes(model: nn.Module, mask: Mask, copy_buffers: bool) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """(masked weights as fresh leaves requiring grad, the other parameters and buffers detached).

    Buffers are cloned when `copy_buffers` (train-mode BatchNorm updates its running statistics in place).
    """
    weights, others = {}, {}
    for name, param in model.named_parameters():
        if name in mask:
            keep = mask[name].to(param.device, param.dtype)
            weights[name] = (param.detach() * keep).requires_grad_(True)
        else:
            others[name] = param.detach()
    for name, buffer in model.named_buffers():
        others[name] = buffer.detach().clone() if copy_buffers else buffer.detach()
    return weights, others


def _chunks(batch: Batch, chunk: int) -> Iterator[tuple[Tensor, Tensor, float]]:
    """(x, y, weight) pieces of a batch; weights make the summed chunk losses the batch's mean loss."""
    x, y = batch
    for start in range(0, len(y), chunk):
        yield x[start:start + chunk], y[start:start + chunk], len(y[start:start + chunk]) / len(y)


def snip(model: nn.Module, mask: Mask, batch: Batch, train_mode: bool = False,
         chunk: int = 128) -> dict[str, Tensor]:
    """SNIP (Lee et al. 2019): |θ ⊙ ∂L/∂θ|, L the mean cross-entropy over `batch`, pruned weights at zero.

    Use `balanced_batch` for the paper's fixed number of samples per class. BatchNorm runs in
    eval mode unless `train_mode` (Synaptic-Flow's default); the model itself is never modified.
    """
    weights, others = _substitutes(model, mask, copy_buffers=train_mode)
    leaves = list(weights.values())
    grads = [torch.zeros_like(w) for w in leaves]
    with training_mode(model, train_mode):
        for x, y, share in _chunks(batch, chunk):
            loss = F.cross_entropy(functional_call(model, {**others, **weights}, (x,)), y) * share
            for total, g in zip(grads, torch.autograd.grad(loss, leaves)):
                total.add_(g)
    return {n: (w.detach() * g).abs().float().cpu() for (n, w), g in zip(weights.items(), grads)}


def grasp(model: nn.Module, mask: Mask, batch: Batch, temperature: float = 200.0, train_mode: bool = False,
          chunk: int = 64) -> dict[str, Tensor]:
    """GraSP (Wang et al. 2020): θ ⊙ Hg, g = ∂L/∂θ and H its Hessian, logits divided by `temperature`.

    Higher = keep, so thresholding prunes the *lowest* θ⊙Hg (the paper removes the highest
    −θ⊙Hg): the weights whose removal reduces the gradient flow least, or raises it. Not an
    absolute value. g is computed first without a graph (zero at pruned weights, as for
    θ⊙mask), then Hg as ∂(gᵀ·∂L/∂θ)/∂θ by double backpropagation over the same batch; pruned
    weights score zero.
    """
    weights, others = _substitutes(model, mask, copy_buffers=train_mode)
    leaves = list(weights.values())
    stopped = [torch.zeros_like(w) for w in leaves]
    hg = [torch.zeros_like(w) for w in leaves]

    def loss_of(x: Tensor, y: Tensor, share: float) -> Tensor:
        return F.cross_entropy(functional_call(model, {**others, **weights}, (x,)) / temperature, y) * share

    with training_mode(model, train_mode):
        for x, y, share in _chunks(batch, chunk):
            for total, g in zip(stopped, torch.autograd.grad(loss_of(x, y, share), leaves)):
                total.add_(g)
        for total, name in zip(stopped, weights):  # ∂L/∂θ through θ⊙mask: zero where pruned
            total.mul_(mask[name].to(total.device, total.dtype))
        for x, y, share in _chunks(batch, chunk):
            grads = torch.autograd.grad(loss_of(x, y, share), leaves, create_graph=True)
            inner = sum((g * s).sum() for g, s in zip(grads, stopped))
            for total, h in zip(hg, torch.autograd.grad(inner, leaves)):
                total.add_(h)
    return {n: (w.detach() * h).float().cpu() for (n, w), h in zip(weights.items(), hg)}


# --- SynFlow --------------------------------------------------------------------------


class SynFlow:
    """SynFlow (Tanaka et al. 2020), prepared once for many calls: `SynFlow(model, shape)(mask)`.

    Score = |θ ⊙ ∂R/∂θ| with R the sum of the outputs of the *linearised* network: every
    parameter and floating buffer replaced by its absolute value, BatchNorm in eval mode,
    an all-ones input of `input_shape`, pruned weights at zero. No data, no labels.

    Fast and safe: the |θ| copies are made once (not a deepcopy per iteration) and the network
    is evaluated on them with `functional_call`, so the model's weights, signs, mode and BN
    statistics are never touched. `dtype=None` computes in float32 and redoes a call in float64
    whenever R over- or underflows float32; a non-finite R in float64 raises FloatingPointError.
    """

    def __init__(self, model: nn.Module, input_shape: tuple[int, ...], dtype: torch.dtype | None = None):
        self.model = model
        self.input_shape = tuple(input_shape)
        self.dtype = dtype
        self._copies: dict[torch.dtype, tuple[dict[str, Tensor], dict[str, Tensor]]] = {}

    def _linearised(self, dtype: torch.dtype) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        if dtype not in self._copies:
            params = {n: p.detach().to(dtype).abs() for n, p in self.model.named_parameters()}
            buffers = {n: b.detach().to(dtype).abs() if b.is_floating_point() else b.detach()
                       for n, b in self.model.named_buffers()}
            self._copies[dtype] = (params, buffers)
        return self._copies[dtype]

    def _saliency(self, mask: Mask, names: list[str], dtype: torch.dtype) -> tuple[Tensor, dict[str, Tensor]]:
        params, buffers = self._linearised(dtype)
        leaves = {n: p * mask[n].to(p.device, dtype) if n in mask else p.clone() if n in names else p
                  for n, p in params.items()}
        for name in names:
            leaves[name].requires_grad_(True)
        device = next(iter(params.values())).device
        ones = torch.ones((1, *self.input_shape), dtype=dtype, device=device)
        with training_mode(self.model, False):
            total = functional_call(self.model, {**leaves, **buffers}, (ones,)).sum()
        grads = torch.autograd.grad(total, [leaves[n] for n in names], allow_unused=True)
        scores = {n: (leaves[n].detach() * (g if g is not None else 0.0)).abs()
                  for n, g in zip(names, grads)}
        return total.detach(), scores

    def saliency(self, mask: Mask, names: list[str] | None = None) -> dict[str, Tensor]:
        """Scores of `names` (default: the masked weights; pass every parameter name to account for
        biases and BN), as CPU tensors in the dtype they were computed in."""
        names = list(mask) if names is None else list(names)
        dtype = self.dtype or torch.float32
        total, scores = self._saliency(mask, names, dtype)
        if self.dtype is None and not (torch.isfinite(total) and (total == 0 or total > 1e-30)):
            dtype = torch.float64
            total, scores = self._saliency(mask, names, dtype)
        if not torch.isfinite(total) or any(not torch.isfinite(s).all() for s in scores.values()):
            raise FloatingPointError(f"SynFlow's R is {float(total)} in {dtype}: the network over/underflows")
        return {n: s.cpu() for n, s in scores.items()}

    def __call__(self, mask: Mask) -> dict[str, Tensor]:
        return self.saliency(mask)


def synflow(model: nn.Module, mask: Mask, input_shape: tuple[int, ...],
            dtype: torch.dtype | None = None) -> dict[str, Tensor]:
    """One SynFlow evaluation (see `SynFlow`; iterate with one `SynFlow` object to reuse its |θ| copy)."""
    return SynFlow(model, input_shape, dtype)(mask)


def layer_totals(scores: Mapping[str, Tensor]) -> dict[str, float]:
    """Sum of each layer's scores in float64 (the quantity SynFlow conserves across layers)."""
    return {n: float(s.double().sum()) for n, s in scores.items()}


def cut_totals(saliency: Mapping[str, Tensor], weights: list[str]) -> dict[str, float]:
    """Per weight layer: its total plus that of every bias (a name ending in "bias") scored after it.

    `saliency` must list every parameter in forward order (`named_parameters` order). In a chain
    network (no skip connections) the weights of a layer and every bias from that layer on separate
    the input from the outputs, so for SynFlow each of these totals equals R (Tanaka et al. 2020,
    Theorem 2); where the biases and BN shifts are zero (VGG at init) they are the weight totals.
    """
    names = list(saliency)
    totals = layer_totals(saliency)
    return {w: totals[w] + sum(totals[b] for b in names[names.index(w) + 1:] if b.endswith("bias"))
            for w in weights}


def spread(values: Iterable[float]) -> float:
    """(max - min) / max of per-layer totals: 0 when every layer carries the same total."""
    values = np.asarray(list(values), dtype=float)
    return float((values.max() - values.min()) / values.max())


def conservation_summary(model: nn.Module, mask: Mask, batch: Batch, input_shape: tuple[int, ...]) -> dict:
    """Tanaka et al.'s conservation check at initialisation, in numbers.

    Per prunable layer: SynFlow's cut totals (a layer's weights plus every bias after it, float64; equal to R
    in a chain network), its weight-only totals, SNIP's and magnitude's totals. Then the spread of each
    (`spread`), R (the mean cut total), the share of R carried by biases and BN shifts, and the spread of
    the BN-scale cuts around R. `synflow_seconds` is the wall time of the one float64 SynFlow call.
    """
    import time

    weights = list(mask)
    all_names = [n for n, _ in model.named_parameters()]
    start = time.perf_counter()
    synflow_all = SynFlow(model, input_shape, dtype=torch.float64).saliency(mask, all_names)
    seconds = time.perf_counter() - start
    cuts = cut_totals(synflow_all, weights)
    totals = {"SynFlow (cut)": cuts, "SynFlow (weights only)": layer_totals({n: synflow_all[n] for n in weights}),
              "SNIP": layer_totals(snip(model, mask, batch)), "magnitude": layer_totals(magnitude(model, mask))}
    shifts = [n for n in all_names if n.endswith("bias")]
    gammas = [n for n in all_names if n not in weights and not n.endswith("bias")]
    r_value = float(np.mean(list(cuts.values())))
    gamma_cuts = cut_totals(synflow_all, gammas) if gammas else {}
    return {"totals": totals, "spreads": {k: spread(totals[k].values()) for k in ("SynFlow (cut)", "SNIP", "magnitude")},
            "r_value": r_value,
            "shift_share": sum(float(synflow_all[n].double().sum()) for n in shifts) / r_value,
            "gamma_cut_spread": spread([*gamma_cuts.values(), r_value]) if gamma_cuts else 0.0,
            "synflow_seconds": seconds}

"""The tickets 06_deployment measures, built from 01's and 04's cached runs: IMP rounds as CPU models, the files
they ship as, and the forms (masked, CSR, BSR, slim, im2col + CSR convolutions) that are checked and timed.

The notebook only calls these and draws; what a claim judges (storage rows, forms) is made here.
"""
from __future__ import annotations

import copy
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ticketlib.core import pruning, scores, slim, sparse, ticketfile
from ticketlib.core.data import Dataset, Split
from ticketlib.core.experiment import Experiment
from ticketlib.core.masks import Mask
from ticketlib.core.search import Ticket
from ticketlib.core.train import evaluate
from ticketlib.studies.deployment.study import Forms


def ticket_model(exp: Experiment, data: Dataset, ticket: Ticket, index: int, seed: int) -> tuple[nn.Module, Mask, bool]:
    """The trained ticket of IMP round `index`, on the CPU in eval mode; its mask; whether its pruned weights
    were already exactly zero (IMP holds them there through training)."""
    round_ = ticket.rounds[index]
    model = exp.build_model(data, seed).cpu()
    model.load_state_dict(round_.final_state)
    zero = ticketfile.pruned_exactly_zero(model.state_dict(), round_.mask)
    return round_.mask.apply(model).eval(), round_.mask, zero


def earlybird_masks(found: Mapping, ratios: Sequence[float], dense_net: nn.Module) -> dict[float, dict]:
    """The early-bird ticket's channel masks per ratio where it was detected, else the fully trained network's
    (as 04 retrains them)."""
    from ticketlib.studies.early_tickets.study import ticket_mask

    masks = {}
    for r in ratios:
        detected = found["detected"][r]
        masks[r] = (found["masks"][r][found["epochs"].index(detected)] if detected is not None
                    else ticket_mask(dense_net, r))
    return masks


@dataclass
class Storage:
    """What the tickets cost on disk: `rows` per seed and round (bytes of every format, the storage claim re-judges
    from them), whether each ticket's pruned weights were already zero, float16's accuracy cost at `half_accuracy`'s
    round, and the early-bird network's dense and slimmed files."""

    rows: list[dict]
    zero_pruned: list[bool]
    half_accuracy: dict
    earlybird: list[dict]


def stored_tickets(exp: Experiment, data: Dataset, tickets: Mapping[int, Ticket], seeds: Sequence[int],
                   claim_round: int | None, show_round: int, dense_net: nn.Module, slim_nets: Mapping[float, nn.Module],
                   eb_percent: Mapping[float, float], test: Split) -> Storage:
    """Every round of the first seed and the claim's round of the others, written and reloaded as ticket files;
    the early-bird network dense and slimmed. Raises when a compact ticket does not reload bit-exactly."""
    rows, zero_pruned, half_accuracy, first = [], [], {}, seeds[0]
    with tempfile.TemporaryDirectory() as folder:
        for seed in seeds:
            indices = (range(len(tickets[seed].rounds)) if seed == first
                       else [claim_round] if claim_round is not None else [])
            for index in indices:
                model, mask, zero = ticket_model(exp, data, tickets[seed], index, seed)
                zero_pruned.append(zero)
                reloaded = exp.build_model(data, seed).cpu()
                rows.append({"seed": seed, "round": index, "percent_remaining": 100 * mask.density(),
                             **ticketfile.stored_ticket(model, mask, reloaded, folder)})
                if seed == first and index == show_round:  # what float16 values cost in accuracy
                    ticketfile.load_ticket(reloaded, Path(folder) / "compact16.safetensors")
                    half_accuracy = {"round": index, "float32": 100 * evaluate(model, test)[1],
                                     "float16 values": 100 * evaluate(reloaded, test)[1]}
        earlybird = []
        for form, ratio, net in [("dense", None, dense_net), *[("slim", r, n) for r, n in slim_nets.items()]]:
            path = Path(folder) / "net.pt"
            earlybird.append({"form": form, "ratio": ratio, "percent": 100.0 if ratio is None else eb_percent[ratio],
                              "bytes": ticketfile.save_state_dict(net, path), "gzip": ticketfile.gzip_bytes(path)})
    if not all(r["bit_exact"] for r in rows):
        raise AssertionError("a compact ticket did not reload bit-exactly")
    return Storage(rows, zero_pruned, half_accuracy, earlybird)


def imp_forms(exp: Experiment, data: Dataset, ticket: Ticket, seed: int, timed: Sequence[int], x_check: torch.Tensor,
              bsr_block: int) -> Forms:
    """The IMP ticket's forms at the `timed` rounds: masked dense (round 0: dense), CSR and (`bsr_block` > 0) BSR,
    each sparse one checked against its masked dense model."""
    forms = Forms()
    for index in timed:
        model, mask, _ = ticket_model(exp, data, ticket, index, seed)
        level = 100 * mask.density()
        base = dict(model="imp", percent=level, round=index, ratio=None)
        forms.add("dense" if index == 0 else f"masked {level:.2f}%", model, form="dense" if index == 0 else "masked",
                  **base)
        forms.add(f"csr {level:.2f}%", sparse.sparse_model(model, "csr"), model, x_check, form="csr", **base)
        if bsr_block:
            forms.add(f"bsr {level:.2f}%", sparse.sparse_model(model, "bsr", bsr_block), model, x_check,
                      form="bsr", **base)
    return forms


def earlybird_forms(dense_net: nn.Module, masks: Mapping[float, dict], slim_nets: Mapping[float, nn.Module],
                    eb_percent: Mapping[float, float], conv_percents: Sequence[float], x_check: torch.Tensor) -> Forms:
    """The early-bird network dense, channel-masked and slimmed per ratio, and (a kernel probe, not tickets) its
    magnitude-pruned copies at `conv_percents` as im2col + CSR convolutions; each checked against its reference."""
    forms = Forms()
    forms.add("dense", dense_net, model="earlybird", form="dense", percent=100.0, ratio=None)
    for r in masks:
        masked = slim.mask_channels(copy.deepcopy(dense_net), masks[r]).eval()
        forms.add(f"masked p={r}", masked, model="earlybird", form="masked", percent=eb_percent[r], ratio=r)
        forms.add(f"slim p={r}", slim_nets[r], masked, x_check, model="earlybird", form="slim",
                  percent=eb_percent[r], ratio=r)
    for level in conv_percents:
        ones = Mask.ones_like(dense_net)
        magnitude = pruning.prune_to_density(scores.magnitude(dense_net, ones), ones, level / 100, scope="layerwise")
        masked = magnitude.apply(copy.deepcopy(dense_net)).eval()
        forms.add(f"conv csr {level:g}%", sparse.sparse_model(masked, conv=True), masked, x_check,
                  model="earlybird", form="conv_csr", percent=100 * magnitude.density(), ratio=None)
    return forms

"""03's mask tables and diagnostics on hand-built masks and rows: transfer sources, matrix kinds, pairwise
overlaps, the mask-fit diagnostics (no encoder is trained)."""
import torch

from ticketlib.core.masks import Mask
from ticketlib.studies.bert_transfer import study as bert_tickets

# --- the transfer notebook's mask tables and diagnostics, on hand-built masks and rows -----------
def _mask(**layers) -> Mask:
    return Mask({n.replace("__", "."): torch.tensor(v, dtype=torch.bool) for n, v in layers.items()})


def test_transfer_source_masks_take_the_nearest_round_then_a_random_mask_of_its_density() -> None:
    from ticketlib.studies.imp.study import Round

    def rounds(half: list[int]) -> list:
        return [Round(0, _mask(a=[1, 1, 1, 1], b=[1, 1, 1, 1]), {}, []),
                Round(1, _mask(a=half, b=[1, 0, 1, 0]), {}, []),  # density 1/2
                Round(2, _mask(a=[0, 0, 0, 1], b=[0, 0, 1, 0]), {}, [])]

    tickets = {"sst": rounds([1, 1, 0, 0]), "mlm": rounds([0, 0, 1, 1])}
    masks = bert_tickets.transfer_source_masks(tickets, 0.4, seed=5)
    assert list(masks) == ["sst", "mlm", "random"]
    assert masks["sst"] == tickets["sst"][1].mask and masks["mlm"] == tickets["mlm"][1].mask
    assert masks["random"] == bert_tickets.random_mask(masks["sst"], 0.5, 5) and masks["random"].num_kept() == 4
    assert bert_tickets.transfer_source_masks(tickets, 0.8, seed=5)["sst"] == tickets["sst"][2].mask


def test_matrix_kind_prefers_attention_output_over_output() -> None:
    layer = "bert.encoder.layer.0."
    names = {"attention.self.query.weight": "query", "attention.self.key.weight": "key",
             "attention.self.value.weight": "value", "attention.output.dense.weight": "attention.output",
             "intermediate.dense.weight": "intermediate", "output.dense.weight": "output"}
    assert {n: bert_tickets.matrix_kind(layer + n) for n in names} == {n: k for n, k in names.items()}
    assert bert_tickets.matrix_kind("bert.pooler.dense.weight") == "pooler"
    assert bert_tickets.matrix_kind("head.weight") == "head.weight"


def test_density_by_matrix_kind_pools_the_matrices_of_a_kind() -> None:
    q0, q1, out = "layer.0.attention.self.query.weight", "layer.1.attention.self.query.weight", "layer.0.output.dense.weight"
    a = Mask({q0: torch.tensor([1, 0, 0, 0], dtype=torch.bool), q1: torch.tensor([1] * 6 + [0] * 2, dtype=torch.bool),
              out: torch.tensor([1, 1], dtype=torch.bool)})
    b = Mask({q0: torch.ones(4, dtype=torch.bool), q1: torch.zeros(8, dtype=torch.bool),
              out: torch.tensor([0, 1], dtype=torch.bool)})
    table = bert_tickets.density_by_matrix_kind({"a": a, "b": b})
    assert list(table.columns) == ["a", "b"] and sorted(table.index) == ["output", "query"]
    assert table.loc["query", "a"] == 100 * 7 / 12 and table.loc["output", "a"] == 100.0  # kept / total, pooled
    assert table.loc["query", "b"] == 100 * 4 / 12 and table.loc["output", "b"] == 50.0


def test_mask_overlap_is_the_pairwise_hamming_distance_in_percent() -> None:
    masks = {"a": _mask(w=[1, 1, 0, 0], v=[1, 0]), "b": _mask(w=[1, 0, 1, 0], v=[1, 0]),
             "c": _mask(w=[0, 0, 1, 1], v=[0, 1])}
    overlap = bert_tickets.mask_overlap(masks)
    assert list(overlap.index) == list(overlap.columns) == ["a", "b", "c"]
    assert overlap.loc["a", "b"] == overlap.loc["b", "a"] == 100 * (2 / 6)  # 2 of the 6 weights differ
    assert overlap.loc["a", "c"] == 100.0 and overlap.loc["b", "c"] == 100 * (4 / 6)
    assert all(overlap.loc[n, n] == 0.0 for n in masks)


def test_mask_fit_diagnostics_hand_computed(monkeypatch) -> None:
    from types import SimpleNamespace

    from ticketlib.studies.imp.study import Round

    own = {0: 0.75, 1: 0.5, 2: 0.625}  # each seed's ticket at 50%: its own accuracy
    ticket = {s: _mask(w=[1, 1, 0, 0]) if s == 0 else _mask(w=[0, 1, 1, 0]) if s == 1 else _mask(w=[0, 0, 1, 1])
              for s in own}
    tickets_by_seed = {s: {"sst": [Round(0, _mask(w=[1, 1, 1, 1]), {"test_accuracy": 0.875}, []),
                                   Round(1, ticket[s], {"test_accuracy": own[s]}, [])],
                           "other": []} for s in own}
    on = {(0, 2): 0.5, (1, 0): 0.25, (2, 1): 0.75}  # (seed fine-tuning, donor) -> accuracy of the borrowed mask
    calls = []

    def finetune(setup, task, mask, seed, cache=None, progress=True):
        donor = next(s for s, m in ticket.items() if m == mask)
        calls.append((task.name, seed, donor))
        return SimpleNamespace(test_accuracy=on[seed, donor])

    monkeypatch.setattr(bert_tickets, "finetune", finetune)
    rows = [{"task": "sst", "kind": "one_shot", "seed": s, "round": 1, "test_accuracy": a}
            for s, a in {0: 50.0, 1: 62.5, 2: 25.0}.items()]
    rows += [{"task": "sst", "kind": "random_pruning", "seed": 0, "round": 1, "test_accuracy": 0.0},
             {"task": "other", "kind": "one_shot", "seed": 0, "round": 1, "test_accuracy": 0.0}]
    transfer_rows = [{"source": "mlm", "target": "sst", "seed": s, "test_accuracy": a}
                     for s, a in {0: 37.5, 1: 75.0, 2: 50.0}.items()]
    transfer_rows += [{"source": "sst", "target": "sst", "seed": 0, "test_accuracy": 0.0}]
    task = SimpleNamespace(name="sst")
    per_seed, donor, borrowed = bert_tickets.mask_fit_diagnostics(None, tickets_by_seed, rows, transfer_rows, task,
                                                                  [0, 1, 2], 0.5, progress=False)
    assert donor == {0: 2, 1: 0, 2: 1}  # the seed before, cyclically
    assert calls == [("sst", 0, 2), ("sst", 1, 0), ("sst", 2, 1)]
    assert borrowed == {0: 50.0, 1: 25.0, 2: 75.0}
    assert list(per_seed) == ["own - another seed's ticket", "IMP - one-shot (pre-trained)",
                              "MLM mask - one-shot (pre-trained)"]
    assert per_seed["own - another seed's ticket"] == {0: 25.0, 1: 25.0, 2: -12.5}
    assert per_seed["IMP - one-shot (pre-trained)"] == {0: 25.0, 1: -12.5, 2: 37.5}
    assert per_seed["MLM mask - one-shot (pre-trained)"] == {0: -12.5, 1: 12.5, 2: 25.0}

    # one seed: no borrowing; a seed without its MLM transfer run: no MLM diagnostic
    calls.clear()
    per_seed, donor, borrowed = bert_tickets.mask_fit_diagnostics(None, {0: tickets_by_seed[0]}, rows[:1],
                                                                  transfer_rows[1:], task, [0], 0.5)
    assert (donor, borrowed, calls) == ({}, {}, [])
    assert per_seed == {"IMP - one-shot (pre-trained)": {0: 25.0}}

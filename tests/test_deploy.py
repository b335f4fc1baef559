"""06's inference forms and claims: sparse and slimmed forms against the masked dense model, FLOPs, energy, latency
helpers; and the deployment claims on synthetic values (holding, failing, inconclusive). The ticket file's own
tests are in test_ticketfile.py."""

import math

import pytest
import torch
from torch import nn

from ticketlib.core import cost
from ticketlib.core import sparse
from ticketlib.core import train
from ticketlib.core.data import Split
from ticketlib.studies.deployment import study as deployment
from ticketlib import studies
from ticketlib.studies.deployment import claims as deployment_claims
from ticketlib.studies.deployment import params as deployment_params
from ticketlib.core import models
from ticketlib.core import pruning
from ticketlib.core import scores
from ticketlib.core import slim
from ticketlib.core.masks import Mask
from ticketlib.studies.imp.rows import RunRow


def lenet_ticket(density: float = 0.1, seed: int = 0) -> tuple[nn.Module, Mask]:
    """LeNet-300-100 with a random layerwise mask applied (pruned weights exactly zero)."""
    torch.manual_seed(seed)
    model = models.build("lenet_300_100", (1, 28, 28), 10).eval()
    mask = pruning.random_mask_like(Mask.ones_like(model), torch.Generator().manual_seed(seed))
    mask = pruning.prune_to_density(scores.magnitude(model, mask), mask, density, scope="layerwise")
    return mask.apply(model), mask


def equal_states(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) and sa[k].dtype == sb[k].dtype for k in sa)


# --- inference forms ---------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["csr", "bsr"])
@pytest.mark.parametrize("density", [1.0, 0.2, 0.02])
def test_sparse_linear_forms_match_the_masked_dense_model(layout, density) -> None:
    model, _ = lenet_ticket(density)
    form = sparse.sparse_model(model, layout, block=4)
    assert all(isinstance(m, sparse.SparseLinear) for m in (form.fc1, form.fc2, form.fc3))
    x = torch.randn(17, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    error, agree = sparse.max_relative_error(form, model, x)
    assert error <= sparse.OUTPUT_RTOL and agree
    assert sparse.max_relative_error(form, model, x[:1])[0] <= sparse.OUTPUT_RTOL  # batch 1
    if layout == "csr":
        assert sum(m.stored() for m in (form.fc1, form.fc2, form.fc3)) == sum(
            int((model.get_submodule(n).weight != 0).sum()) for n in ("fc1", "fc2", "fc3"))
    else:
        assert form.fc3.weight.values().shape[1:] == (2, 2)  # 10 x 100: the largest square block <= 4 dividing both


def test_sparse_conv_lowering_matches_and_torch_has_no_sparse_conv() -> None:
    torch.manual_seed(0)
    model = models.build("vgg11", (1, 28, 28), 10, width=0.0625).eval()
    ones = Mask.ones_like(model)
    pruning.prune_to_density(scores.magnitude(model, ones), ones, 0.3, scope="layerwise").apply(model)
    form = sparse.sparse_model(model, conv=True)
    assert isinstance(form.features[0], sparse.SparseConv2d) and isinstance(form.fc, sparse.SparseLinear)
    x = torch.randn(3, 1, 28, 28)
    error, agree = sparse.max_relative_error(form, model, x)
    assert error <= sparse.OUTPUT_RTOL and agree
    strided = nn.Conv2d(3, 4, 3, stride=2, padding=2, dilation=2, bias=True)
    y = torch.randn(2, 3, 11, 9)
    assert torch.allclose(sparse.SparseConv2d(strided)(y), strided(y), atol=1e-5)
    support = sparse.sparse_conv_support()
    assert "COO" in support and "CSR" in support and "refused" in support  # torch 2.x on CPU: none


def test_slimmed_network_matches_the_channel_masked_one() -> None:
    torch.manual_seed(0)
    model = models.build("vgg11", (1, 28, 28), 10, width=0.125).eval()
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        nn.init.uniform_(bn.weight, 0.0, 1.0)
        nn.init.normal_(bn.running_mean, 0.0, 0.1)
    from ticketlib.studies.early_tickets import study as earlybird

    mask = earlybird.ticket_mask(model, 0.5)
    small = slim.slim(model, mask)
    masked = slim.mask_channels(__import__("copy").deepcopy(model), mask)
    error, agree = sparse.max_relative_error(small, masked, torch.randn(8, 1, 28, 28))
    assert error <= sparse.OUTPUT_RTOL and agree


def test_resident_bytes_count_the_sparse_index_arrays() -> None:
    model, _ = lenet_ticket(0.1)
    form = sparse.sparse_model(model)
    assert sparse.resident_bytes(model) == 4 * sum(p.numel() for p in model.parameters())
    nnz = sum(m.stored() for m in (form.fc1, form.fc2, form.fc3))
    rows = 300 + 100 + 10 + 3  # crow_indices: rows + 1 per layer
    assert sparse.resident_bytes(form) == 4 * nnz + 8 * nnz + 8 * rows + 4 * (300 + 100 + 10)


def test_sparse_modules_register_their_tensors_so_to_and_state_dict_see_them() -> None:
    model, _ = lenet_ticket(0.1)
    form = sparse.sparse_model(model)
    state = form.state_dict()
    assert {"fc1.weight", "fc1.bias", "fc3.weight", "fc3.bias"} <= set(state)
    assert state["fc1.weight"].layout == torch.sparse_csr and state["fc1.weight"]._nnz() == form.fc1.stored()
    moved = form.to(torch.float64)
    assert moved.fc1.weight.dtype == torch.float64 and moved.fc1.bias.dtype == torch.float64
    conv = sparse.SparseConv2d(nn.Conv2d(2, 3, 3, bias=False))
    assert "weight" in conv.state_dict() and conv.bias is None


def test_one_evaluator_for_every_form() -> None:
    """`train.evaluate` measures a ticket in every form it ships as: the channel-masked dense model, its
    sparse-kernel form (convs lowered, Linear on CSR) and its slimmed network; and a LeNet ticket whose
    sparse form holds buffers only (no parameters to place it by)."""
    torch.manual_seed(0)
    model = models.build("vgg11", (1, 28, 28), 10, width=0.125)
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        nn.init.uniform_(bn.weight, 0.0, 1.0)
        nn.init.normal_(bn.running_mean, 0.0, 0.1)
    from ticketlib.studies.early_tickets import study as earlybird

    mask = earlybird.ticket_mask(model, 0.5)
    dense = slim.mask_channels(__import__("copy").deepcopy(model), mask).train()  # evaluate switches to eval
    forms = {"dense": dense, "sparse": sparse.sparse_model(dense, conv=True), "slim": slim.slim(model, mask).train()}
    x = torch.randn(30, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        y = dense.eval()(x).argmax(1)
    dense.train()
    y[::3] = (y[::3] + 1) % 10  # a third of the labels wrong: accuracy 2/3, not a trivial 1
    split = Split(x, y)
    accuracies = {name: train.evaluate(form, split, batch_size=7)[1] for name, form in forms.items()}
    assert accuracies == {name: 20 / 30 for name in forms}
    assert forms["dense"].training and forms["slim"].training and not forms["sparse"].training  # modes restored
    lenet, _ = lenet_ticket(0.2)
    csr = sparse.sparse_model(lenet)
    assert not list(csr.parameters()) and train.model_device(csr) == torch.device("cpu")
    x = torch.randn(50, 1, 28, 28)
    split = Split(x, lenet(x).argmax(1))
    assert train.evaluate(lenet, split)[1] == train.evaluate(csr, split, batch_size=7)[1] == 1.0


# --- cost ------------------------------------------------------------------------------------------------
def test_flops_dense_by_the_counter_sparse_by_nonzeros() -> None:
    model, _ = lenet_ticket(0.1)
    x = torch.randn(5, 1, 28, 28)
    dense = 2 * 5 * (784 * 300 + 300 * 100 + 100 * 10)
    assert cost.counted_flops(model, x) == dense  # a masked dense model multiplies its zeros
    assert slim.flops(model, (1, 28, 28)) - cost.counted_flops(model, x[:1]) == 300 + 100 + 10  # bias adds
    nonzero = sum(int((model.get_submodule(n).weight != 0).sum()) for n in ("fc1", "fc2", "fc3"))
    assert cost.counted_flops(sparse.sparse_model(model), x) == 2 * 5 * nonzero
    bsr = sparse.sparse_model(model, "bsr")
    assert cost.counted_flops(bsr, x) == 2 * 5 * sum(m.stored() for m in (bsr.fc1, bsr.fc2, bsr.fc3)) > 2 * 5 * nonzero


def test_flops_of_a_lowered_conv_and_a_slimmed_network() -> None:
    torch.manual_seed(0)
    model = models.build("vgg11", (1, 28, 28), 10, width=0.0625).eval()
    x = torch.randn(2, 1, 28, 28)
    counted = cost.counted_flops(model, x)
    assert counted == 2 * (slim.flops(model, (1, 28, 28)) - 10)  # the fc bias adds are the only difference
    form = sparse.sparse_model(model, conv=True)  # nothing pruned: every weight stored
    assert cost.counted_flops(form, x) == counted


def test_energy_estimate_uses_the_stated_figure() -> None:
    assert cost.PJ_PER_FP32_MAC == pytest.approx(3.7 + 0.9)
    assert cost.estimated_joules(2e12) == pytest.approx(4.6)  # 1e12 multiply-adds x 4.6 pJ
    assert "Horowitz" in cost.ENERGY_SOURCE and "estimate" in cost.ENERGY_SOURCE


def test_rapl_counters_read_where_readable_and_wrap_around(tmp_path) -> None:
    assert cost.rapl_counters(tmp_path / "absent") == {}
    zone = tmp_path / "intel-rapl:0"
    zone.mkdir()
    (zone / "name").write_text("package-0\n")
    (zone / "energy_uj").write_text("1000\n")
    (zone / "max_energy_range_uj").write_text("5000\n")
    (tmp_path / "intel-rapl:0:0").mkdir()  # a sub-zone: part of the package, not counted twice
    ((tmp_path / "intel-rapl:0:0") / "energy_uj").write_text("7\n")
    counters = cost.rapl_counters(tmp_path)
    assert list(counters) == ["intel-rapl:0 (package-0)"]
    calls = []

    def step() -> None:  # each call spends 600 uJ; the counter wraps at 5000
        calls.append(1)
        (zone / "energy_uj").write_text(str((1000 + 600 * len(calls)) % 5000))

    joules = cost.measured_joules(step, counters, min_seconds=0.0)
    assert len(calls) == 1 and joules == pytest.approx(600e-6)
    for _ in range(7):
        step()
    assert cost.measured_joules(step, counters, min_seconds=0.0) == pytest.approx(600e-6)  # across the wrap
    with pytest.raises(ValueError, match="RAPL"):
        cost.measured_joules(step, {})


def test_latency_samples_are_paired_and_positive() -> None:
    model, _ = lenet_ticket(0.05)
    forms = {"masked": model, "csr": sparse.sparse_model(model)}
    samples = cost.latency_samples(forms, torch.randn(4, 1, 28, 28), repeats=3, threads=1, min_seconds=0.0)
    assert set(samples) == {"masked", "csr"} and all(len(s) == 3 and min(s) > 0 for s in samples.values())
    q1, median, q3 = cost.quartiles([1.0, 2.0, 3.0, 4.0, 5.0])
    assert (q1, median, q3) == (2.0, 3.0, 4.0)


def test_crossover_density() -> None:
    cross = cost.crossover_density([0.02, 0.05, 0.2, 0.5], [0.3, 0.5, 2.0, 4.0])
    assert cross.how == "interpolated" and 0.05 < cross.density < 0.2
    t = math.log(1 / 0.5) / math.log(2.0 / 0.5)  # log-log interpolation by hand
    assert cross.density == pytest.approx(math.exp(math.log(0.05) + t * math.log(0.2 / 0.05)))
    assert cost.crossover_density([0.5, 0.02], [4.0, 1.2]) == cost.Crossover(None, "never")
    assert cost.crossover_density([0.02, 0.5], [0.3, 0.9]) == cost.Crossover(0.5, "all")
    assert cost.crossover_density([0.02, 0.1, 0.5], [0.5, 1.5, 0.8]).density < 0.1  # first crossing from the sparse end
    with pytest.raises(ValueError):
        cost.crossover_density([0.1], [])



def test_forms_check_each_form_against_its_reference() -> None:
    model, _ = lenet_ticket(0.05)
    x = torch.randn(8, 1, 28, 28)
    forms = deployment.Forms()
    forms.add("dense", model, model="imp", form="dense", percent=100.0)
    forms.add("csr", sparse.sparse_model(model), model, x, model="imp", form="csr", percent=5.0)
    wrong = models.build("lenet_300_100", (1, 28, 28), 10).eval()  # another function altogether
    forms.add("wrong", wrong, model, x, model="imp", form="masked", percent=5.0)
    assert list(forms.modules) == ["dense", "csr", "wrong"] and forms.meta["csr"]["percent"] == 5.0
    assert [c["form"] for c in forms.checks] == ["csr", "masked"]  # the reference itself is not checked
    assert forms.checks[0]["within tolerance"] and forms.checks[0]["predictions agree"]
    assert not forms.checks[1]["within tolerance"]


def test_time_forms_rows_cover_every_setting_and_ratios_pair_with_dense() -> None:
    model, _ = lenet_ticket(0.05)
    forms = deployment.Forms()
    forms.add("dense", model, model="imp", form="dense", percent=100.0)
    forms.add("csr", sparse.sparse_model(model), model="imp", form="csr", percent=5.0)
    rows, wall = deployment.time_forms([(forms, torch.randn(6, 1, 28, 28))], [1, 4], {0: 1, 2: 2}, repeats=2,
                                   min_seconds=0.0)
    assert [(r["batch"], r["threads"], r["key"]) for r in rows] == [
        (b, t, k) for b in (1, 4) for t in (0, 2) for k in ("dense", "csr")]
    assert list(wall) == ["batch 1, 1 thread(s)", "batch 1, 2 thread(s)", "batch 4, 1 thread(s)", "batch 4, 2 thread(s)"]
    fixed = [{"model": "imp", "form": "dense", "batch": 1, "threads": 0, "percent": 100.0, "seconds": [2.0, 4.0]},
             {"model": "imp", "form": "csr", "batch": 1, "threads": 0, "percent": 5.0, "seconds": [1.0, 1.0]},
             {"model": "imp", "form": "csr", "batch": 1, "threads": 0, "percent": 50.0, "seconds": [4.0, 8.0]}]
    assert deployment.ratios_to_dense(fixed, fixed[1]) == [0.5, 0.25]
    found = deployment.crossovers(fixed, "imp", ["csr"], [1], {0: 2})
    assert list(found) == ["csr, batch 1, 2 thread(s)"]
    cross = found["csr, batch 1, 2 thread(s)"]
    assert cross["how"] == "interpolated" and cross["density"] == cost.crossover_density([0.05, 0.5], [0.375, 2.0]).density
    assert deployment_claims.crossover_text(cross) == f"faster than dense below ≈ {100 * cross['density']:.1f}% of weights remaining"
    assert deployment_claims.crossover_text({"how": "never", "density": None}) == "never faster than dense at the densities timed"
    assert deployment_claims.crossover_text({"how": "all", "density": 0.5}) == "faster than dense at every density timed (up to 50.0%)"


def test_compute_rows_and_measured_energy(tmp_path) -> None:
    model, mask = lenet_ticket(0.05)
    forms = deployment.Forms()
    forms.add("dense", model, model="imp", form="dense", percent=100.0)
    x = torch.randn(4, 1, 28, 28)
    rows = deployment.compute_rows([(forms, x)])
    assert rows[0]["flops"] == cost.counted_flops(model, x[:1]) and rows[0]["key"] == "dense"
    assert rows[0]["estimated_joules"] == cost.estimated_joules(rows[0]["flops"])
    counter = tmp_path / "energy_uj"
    counter.write_text("1000\n")
    deployment.measure_energy(rows, {"imp": (forms, x)}, {"package-0": counter}, threads=1)
    assert rows[0]["measured_joules"] == 0.0  # a counter that never moves: no energy measured, per image

# --- the deployment claims on synthetic values ----------------------------------------------------------
def imp_rows(gaps: dict[int, list[float]], dense: list[float]) -> list[RunRow]:
    """01's typed rows from round -> per-seed ticket − dense accuracy gaps."""
    rows = []
    for index, per_seed in gaps.items():
        for seed, gap in enumerate(per_seed):
            rows.append(RunRow(seed=seed, kind="ticket", round=index, density=0.8 ** index,
                               test_accuracy=dense[seed] + gap, early_stop_iteration=0,
                               final_test_accuracy=dense[seed] + gap))
    return rows


def test_matching_rounds_and_the_sparsest_matching_one() -> None:
    dense = [98.0, 98.2, 97.8]  # sd 0.2: matching = above −0.2
    rows = imp_rows({0: [0, 0, 0], 1: [0.1, 0.2, 0.3], 2: [0.0, 0.1, 0.05], 3: [-1.0, -1.2, -0.9]}, dense)
    verdicts = deployment_claims.matching_rounds(rows, "test_accuracy")
    assert [v.verdict for v in verdicts] == ["holds", "holds", "holds", "fails"]
    assert verdicts[0].threshold == pytest.approx(-0.2)
    assert deployment_claims.sparsest_matching(verdicts) == 2
    assert deployment_claims.sparsest_matching(verdicts[3:]) is None
    summary = deployment_claims.matching_summary(verdicts, [100.0, 80.0, 64.0, 51.2])
    assert [(r["round"], r["percent_remaining"], r["verdict"]) for r in summary] == [
        (0, 100.0, "holds"), (1, 80.0, "holds"), (2, 64.0, "holds"), (3, 51.2, "fails")]
    assert summary[1]["estimate"] == pytest.approx(0.2) and summary[1]["interval"] == list(verdicts[1].interval)
    assert all(r["threshold"] == verdicts[0].threshold for r in summary)


@pytest.mark.parametrize("ratios, expected", [({0: 0.067, 1: 0.067, 2: 0.067}, "holds"),
                                              ({0: 0.5, 1: 0.5}, "fails"),
                                              ({0: 0.05, 1: 0.2}, "inconclusive")])
def test_compact_ticket_claim(ratios, expected) -> None:
    storage = [{"seed": seed, "round": 9, "percent_remaining": 3.5, "compact": 1000 * ratio, "dense": 1000}
               for seed, ratio in ratios.items()]
    storage += [{"seed": seed, "round": 8, "percent_remaining": 4.4, "compact": 900, "dense": 1000} for seed in ratios]
    v = deployment_claims.compact_ticket_claim(storage, 9, "lenet_300_100", "mnist")  # round 8's rows are not judged
    assert v.verdict == expected and v.threshold == 0.1 and v.threshold_basis == "ours"
    assert v.values == pytest.approx({str(s): r for s, r in ratios.items()}) and v.seeds == len(ratios)
    assert v.source == deployment_claims.COMPACT_TARGET.source and "3.50%" in v.statement
    other = deployment_claims.compact_ticket_claim(storage, 9, "vgg11", "fashion_mnist")  # no SETTINGS entry: the same target
    assert other.threshold == 0.1 and other.verdict == expected


def test_compact_ticket_claim_without_a_matching_ticket_is_not_judged() -> None:
    storage = [{"seed": 0, "round": 1, "percent_remaining": 80.0, "compact": 1, "dense": 10}]
    for round_index in (None, 5):  # no matching round, or one the storage rows do not have
        v = deployment_claims.compact_ticket_claim(storage, round_index, "lenet_300_100", "mnist")
        assert v.verdict == "inconclusive" and v.seeds == 0 and "no IMP round matches" in v.measured


def latency_rows(csr_sparse: list[float], csr_moderate: list[float], slim: dict[int, list[float]]) -> list[dict]:
    dense = [1.0, 1.1, 0.9, 1.0]
    rows = [{"model": "imp", "form": "dense", "round": 0, "percent": 100.0, "batch": 256, "threads": 1, "seconds": dense},
            {"model": "imp", "form": "csr", "round": 15, "percent": 3.5, "batch": 256, "threads": 1,
             "seconds": [d * r for d, r in zip(dense, csr_sparse)]},
            {"model": "imp", "form": "csr", "round": 7, "percent": 21.0, "batch": 256, "threads": 1,
             "seconds": [d * r for d, r in zip(dense, csr_moderate)]}]
    for batch, ratio in slim.items():
        rows += [{"model": "earlybird", "form": "dense", "ratio": None, "batch": batch, "threads": 1, "seconds": dense},
                 {"model": "earlybird", "form": "slim", "ratio": 0.5, "batch": batch, "threads": 1,
                  "seconds": [d * r for d, r in zip(dense, ratio)]}]
    return rows


def test_sparse_latency_claims_hold_fail_or_stay_inconclusive() -> None:
    good = latency_rows([0.4, 0.42, 0.38, 0.41], [3.0, 3.2, 2.9, 3.1], {})
    crossovers = {"csr, batch 256, 1 thread(s)": {"layout": "csr", "batch": 256, "threads": 1, "density": 0.1,
                                                  "how": "interpolated"},
                  "csr, batch 1, 1 thread(s)": {"layout": "csr", "batch": 1, "threads": 1, "density": None,
                                                "how": "never"}}
    pays, loses = deployment_claims.sparse_latency_claims(good, 15, 7, 256, 1, crossovers)
    assert (pays.id, pays.verdict, loses.id, loses.verdict) == (
        "sparse_kernels_pay_when_sparse", "holds", "sparse_kernels_lose_at_moderate_sparsity", "holds")
    assert pays.seeds == 4 and pays.estimate == pytest.approx(0.4025)
    assert pays.measured.endswith("; CSR faster than dense below ≈ 10.0% of weights remaining (batch 256, medians)")
    with pytest.raises(ValueError, match="no CSR crossover for batch 256, threads 2"):
        deployment_claims.sparse_latency_claims(good, 15, 7, 256, 2, crossovers)  # that setting's crossover was not found
    assert pays.threshold == 1.0 and pays.threshold_basis == "direction" and "3.50%" in pays.statement
    bad = latency_rows([1.5, 1.6, 1.4, 1.5], [0.5, 0.6, 0.5, 0.4], {})
    assert [v.verdict for v in deployment_claims.sparse_latency_claims(bad, 15, 7, 256, 1, crossovers)] == ["fails", "fails"]
    unsure = latency_rows([0.5, 1.5, 0.6, 1.4], [0.5, 1.5, 0.6, 1.4], {})
    assert [v.verdict for v in deployment_claims.sparse_latency_claims(unsure, 15, 7, 256, 1, crossovers)] == ["inconclusive"] * 2
    with pytest.raises(ValueError, match="round 3 was not timed"):
        deployment_claims.sparse_latency_claims(good, 3, 7, 256, 1, crossovers)  # a round that was not timed


def test_slim_latency_claim_needs_every_batch_size() -> None:
    fast = [0.5, 0.55, 0.52, 0.5]
    v = deployment_claims.slim_latency_claim(latency_rows([1] * 4, [1] * 4, {1: fast, 256: fast}), 0.5, [1, 256], 1)
    assert v.id == "slim_network_is_faster" and v.verdict == "holds" and len(v.parts) == 2
    slow = [1.2, 1.3, 1.25, 1.2]
    assert deployment_claims.slim_latency_claim(latency_rows([1] * 4, [1] * 4, {1: slow, 256: fast}), 0.5, [1, 256], 1
                                     ).verdict == "fails"
    noisy = [0.5, 1.5, 0.6, 1.4]
    assert deployment_claims.slim_latency_claim(latency_rows([1] * 4, [1] * 4, {1: noisy, 256: fast}), 0.5, [1, 256], 1
                                     ).verdict == "inconclusive"


def test_deployment_params_checks() -> None:
    good = {"imp_params": "params/cpu/01_imp.yaml", "earlybird_params": "params/paper/04_early_tickets-vgg16_cifar10.yaml",
            "batch_sizes": [1, 256], "threads": [1, 0], "claim_threads": 1, "latency_repeats": 10,
            "moderate_percent": 21.1}
    assert deployment_params.check_deployment_params(good) == []
    assert studies.check_params("06_deployment", good) == []
    bad = dict(good, imp_params="params/cpu/04_early_tickets.yaml", batch_sizes=[256], claim_threads=2,
               moderate_percent=100.0)
    errors = studies.check_params("06_deployment", bad)
    assert len(errors) == 4 and "'imp_params'" in errors[0] and "01_imp" in errors[0]

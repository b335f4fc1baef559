"""The verdict machinery: intervals, the three outcomes, thresholds per setting, and 01's claims on synthetic
per-seed metrics (holding, failing, inconclusive; missing or NaN values raise); 02-05 are in test_study_claims.py."""

import math

import pytest

from ticketlib import studies
from ticketlib.studies.imp import claims as imp_claims
from ticketlib.studies.imp import rows as run_rows
from ticketlib.studies.imp.rows import RunRow
from ticketlib.verdicts import engine
from ticketlib.verdicts import thresholds
from ticketlib.verdicts.thresholds import Threshold


def test_student_t_interval_by_hand() -> None:
    mean, low, high = engine.interval([1.0, 2.0, 3.0])  # sd 1, n 3, t(0.975, 2) = 4.302653
    assert mean == 2.0
    assert (low, high) == pytest.approx((2 - 4.302653 / math.sqrt(3), 2 + 4.302653 / math.sqrt(3)), rel=1e-6)
    assert engine.interval([5.0], deterministic=True) == (5.0, 5.0, 5.0)
    assert engine.interval([5.0]) == (5.0, -math.inf, math.inf)  # one noisy value: nothing known
    assert engine.interval([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)  # no spread at all
    with pytest.raises(ValueError):
        engine.interval([])


@pytest.mark.parametrize("low, high, direction, expected", [
    (0.5, 1.0, ">", "holds"), (-1.0, 0.0, ">", "fails"), (-0.5, 0.5, ">", "inconclusive"), (0.0, 1.0, ">", "inconclusive"),
    (-1.0, -0.5, "<", "holds"), (0.0, 1.0, "<", "fails"), (-0.5, 0.5, "<", "inconclusive"),
])
def test_decide(low, high, direction, expected) -> None:
    assert engine.decide(low, high, 0.0, direction) == expected


TEXTS = {"statement": "s", "paper": "p", "direction": ">", "measured": "m"}  # judge's keywords but values, threshold


def test_judge_three_outcomes_and_record_fields() -> None:
    t = Threshold(1.0, "a paper, Fig. 1")
    holds = engine.judge("c", values={0: 2.0, 1: 2.1, 2: 1.9}, threshold=t, **TEXTS)
    fails = engine.judge("c", values={0: 0.0, 1: 0.1, 2: -0.1}, threshold=t, **TEXTS)
    unsure = engine.judge("c", values={0: 0.0, 1: 2.0, 2: 1.0}, threshold=t, **TEXTS)
    assert (holds.verdict, fails.verdict, unsure.verdict) == ("holds", "fails", "inconclusive")
    body = holds.to_dict()
    assert body["holds"] is True and body["seeds"] == 3 and body["threshold"] == 1.0 and body["source"] == t.source
    assert body["estimate"] == pytest.approx(2.0) and body["interval"][0] > 1.0 and body["values"] == {"0": 2.0, "1": 2.1, "2": 1.9}
    assert fails.to_dict()["holds"] is False and unsure.to_dict()["holds"] is False


def test_judge_takes_keywords_and_a_measured_text_of_the_judged_verdict() -> None:
    t = thresholds.direction_only("x")
    with pytest.raises(TypeError):
        engine.judge("c", "s", "p", {0: 1.0, 1: 1.1}, t, ">", "m")  # everything after the id is a keyword
    v = engine.judge("c", values={0: 1.0, 1: 1.2}, threshold=t, **dict(TEXTS, measured=engine.fmt_interval))
    assert v.measured == engine.fmt_interval(v) and v.measured.startswith("+1.10 pp [")
    loaded = engine.under_load(v, [None], "wall times ")
    assert loaded is not v and v.measured == engine.fmt_interval(v) and v.contention is None  # a copy: v unchanged
    assert loaded.measured == f"{v.measured}; wall times {loaded.contention['text']}"


def test_missing_or_nan_values_raise_naming_the_claim_and_seed() -> None:
    t = thresholds.direction_only("x")
    with pytest.raises(ValueError, match=r"'gap'.*seed 2"):
        engine.judge("gap", values={0: 1.0, 1: 1.0, 2: float("nan")}, threshold=t, **TEXTS)
    with pytest.raises(ValueError, match=r"'gap'.*seed 1"):
        engine.judge("gap", values={0: 1.0, 1: None}, threshold=t, **TEXTS)
    with pytest.raises(ValueError, match="no values"):
        engine.judge("gap", values={}, threshold=t, **TEXTS)
    with pytest.raises(ValueError, match="different seeds"):
        engine.paired({0: 1.0, 1: 2.0}, {0: 1.0}, "gap")
    assert engine.paired({0: 3.0, 1: 2.0}, {0: 1.0, 1: 2.5}, "gap") == {0: 2.0, 1: -0.5}


def test_combine_parts() -> None:
    t = thresholds.direction_only("x")
    good = engine.judge("a", values={0: 1.0, 1: 1.1}, threshold=t, **TEXTS)
    bad = engine.judge("b", values={0: -1.0, 1: -1.1}, threshold=t, **TEXTS)
    unsure = engine.judge("c", values={0: -1.0, 1: 1.0}, threshold=t, **TEXTS)
    assert engine.combine([good, good], "x", statement="s", paper="p", measured="m").verdict == "holds"
    assert engine.combine([good, bad], "x", statement="s", paper="p", measured="m").verdict == "fails"
    assert engine.combine([good, unsure], "x", statement="s", paper="p", measured="m").verdict == "inconclusive"
    assert len(engine.combine([good, unsure], "x", statement="s", paper="p", measured="m").parts) == 2


def test_matching_threshold_is_minus_one_sd_of_the_reference() -> None:
    t = engine.matching_threshold({0: 97.0, 1: 98.0, 2: 99.0}, "c")
    assert t.value == pytest.approx(-1.0) and t.basis == "definition"
    with pytest.raises(ValueError, match="2 seeds"):
        engine.matching_threshold({0: 97.0}, "c")


def test_thresholds_are_per_setting_and_never_borrowed() -> None:
    assert thresholds.level_for("ticket_matches_dense", "lenet_300_100", "mnist", 99.0)[0] == 3.6
    assert thresholds.level_for("ticket_matches_dense", "conv2", "cifar10", 99.0)[0] == 8.8
    level, source = thresholds.level_for("ticket_matches_dense", "conv2", "fashion_mnist", 5.0)
    assert level == 5.0 and "ours" in source  # no LeNet or CIFAR number judges another setting
    t = thresholds.threshold_for("supermask", "lenet_300_100", "cifar10")
    assert t.value == 0.0 and t.basis == "direction"
    assert thresholds.threshold_for("supermask", "lenet_300_100", "mnist").value == 86.0
    for (claim, model, dataset), s in thresholds.SETTINGS.items():
        assert s.paper, f"{claim} on {model}/{dataset} names no source"
        assert s.threshold is None or s.threshold.source


def imp_rows(dense, ticket, reinit, random_mask, iters=(5000, 3000)) -> list[RunRow]:
    """Synthetic imp_study rows: round 0 dense (100%), round 1 at 21%, round 2 at 3.6%, controls at round 2."""
    rows = []
    for seed, (d, t, r, m) in enumerate(zip(dense, ticket, reinit, random_mask)):
        for rnd, p, acc, it in [(0, 100.0, d, iters[0]), (1, 21.0, t, iters[1]), (2, 3.6, t, iters[1])]:
            rows.append({"seed": seed, "kind": "ticket", "round": rnd, "percent_remaining": p, "test_accuracy": acc,
                         "final_test_accuracy": acc - 1, "early_stop_iteration": it + seed})
        rows.append({"seed": seed, "kind": "reinit", "round": 2, "percent_remaining": 3.6, "test_accuracy": r,
                     "final_test_accuracy": r, "early_stop_iteration": 1})
        rows.append({"seed": seed, "kind": "random_mask", "round": 2, "percent_remaining": 3.6, "test_accuracy": m,
                     "final_test_accuracy": m, "early_stop_iteration": 1})
    return [RunRow.from_dict(r) for r in rows]


def test_imp_claims_hold_fail_and_stay_inconclusive() -> None:
    good = {v.id: v.verdict for v in imp_claims.imp_claims(
        imp_rows([98.0, 98.2, 97.9], [98.3, 98.4, 98.2], [96.0, 96.5, 96.2], [95.0, 95.5, 95.1]),
        "lenet_300_100", "mnist", "test_accuracy", step_schedule=False)}
    assert good == {"ticket_matches_dense": "holds", "reinit_falls_behind": "holds",
                    "random_mask_falls_behind": "holds", "ticket_learns_faster": "holds"}
    bad = {v.id: v.verdict for v in imp_claims.imp_claims(
        imp_rows([98.0, 98.2, 97.9], [95.0, 95.2, 94.9], [97.0, 97.1, 96.8], [97.5, 97.6, 97.3], iters=(3000, 5000)),
        "lenet_300_100", "mnist", "test_accuracy", step_schedule=False)}
    assert bad == {"ticket_matches_dense": "fails", "reinit_falls_behind": "fails",
                   "random_mask_falls_behind": "fails", "ticket_learns_faster": "fails"}
    noisy = {v.id: v.verdict for v in imp_claims.imp_claims(
        imp_rows([98.0, 98.2, 97.9], [99.0, 97.0, 98.0], [99.5, 96.0, 98.0], [98.0, 98.0, 98.5]),
        "lenet_300_100", "mnist", "test_accuracy", step_schedule=True)}
    assert noisy == {"ticket_matches_dense": "inconclusive", "reinit_falls_behind": "inconclusive",
                     "random_mask_falls_behind": "inconclusive"}  # no learns-faster claim on step schedules


def early_stop_rows(seeds, iters) -> list[RunRow]:
    """Synthetic early-stop seeds: rounds 0 (dense) and 1 (21%) only, no controls, kind EARLY_STOP_KIND."""
    return [RunRow.from_dict({"seed": seed, "kind": imp_claims.EARLY_STOP_KIND, "round": rnd, "percent_remaining": p,
             "test_accuracy": 10.0, "final_test_accuracy": 10.0, "early_stop_iteration": it})
            for seed, (dense_it, ticket_it) in zip(seeds, iters) for rnd, p, it in [(0, 100.0, dense_it),
                                                                                  (1, 21.0, ticket_it)]]


def test_learns_faster_pools_early_stop_seeds_and_nothing_else_reads_them() -> None:
    full = imp_rows([98.0, 98.2, 97.9], [98.3, 98.4, 98.2], [96.0, 96.5, 96.2], [95.0, 95.5, 95.1])
    extra = early_stop_rows([10, 11], [(5000, 1000), (5000, 2000)])
    alone = {v.id: v for v in imp_claims.imp_claims(full, "lenet_300_100", "mnist", "test_accuracy", False)}
    pooled = {v.id: v for v in imp_claims.imp_claims(full + extra, "lenet_300_100", "mnist", "test_accuracy", False)}
    fast = pooled["ticket_learns_faster"]
    assert fast.seeds == 5 and alone["ticket_learns_faster"].seeds == 3  # paired per seed: dense 100% vs 21%
    assert sorted(fast.values.values()) == [2000, 2000, 2000, 3000, 4000]
    for cid in ("ticket_matches_dense", "reinit_falls_behind", "random_mask_falls_behind"):
        assert pooled[cid].to_dict() == alone[cid].to_dict()  # their 10% accuracies and missing controls unread
    assert imp_claims.learns_faster_level("lenet_300_100", "mnist") == 21.1
    assert imp_claims.learns_faster_level("conv2", "cifar10") == 8.8
    assert imp_claims.learns_faster_level("resnet20", "cifar10", 30.0) == 30.0  # no paper level: the default
    assert run_rows.at_level(full + extra, "ticket", 3.6, "test_accuracy") == run_rows.at_level(full, "ticket", 3.6,
                                                                                                "test_accuracy")


def test_other_readers_of_01s_rows_ignore_early_stop_seeds() -> None:
    """06 judges matching per round from 01-style rows: the early-stop seeds' rows change nothing."""
    from ticketlib.studies.deployment import claims as deployment_claims

    rows = imp_rows([98.0, 98.2], [98.3, 98.4], [96.0, 96.5], [95.0, 95.5])
    extra = early_stop_rows([10], [(5000, 1000)])
    with_extra = deployment_claims.matching_rounds(rows + extra, "test_accuracy")
    assert [v.to_dict() for v in with_extra] == [v.to_dict() for v in deployment_claims.matching_rounds(
        rows, "test_accuracy")]


def test_imp_claims_refuse_a_control_missing_at_the_judged_level() -> None:
    rows = [r for r in imp_rows([98.0, 98.2], [98.3, 98.4], [96.0, 96.5], [95.0, 95.5]) if r.kind != "reinit"]
    with pytest.raises(ValueError, match="no 'reinit' run at round 2"):
        imp_claims.imp_claims(rows, "lenet_300_100", "mnist", "test_accuracy", step_schedule=False)


def test_imp_params_that_cannot_be_judged_are_refused() -> None:
    base = {"model": "lenet_300_100", "dataset": "mnist", "seeds": [0, 1, 2], "control_levels": [3.6],
            "rounds": 15, "prune_fraction": 0.2}
    assert studies.check_params("01_imp", base) == []
    assert "control_levels" in studies.check_params("01_imp", {**base, "control_levels": [21.1]})[0]
    assert "rounds" in studies.check_params("01_imp", {**base, "rounds": 10})[0]
    assert "seeds" in studies.check_params("01_imp", {**base, "seeds": [0]})[0]
    conv = {**base, "model": "conv2", "dataset": "cifar10", "rounds": 20}
    assert "8.8" in studies.check_params("01_imp", conv)[0]  # Conv-2 is judged at its own level, not LeNet's


def test_why_explains_each_verdict() -> None:
    t = thresholds.direction_only("x")
    for values, word in [({0: 1.0, 1: 1.1}, "lies above"), ({0: -1.0, 1: 1.0}, "contains"),
                         ({0: -1.0, 1: -1.1}, "wrong side")]:
        assert word in engine.why(engine.judge("c", values=values, threshold=t, **TEXTS).to_dict())


def test_core_budget_follows_affinity_env_and_make_jobs(monkeypatch) -> None:
    import os

    from ticketlib.infra import cores

    allowed = len(os.sched_getaffinity(0))
    monkeypatch.delenv(cores.ENV, raising=False)
    assert cores.available() == allowed
    monkeypatch.setenv(cores.ENV, "1")
    assert cores.available() == 1 and cores.split(4) == (1, 1)
    monkeypatch.setenv(cores.ENV, "999")
    assert cores.available() == allowed  # never more than the affinity mask
    monkeypatch.setenv(cores.ENV, "two")
    with pytest.raises(ValueError, match=cores.ENV):
        cores.available()
    assert cores.make_jobs(" -j2 --jobserver-auth=3,4") == 2 and cores.make_jobs("") == 1
    assert cores.make_jobs("-j 3") == 3 and cores.make_jobs("-k") == 1
    monkeypatch.delenv(cores.ENV)
    monkeypatch.setenv("MAKEFLAGS", f" -j{allowed} --jobserver-auth=3,4")
    monkeypatch.setenv("OMP_NUM_THREADS", "")  # restored after the test
    cores.share_under_make()
    assert os.environ[cores.ENV] == "1" and os.environ["OMP_NUM_THREADS"] == "1"  # N parallel notebooks, 1 core each


def test_every_params_file_of_every_profile_can_be_judged() -> None:
    from pathlib import Path

    from ticketlib.runner import config

    for path in sorted(Path(__file__).resolve().parents[1].glob("params/*/*.yaml")):
        config.resolve(path)  # raises ParamError naming the problem


def test_side_of_zero() -> None:
    assert engine.side_of_zero(0.1, 2.0) == "above zero"
    assert engine.side_of_zero(-2.0, -0.1) == "below zero"
    assert engine.side_of_zero(-0.1, 0.1) == "not distinguishable from zero"
    assert engine.side_of_zero(0.0, 1.0) == "not distinguishable from zero"  # touching zero is not above it

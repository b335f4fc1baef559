"""The verdict machinery: intervals, the three outcomes, thresholds per setting, and each notebook's claims
on synthetic per-seed metrics (holding, failing, inconclusive; missing or NaN values raise)."""

import math

import pytest

from ticketlib import claims
from ticketlib.claims import Threshold


def test_student_t_interval_by_hand() -> None:
    mean, low, high = claims.interval([1.0, 2.0, 3.0])  # sd 1, n 3, t(0.975, 2) = 4.302653
    assert mean == 2.0
    assert (low, high) == pytest.approx((2 - 4.302653 / math.sqrt(3), 2 + 4.302653 / math.sqrt(3)), rel=1e-6)
    assert claims.interval([5.0], deterministic=True) == (5.0, 5.0, 5.0)
    assert claims.interval([5.0]) == (5.0, -math.inf, math.inf)  # one noisy value: nothing known
    assert claims.interval([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)  # no spread at all
    with pytest.raises(ValueError):
        claims.interval([])


@pytest.mark.parametrize("low, high, direction, expected", [
    (0.5, 1.0, ">", "holds"), (-1.0, 0.0, ">", "fails"), (-0.5, 0.5, ">", "inconclusive"), (0.0, 1.0, ">", "inconclusive"),
    (-1.0, -0.5, "<", "holds"), (0.0, 1.0, "<", "fails"), (-0.5, 0.5, "<", "inconclusive"),
])
def test_decide(low, high, direction, expected) -> None:
    assert claims.decide(low, high, 0.0, direction) == expected


def test_judge_three_outcomes_and_record_fields() -> None:
    t = Threshold(1.0, "a paper, Fig. 1")
    holds = claims.judge("c", "s", "p", {0: 2.0, 1: 2.1, 2: 1.9}, t, ">", "m")
    fails = claims.judge("c", "s", "p", {0: 0.0, 1: 0.1, 2: -0.1}, t, ">", "m")
    unsure = claims.judge("c", "s", "p", {0: 0.0, 1: 2.0, 2: 1.0}, t, ">", "m")
    assert (holds.verdict, fails.verdict, unsure.verdict) == ("holds", "fails", "inconclusive")
    body = holds.to_dict()
    assert body["holds"] is True and body["seeds"] == 3 and body["threshold"] == 1.0 and body["source"] == t.source
    assert body["estimate"] == pytest.approx(2.0) and body["interval"][0] > 1.0 and body["values"] == {"0": 2.0, "1": 2.1, "2": 1.9}
    assert fails.to_dict()["holds"] is False and unsure.to_dict()["holds"] is False


def test_missing_or_nan_values_raise_naming_the_claim_and_seed() -> None:
    t = claims.direction_only("x")
    with pytest.raises(ValueError, match=r"'gap'.*seed 2"):
        claims.judge("gap", "s", "p", {0: 1.0, 1: 1.0, 2: float("nan")}, t, ">", "m")
    with pytest.raises(ValueError, match=r"'gap'.*seed 1"):
        claims.judge("gap", "s", "p", {0: 1.0, 1: None}, t, ">", "m")
    with pytest.raises(ValueError, match="no values"):
        claims.judge("gap", "s", "p", {}, t, ">", "m")
    with pytest.raises(ValueError, match="different seeds"):
        claims.paired({0: 1.0, 1: 2.0}, {0: 1.0}, "gap")
    assert claims.paired({0: 3.0, 1: 2.0}, {0: 1.0, 1: 2.5}, "gap") == {0: 2.0, 1: -0.5}


def test_combine_parts() -> None:
    t = claims.direction_only("x")
    good = claims.judge("a", "s", "p", {0: 1.0, 1: 1.1}, t, ">", "m")
    bad = claims.judge("b", "s", "p", {0: -1.0, 1: -1.1}, t, ">", "m")
    unsure = claims.judge("c", "s", "p", {0: -1.0, 1: 1.0}, t, ">", "m")
    assert claims.combine([good, good], "x", "s", "p", "m").verdict == "holds"
    assert claims.combine([good, bad], "x", "s", "p", "m").verdict == "fails"
    assert claims.combine([good, unsure], "x", "s", "p", "m").verdict == "inconclusive"
    assert len(claims.combine([good, unsure], "x", "s", "p", "m").parts) == 2


def test_matching_threshold_is_minus_one_sd_of_the_reference() -> None:
    t = claims.matching_threshold({0: 97.0, 1: 98.0, 2: 99.0}, "c")
    assert t.value == pytest.approx(-1.0) and t.basis == "definition"
    with pytest.raises(ValueError, match="2 seeds"):
        claims.matching_threshold({0: 97.0}, "c")


def test_thresholds_are_per_setting_and_never_borrowed() -> None:
    assert claims.level_for("ticket_matches_dense", "lenet_300_100", "mnist", 99.0)[0] == 3.6
    assert claims.level_for("ticket_matches_dense", "conv2", "cifar10", 99.0)[0] == 8.8
    level, source = claims.level_for("ticket_matches_dense", "conv2", "fashion_mnist", 5.0)
    assert level == 5.0 and "ours" in source  # no LeNet or CIFAR number judges another setting
    t = claims.threshold_for("supermask", "lenet_300_100", "cifar10")
    assert t.value == 0.0 and t.basis == "direction"
    assert claims.threshold_for("supermask", "lenet_300_100", "mnist").value == 86.0
    for (claim, model, dataset), s in claims.SETTINGS.items():
        assert s.paper, f"{claim} on {model}/{dataset} names no source"
        assert s.threshold is None or s.threshold.source


def imp_rows(dense, ticket, reinit, random_mask, iters=(5000, 3000)) -> list[dict]:
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
    return rows


def test_imp_claims_hold_fail_and_stay_inconclusive() -> None:
    good = {v.id: v.verdict for v in claims.imp_claims(
        imp_rows([98.0, 98.2, 97.9], [98.3, 98.4, 98.2], [96.0, 96.5, 96.2], [95.0, 95.5, 95.1]),
        "lenet_300_100", "mnist", "test_accuracy", step_schedule=False)}
    assert good == {"ticket_matches_dense": "holds", "reinit_falls_behind": "holds",
                    "random_mask_falls_behind": "holds", "ticket_learns_faster": "holds"}
    bad = {v.id: v.verdict for v in claims.imp_claims(
        imp_rows([98.0, 98.2, 97.9], [95.0, 95.2, 94.9], [97.0, 97.1, 96.8], [97.5, 97.6, 97.3], iters=(3000, 5000)),
        "lenet_300_100", "mnist", "test_accuracy", step_schedule=False)}
    assert bad == {"ticket_matches_dense": "fails", "reinit_falls_behind": "fails",
                   "random_mask_falls_behind": "fails", "ticket_learns_faster": "fails"}
    noisy = {v.id: v.verdict for v in claims.imp_claims(
        imp_rows([98.0, 98.2, 97.9], [99.0, 97.0, 98.0], [99.5, 96.0, 98.0], [98.0, 98.0, 98.5]),
        "lenet_300_100", "mnist", "test_accuracy", step_schedule=True)}
    assert noisy == {"ticket_matches_dense": "inconclusive", "reinit_falls_behind": "inconclusive",
                     "random_mask_falls_behind": "inconclusive"}  # no learns-faster claim on step schedules


def test_imp_claims_refuse_a_control_missing_at_the_judged_level() -> None:
    rows = [r for r in imp_rows([98.0, 98.2], [98.3, 98.4], [96.0, 96.5], [95.0, 95.5]) if r["kind"] != "reinit"]
    with pytest.raises(ValueError, match="no 'reinit' run at round 2"):
        claims.imp_claims(rows, "lenet_300_100", "mnist", "test_accuracy", step_schedule=False)


def test_imp_params_that_cannot_be_judged_are_refused() -> None:
    base = {"model": "lenet_300_100", "dataset": "mnist", "seeds": [0, 1, 2], "control_levels": [3.6],
            "rounds": 15, "prune_fraction": 0.2}
    assert claims.check_params("01_imp", base) == []
    assert "control_levels" in claims.check_params("01_imp", {**base, "control_levels": [21.1]})[0]
    assert "rounds" in claims.check_params("01_imp", {**base, "rounds": 10})[0]
    assert "seeds" in claims.check_params("01_imp", {**base, "seeds": [0]})[0]
    conv = {**base, "model": "conv2", "dataset": "cifar10", "rounds": 20}
    assert "8.8" in claims.check_params("01_imp", conv)[0]  # Conv-2 is judged at its own level, not LeNet's


def test_why_explains_each_verdict() -> None:
    t = claims.direction_only("x")
    for values, word in [({0: 1.0, 1: 1.1}, "lies above"), ({0: -1.0, 1: 1.0}, "contains"),
                         ({0: -1.0, 1: -1.1}, "wrong side")]:
        assert word in claims.why(claims.judge("c", "s", "p", values, t, ">", "m").to_dict())


def test_core_budget_follows_affinity_env_and_make_jobs(monkeypatch) -> None:
    import os

    from ticketlib import cores

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

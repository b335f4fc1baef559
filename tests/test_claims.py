"""The verdict machinery: intervals, the three outcomes, thresholds per setting, and each notebook's claims
on synthetic per-seed metrics (holding, failing, inconclusive; missing or NaN values raise)."""

import math
from pathlib import Path

import pytest

pass  # (import moved)
from ticketlib import studies
from ticketlib.studies.anatomy import claims as anatomy_claims
from ticketlib.studies.bert_transfer import claims as bert_transfer_claims
from ticketlib.studies.conservation import claims as conservation_claims
from ticketlib.studies.early_tickets import claims as early_tickets_claims
from ticketlib.studies.imp import claims as imp_claims
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


def early_stop_rows(seeds, iters) -> list[dict]:
    """Synthetic early-stop seeds: rounds 0 (dense) and 1 (21%) only, no controls, kind EARLY_STOP_KIND."""
    return [{"seed": seed, "kind": imp_claims.EARLY_STOP_KIND, "round": rnd, "percent_remaining": p,
             "test_accuracy": 10.0, "final_test_accuracy": 10.0, "early_stop_iteration": it}
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
    assert engine.at_level(full + extra, "ticket", 3.6, "test_accuracy") == engine.at_level(full, "ticket", 3.6,
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
    rows = [r for r in imp_rows([98.0, 98.2], [98.3, 98.4], [96.0, 96.5], [95.0, 95.5]) if r["kind"] != "reinit"]
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


# --- 02: conservation, critical compression, collapse, trained accuracy ------------------------------------
def test_conservation_is_an_identity_check() -> None:
    held = conservation_claims.conservation_law({"SynFlow (cut)": 2e-16, "SNIP": 0.9, "magnitude": 0.99}, 0.0, "vgg16")
    broken = conservation_claims.conservation_law({"SynFlow (cut)": 0.3, "SNIP": 0.9, "magnitude": 0.99}, 0.0, "vgg16")
    assert (held.kind, held.verdict, broken.verdict) == ("identity", "holds", "fails")
    assert held.interval == (2e-16, 2e-16) and held.seeds == 1


def test_synflow_critical_compression_uses_the_papers_gap_for_vgg16_only() -> None:
    single = ["random", "magnitude", "snip", "grasp"]
    critical = {"random": 3.2, "magnitude": 2.4, "snip": 3.2, "grasp": 2.5, "synflow": 5.9}
    v = conservation_claims.synflow_max_critical_compression(critical, "synflow", single, 6.0, "vgg16", "mnist")
    assert v.threshold == 2.25 and v.threshold_basis == "paper" and v.verdict == "holds"
    # a search finer than the paper's 0.25 grid may put SNIP at 3.7 while SynFlow reaches 6.0: the paper's own gap
    # read off its grid, and the claim still holds (it would fail at the ungridded 2.5)
    finer = conservation_claims.synflow_max_critical_compression({**critical, "snip": 3.7, "synflow": 6.0}, "synflow", single, 6.0,
                                                    "vgg16", "mnist")
    assert finer.estimate == pytest.approx(2.3) and finer.verdict == "holds"
    assert conservation_claims.synflow_max_critical_compression({**critical, "snip": 3.8, "synflow": 6.0}, "synflow", single, 6.0,
                                                   "vgg16", "mnist").verdict == "fails"
    assert conservation_claims.synflow_max_critical_compression({**critical, "synflow": 5.0}, "synflow", single, 6.0,
                                                   "vgg16", "mnist").verdict == "fails"
    other = conservation_claims.synflow_max_critical_compression({**critical, "synflow": 5.0}, "synflow", single, 6.0,
                                                    "resnet20", "cifar10")
    assert other.threshold == 0.0 and other.threshold_basis == "direction" and other.verdict == "holds"


def test_iteration_avoids_collapse_compares_imps_deepest_living_round() -> None:
    versus = [{"round": r, "log_compression": c, "imp_collapsed": dead, "imp_empty_layers": int(dead)}
              for r, c, dead in [(0, 0.0, False), (1, 1.0, False), (2, 2.0, False), (3, 3.0, True)]]
    assert conservation_claims.iteration_avoids_collapse(versus, 1.5, "vgg16").verdict == "holds"
    assert conservation_claims.iteration_avoids_collapse(versus, 2.5, "vgg16").verdict == "fails"


def pai_rows(accuracies: dict[str, list[float]], compression: float = 2.5, control: str = "none") -> list[dict]:
    return [{"seed": s, "method": m, "log_compression": compression, "control": control, "test_accuracy": a}
            for m, values in accuracies.items() for s, a in enumerate(values)]


def test_synflow_wins_needs_a_margin_over_the_others_and_over_chance() -> None:
    wins = pai_rows({"synflow": [70, 72, 69], "snip": [30, 28, 31], "random": [10.3] * 3})
    assert conservation_claims.synflow_wins_at_high_compression(wins, 2.5, 11.35).verdict == "holds"
    tie_at_chance = pai_rows({"synflow": [11.35] * 3, "snip": [11.35] * 3, "random": [11.35] * 3})
    assert conservation_claims.synflow_wins_at_high_compression(tie_at_chance, 2.5, 11.35).verdict == "fails"
    loses = pai_rows({"synflow": [40, 41, 39], "snip": [60, 61, 62]})
    assert conservation_claims.synflow_wins_at_high_compression(loses, 2.5, 11.35).verdict == "fails"
    noisy = pai_rows({"synflow": [60, 40, 70], "snip": [50, 55, 52]})
    assert conservation_claims.synflow_wins_at_high_compression(noisy, 2.5, 11.35).verdict == "inconclusive"


def test_shuffle_does_not_hurt_is_one_sided() -> None:
    def rows(plain: list[float], shuffled: list[float]) -> list[dict]:
        return (pai_rows({"synflow": plain, "snip": plain}, 1.0)
                + pai_rows({"synflow": shuffled, "snip": shuffled}, 1.0, "shuffle"))

    better = conservation_claims.shuffle_does_not_hurt(rows([95.0, 95.2, 95.1], [96.5, 96.6, 96.4]), 1.0, ["synflow", "snip"])
    assert better.verdict == "holds"  # a shuffled mask that trains *better* does not hurt
    worse = conservation_claims.shuffle_does_not_hurt(rows([95.0, 95.2, 95.1], [92.0, 92.1, 92.3]), 1.0, ["synflow", "snip"])
    assert worse.verdict == "fails"
    unsure = conservation_claims.shuffle_does_not_hurt(rows([95.0, 95.2, 95.1], [95.5, 93.0, 94.9]), 1.0, ["synflow", "snip"])
    assert unsure.verdict == "inconclusive"


def test_conservation_params_refused_without_the_judged_runs() -> None:
    base = {"seeds": [0, 1, 2], "methods": ["random", "synflow"], "control_methods": ["synflow"],
            "controls": ["shuffle"]}
    assert studies.check_params("02_conservation", base) == []
    assert studies.check_params("02_conservation", {**base, "methods": ["random"]})
    assert studies.check_params("02_conservation", {**base, "controls": ["reinit"]})


# --- 03: BERT tickets ---------------------------------------------------------------------------------------
def bert_rows(full: list[float], imp: list[float], rand: list[float], weights: list[float], mlm_to_task: list[float],
              random_to_task: list[float], one_shot: list[float] | None = None) -> tuple[list[dict], list[dict]]:
    rows, transfer = [], []
    for s in range(len(full)):
        rows += [{"task": "rt", "kind": "imp", "seed": s, "round": 0, "sparsity": 0.0, "test_accuracy": full[s]},
                 {"task": "rt", "kind": "imp", "seed": s, "round": 5, "sparsity": 50.0, "test_accuracy": imp[s]},
                 {"task": "rt", "kind": "random_pruning", "seed": s, "round": 5, "sparsity": 50.0, "test_accuracy": rand[s]},
                 {"task": "rt", "kind": "random_weights", "seed": s, "round": 5, "sparsity": 50.0,
                  "test_accuracy": weights[s]}]
        if one_shot:
            rows.append({"task": "rt", "kind": "one_shot", "seed": s, "round": 5, "sparsity": 50.0,
                         "test_accuracy": one_shot[s]})
        transfer += [{"source": "rt", "target": "rt", "seed": s, "sparsity": 50.0, "test_accuracy": imp[s]},
                     {"source": "mlm", "target": "rt", "seed": s, "sparsity": 50.0, "test_accuracy": mlm_to_task[s]},
                     {"source": "random", "target": "rt", "seed": s, "sparsity": 50.0,
                      "test_accuracy": random_to_task[s]}]
    return rows, transfer


def test_bert_claims_hold_fail_and_stay_inconclusive() -> None:
    good = bert_transfer_claims.bert_claims(*bert_rows([78, 79, 78.5], [78.6, 79.4, 79.0], [62, 63, 61], [56, 55, 57],
                                         [78.4, 79.2, 78.8], [62, 63, 61]), "rt", 0.5, ["rt"])
    assert [v.verdict for v in good] == ["holds"] * 5
    bad = bert_transfer_claims.bert_claims(*bert_rows([78, 79, 78.5], [70, 71, 70.5], [75, 76, 75.5], [74, 75, 74.5],
                                        [60, 61, 60.5], [70, 71, 70.5]), "rt", 0.5, ["rt"])
    assert [v.verdict for v in bad] == ["fails"] * 5
    noisy = bert_transfer_claims.bert_claims(*bert_rows([78, 79, 78.5], [80, 75, 78], [79, 77, 70], [80, 70, 75],
                                          [84, 70, 78], [79, 76, 75]), "rt", 0.5, ["rt"])
    assert [v.verdict for v in noisy] == ["inconclusive"] * 5


def test_transfer_is_judged_against_the_targets_own_subnetwork_as_chen_state_it() -> None:
    # MLM transfer equal to the target's own 50% subnetwork, but that subnetwork 8 pp below the full model:
    # Chen et al.'s universal transfer holds, our stricter comparison with the full model fails
    full, own = [86, 87, 86.5], [78, 79, 78.5]
    verdicts = {v.id: v for v in bert_transfer_claims.bert_claims(*bert_rows(full, own, [60, 61, 60], [55, 56, 55],
                                                               [78.2, 78.9, 78.6], [60, 61, 60], [70, 71, 70]),
                                                    "rt", 0.5, ["rt"])}
    assert verdicts["transfer"].verdict == "holds"
    assert verdicts["transfer"].threshold == pytest.approx(-0.5)  # −1 SD over seeds of the target's own subnetwork
    assert verdicts["transfer_matches_full"].verdict == "fails"
    assert verdicts["transfer_matches_full"].paper.startswith("ours (stricter than the paper)")
    assert "shown, not judged: one-shot θ0 − own on rt -8.17 pp" in verdicts["transfer"].measured
    # MLM well below the target's own subnetwork fails Chen's test too
    worse = {v.id: v for v in bert_transfer_claims.bert_claims(*bert_rows(full, own, [60, 61, 60], [55, 56, 55], [70, 71, 70.5],
                                                            [60, 61, 60]), "rt", 0.5, ["rt"])}
    assert worse["transfer"].verdict == "fails" and "one-shot" not in worse["transfer"].measured


def test_bert_params_refused_without_the_judged_runs() -> None:
    base = {"seeds": [0, 1, 2], "mlm": True, "controls": ["random_pruning", "random_weights"],
            "claim_sparsity": 0.5, "control_sparsities": [0.5], "rounds": 5, "prune_fraction": 0.1}
    assert studies.check_params("03_bert_transfer", base) == []
    assert "mlm" in studies.check_params("03_bert_transfer", {**base, "mlm": False})[0]
    assert "controls" in studies.check_params("03_bert_transfer", {**base, "controls": ["one_shot"]})[0]
    assert "rounds" in studies.check_params("03_bert_transfer", {**base, "rounds": 3})[0]


# --- 04: early-bird tickets ---------------------------------------------------------------------------------
def eb_costs(standard: list[float], early: list[float], wall: list[float], flops: list[float],
             detected: int | None = 8) -> list[dict]:
    return [{"seed": s, "ratio": 0.5, "detected_epoch": detected, "standard_final_accuracy": standard[s] / 100,
             "early_final_accuracy": early[s] / 100, "standard_accuracy": standard[s] / 100,
             "early_accuracy": early[s] / 100, "standard_seconds": 100.0, "early_seconds": 100.0 * wall[s],
             "standard_flops": 1e12, "early_flops": 1e12 * flops[s]} for s in range(len(standard))]


def test_earlybird_claims_hold_fail_and_stay_inconclusive() -> None:
    latency_fast = {"dense": [10.0, 10.2, 9.9, 10.1], "pruned": [5.0, 5.1, 5.0, 4.9]}
    good = early_tickets_claims.earlybird_claims({0: {0.3: 7, 0.5: 9}, 1: {0.3: 6, 0.5: 10}, 2: {0.3: 8, 0.5: 8}}, 40,
                                   eb_costs([87, 87.5, 87.2], [87.4, 87.9, 87.6], [0.4, 0.42, 0.41], [0.3, 0.31, 0.3]),
                                   latency_fast, 0.4, 0.5, True, 0.5)
    assert [v.verdict for v in good] == ["holds"] * 4
    bad = early_tickets_claims.earlybird_claims({0: {0.5: 30}, 1: {0.5: None}, 2: {0.5: 35}}, 40,
                                  eb_costs([87, 87.5, 87.2], [80, 80.5, 80.2], [0.9, 0.92, 0.91], [0.8, 0.81, 0.8]),
                                  {"dense": latency_fast["pruned"], "pruned": latency_fast["dense"]}, 0.4, 0.5, True, 0.5)
    assert [v.verdict for v in bad] == ["fails"] * 4
    noisy = early_tickets_claims.earlybird_claims({0: {0.5: 5}, 1: {0.5: 30}, 2: {0.5: 10}}, 40,
                                    eb_costs([87, 87.5, 87.2], [89, 84, 87], [0.2, 0.9, 0.5], [0.2, 0.9, 0.5]),
                                    {"dense": [10.0, 10.0, 10.0], "pruned": [5.0, 20.0, 9.0]}, 0.4, 0.5, True, 0.5)
    assert [v.verdict for v in noisy] == ["inconclusive"] * 4


def test_earlybird_claims_without_tickets_are_not_judged_not_failed_silently() -> None:
    verdicts = early_tickets_claims.earlybird_claims({0: {0.5: None}, 1: {0.5: None}}, 40,
                                       eb_costs([87, 87.5], [float("nan")] * 2, [1, 1], [1, 1], detected=None),
                                       {"dense": [1.0, 1.0], "pruned": [0.5, 0.6]}, 0.4, 0.5, True, 0.5)
    by_id = {v.id: v for v in verdicts}
    assert by_id["early_emergence"].verdict == "fails"
    assert by_id["eb_ticket_matches"].verdict == "inconclusive" and "0 of 2 seeds" in by_id["eb_ticket_matches"].measured
    assert by_id["cost_saved"].seeds == 0


def test_cost_saved_refuses_wall_times_from_different_devices() -> None:
    costs = eb_costs([87, 87.5, 87.2], [87.4, 87.9, 87.6], [0.4, 0.42, 0.41], [0.3, 0.31, 0.3])
    costs[1]["devices"] = ["cpu (2 cores)", "cuda (NVIDIA H200)"]  # its standard pipeline ran on a GPU
    verdicts = early_tickets_claims.earlybird_claims({0: {0.5: 9}, 1: {0.5: 10}, 2: {0.5: 8}}, 40, costs,
                                       {"dense": [10.0, 10.2, 9.9], "pruned": [5.0, 5.1, 5.0]}, 0.4, 0.5, True, 0.5)
    cost = {v.id: v for v in verdicts}["cost_saved"]
    assert cost.verdict == "inconclusive" and cost.seeds == 0 and "different devices" in cost.measured


# --- 05: anatomy ---------------------------------------------------------------------------------------------
def anatomy_rows(crit: dict[str, list[float]], mask1: dict[str, list[float]], zero: list[float],
                 freeze: list[float]) -> list[dict]:
    rows = []
    for study, table in [("criterion", crit), ("mask1", mask1), ("mask0", {"zero": zero, "freeze": freeze})]:
        for kind, values in table.items():
            rows += [{"seed": s, "study": study, "kind": kind, "round": 15, "test_accuracy": a}
                     for s, a in enumerate(values)]
    return rows


def supermask_rows(test: list[float]) -> list[dict]:
    return [{"seed": s, "source": "one shot", "criterion": "large_final_same_sign", "weights": "signed_constant",
             "level": lv, "percent_remaining": p, "val_accuracy": va, "test_accuracy": ta}
            for s, a in enumerate(test) for lv, p, va, ta in [(10, 10.7, 50.0, 40.0), (15, 3.5, 90.0, a)]]


def test_anatomy_claims_hold_fail_and_stay_inconclusive() -> None:
    good = anatomy_claims.anatomy_claims(
        anatomy_rows({"large_final": [97.4, 97.5, 97.3], "magnitude_increase": [97.5, 97.4, 97.6],
                      "random": [95.7, 95.8, 95.6]},
                     {"rewind": [98.2, 98.1, 98.3], "signed_constant": [98.1, 98.2, 98.0],
                      "random_sign_constant": [97.2, 97.3, 97.1]}, [98.2, 98.1, 98.3], [97.6, 97.5, 97.7]),
        supermask_rows([94.0, 95.0, 94.5]), 15, 3.58, "lenet_300_100", "mnist")
    assert [v.verdict for v in good] == ["holds"] * 4
    assert "3.5%" in good[3].measured  # the density chosen on validation, not the best test accuracy
    bad = anatomy_claims.anatomy_claims(
        anatomy_rows({"large_final": [95.0, 95.1, 95.2], "magnitude_increase": [97.5, 97.4, 97.6],
                      "random": [96.7, 96.8, 96.6]},
                     {"rewind": [98.2, 98.1, 98.3], "signed_constant": [96.1, 96.2, 96.0],
                      "random_sign_constant": [97.2, 97.3, 97.1]}, [97.2, 97.1, 97.3], [97.6, 97.5, 97.7]),
        supermask_rows([70.0, 72.0, 71.0]), 15, 3.58, "lenet_300_100", "mnist")
    assert [v.verdict for v in bad] == ["fails"] * 4
    noisy = anatomy_claims.anatomy_claims(
        anatomy_rows({"large_final": [97.0, 95.0, 96.5], "magnitude_increase": [97.0, 95.5, 96.0],
                      "random": [96.0, 96.5, 95.8]},
                     {"rewind": [98.2, 98.1, 98.3], "signed_constant": [98.0, 96.0, 97.0],
                      "random_sign_constant": [97.0, 97.5, 96.8]}, [98.0, 97.0, 97.5], [97.5, 97.6, 97.2]),
        supermask_rows([95.0, 70.0, 88.0]), 15, 3.58, "lenet_300_100", "mnist")
    assert [v.verdict for v in noisy] == ["inconclusive"] * 4


def test_anatomy_claims_refuse_a_missing_training() -> None:
    rows = anatomy_rows({"large_final": [97.4, 97.5], "magnitude_increase": [97.5, 97.4]},
                        {"rewind": [98.2, 98.1], "signed_constant": [98.1, 98.2], "random_sign_constant": [97.2, 97.3]},
                        [98.2, 98.1], [97.6, 97.5])
    with pytest.raises(ValueError, match="kind': 'random'"):
        anatomy_claims.anatomy_claims(rows, supermask_rows([94.0, 95.0]), 15, 3.58, "lenet_300_100", "mnist")


def test_earlybird_and_anatomy_params_refused_without_the_judged_runs() -> None:
    eb = {"seeds": [0, 1, 2], "ratios": [0.3, 0.5, 0.7], "pipeline_ratios": [0.5], "latency_ratio_p": 0.5,
          "latency_repeats": 30}
    assert studies.check_params("04_early_tickets", eb) == []
    assert "pipeline_ratios" in studies.check_params("04_early_tickets", {**eb, "pipeline_ratios": [0.9]})[0]
    assert "latency_ratio_p" in studies.check_params("04_early_tickets", {**eb, "latency_ratio_p": 0.3})[0]
    assert "seeds" in studies.check_params("04_early_tickets", {**eb, "seeds": [0]})[0]
    anatomy = {"criteria_trained": ["large_final", "magnitude_increase", "random"],
               "mask1_actions": ["signed_constant", "random_sign_constant"],
               "supermask_criteria": ["large_final_same_sign"], "claim_level": 3.6, "criteria_levels": [3.6],
               "action_levels": [21.1, 3.6]}
    assert studies.check_params("05_anatomy", anatomy) == []
    assert "criteria_trained" in studies.check_params("05_anatomy", {**anatomy, "criteria_trained": ["random"]})[0]
    assert "action_levels" in studies.check_params("05_anatomy", {**anatomy, "action_levels": [21.1]})[0]
    assert "may only hold" in studies.check_params("05_anatomy", {**anatomy, "mask1_actions": ["signed_constant",
                                                                                          "random_sign_constant", "flip"]})[0]
    assert "imp_params" in studies.check_params("05_anatomy", {**anatomy, "imp_params": "params/cpu/02_conservation.yaml"})[0]


def test_anatomy_is_checked_against_the_01_run_it_reuses(tmp_path) -> None:
    from ticketlib.runner.config import ParamError, resolve

    root = Path(__file__).resolve().parents[1]
    folder = tmp_path / "params" / "cpu"
    folder.mkdir(parents=True)
    (folder / "01_imp.yaml").write_text("rounds: 15\nseeds: [0]\n")
    (folder / "05_anatomy.yaml").write_text(f"imp_params: {folder / '01_imp.yaml'}\nclaim_level: 3.6\n"
                                            "criteria_levels: [3.6]\naction_levels: [3.6]\n")
    with pytest.raises(ParamError, match=r"05_anatomy.yaml: 'imp_params' names a params file that does not resolve: "
                                         r".*01_imp.yaml: 'seeds' has 1"):
        resolve(folder / "05_anatomy.yaml", root / "notebooks")
    (folder / "01_imp.yaml").write_text("rounds: 15\nseeds: [0, 1]\n")
    assert resolve(folder / "05_anatomy.yaml", root / "notebooks")[1]["claim_level"] == 3.6
    (folder / "05_anatomy.yaml").write_text(f"imp_params: {folder / '01_imp.yaml'}\nclaim_level: 1.9\n"
                                            "criteria_levels: [1.9]\naction_levels: [1.9]\n")
    (folder / "01_imp.yaml").write_text("rounds: 15\nseeds: [0, 1]\ncontrol_levels: [3.6]\n")
    with pytest.raises(ParamError, match=r"'claim_level' 1.9 is past the 15 IMP rounds"):
        resolve(folder / "05_anatomy.yaml", root / "notebooks")


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

"""The contention rule (ticketlib.infra.contention) and the timing claims judged under it: synthetic windows show the
rule both ways (quiet: judged; busy on every attempt: inconclusive, "measured under load"; busy then quiet: judged
on the quiet attempt), a real CPU-bound child raises the measured share above the level, records carry the fields."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ticketlib.core import cost
from ticketlib.studies.deployment import study as deployment
from ticketlib.studies.deployment import claims as deployment_claims
from ticketlib.studies.early_tickets import claims as early_tickets_claims
from ticketlib.verdicts import engine
from ticketlib.infra import cache
from ticketlib.infra import contention
from ticketlib.studies.early_tickets import study as earlybird
from ticketlib.runner import report
from ticketlib.infra.contention import QUIET_CORES, Window

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import timing_under_load  # noqa: E402


def window(others_cores: float, wall: float = 1.0, own: float = 1.0, cores: int = 2) -> Window:
    """A synthetic window in which other processes used `others_cores` cores' worth beside our `own` seconds."""
    return Window(wall, own * wall, (own + others_cores) * wall, cores, 1.0)


QUIET, BUSY = window(0.05), window(1.0)


def test_window_states_and_pooling() -> None:
    assert QUIET.state == "quiet" and BUSY.state == "busy"
    assert window(QUIET_CORES).state == "quiet" and window(QUIET_CORES + 0.01).state == "busy"  # the level is quiet
    assert Window(1.0, 0.5, None, 2).state == "not measured"  # no counters
    assert window(1.0, wall=0.1).state == "not measured"  # too short for the 100 Hz tick counters
    pooled = QUIET + BUSY
    assert pooled.others_cores == pytest.approx(0.525) and pooled.others_share == pytest.approx(0.2625)
    assert contention.total([QUIET, QUIET]).state == "quiet"
    assert Window.from_dict(BUSY.to_dict()) == BUSY
    assert set(BUSY.to_dict()) >= {"wall", "own_cpu", "busy_cpu", "cores", "load", "others_cores", "others_share",
                                   "own_cores", "state"}
    assert "measured under load (other processes 50% of 2 core(s)" in contention.describe(BUSY)
    assert contention.describe(QUIET).startswith("machine quiet")
    assert contention.describe(None).startswith("contention not measured")
    assert contention.describe(Window(1.0, 0.5, None, 2)).startswith("contention not measured")


def test_summary_busy_wins_then_not_measured_then_quiet() -> None:
    assert contention.summary([QUIET, BUSY])["state"] == "busy"
    assert "measured under load" in contention.summary([QUIET, BUSY])["text"]
    assert contention.summary([QUIET, None])["state"] == "not measured"
    quiet = contention.summary([QUIET, QUIET])
    assert quiet["state"] == "quiet" and quiet["window"] == QUIET.to_dict()  # the same window counts once
    assert quiet["text"].startswith(contention.describe(QUIET)) and "at most 0.25 of one core" in quiet["text"]


def attempts_of(*windows: Window):
    """An attempt function returning, in turn, samples tagged by the attempt and the given window for form 'a'."""
    calls = iter(enumerate(windows))

    def attempt():
        i, w = next(calls)
        return {"a": [float(i)]}, {"a": w}, w
    return attempt


def test_retimed_keeps_the_first_quiet_attempt_and_bounds_the_attempts() -> None:
    samples, found = contention.retimed(attempts_of(QUIET, BUSY))
    assert (samples, found.kept, len(found.tried)) == ({"a": [0.0]}, 0, 1)  # quiet at once: one attempt
    samples, found = contention.retimed(attempts_of(BUSY, QUIET, BUSY))
    assert (samples, found.kept, len(found.tried)) == ({"a": [1.0]}, 1, 2)  # busy, then quiet: the quiet one
    samples, found = contention.retimed(attempts_of(BUSY, BUSY, BUSY, QUIET))
    assert (samples, found.kept, len(found.tried)) == ({"a": [2.0]}, 2, contention.ATTEMPTS)  # bounded: the last
    entry = found.record("a")
    assert entry["state"] == "busy" and entry["kept"] == 2 and len(entry["attempts"]) == 3 and "form" in entry


def latency_rows(load: Window | None, fast: bool = True) -> list[dict]:
    """06-style latency rows of the early-bird network, slim vs dense, at two batches, with a contention entry."""
    rows = []
    for batch in (1, 8):
        for form, base in (("dense", 10.0), ("slim", 5.0 if fast else 15.0)):
            row = {"model": "earlybird", "form": form, "ratio": 0.5, "batch": batch, "threads": 1,
                   "seconds": [base + 0.1 * i for i in range(6)]}
            if load is not None:
                row["contention"] = contention.Attempts({form: load}, [load], 0).record(form)
            rows.append(row)
    return rows


def test_quiet_timings_are_judged_and_say_so() -> None:
    v = deployment_claims.slim_latency_claim(latency_rows(QUIET), 0.5, [1, 8], 1)
    assert v.verdict == "holds" and "machine quiet" in v.measured and v.contention["state"] == "quiet"
    v = deployment_claims.slim_latency_claim(latency_rows(QUIET, fast=False), 0.5, [1, 8], 1)
    assert v.verdict == "fails"  # quiet and slower: a real failure


def test_busy_timings_are_inconclusive_measured_under_load() -> None:
    for fast in (True, False):  # neither a hold nor a failure survives a busy machine
        v = deployment_claims.slim_latency_claim(latency_rows(BUSY, fast), 0.5, [1, 8], 1)
        assert v.verdict == "inconclusive" and "measured under load (other processes 50% of 2 core(s)" in v.measured
        assert v.contention["state"] == "busy" and all(p["contention"]["state"] == "busy" for p in v.parts)
        assert v.to_dict()["contention"]["window"]["others_cores"] == pytest.approx(1.0)


def test_busy_then_quiet_on_retry_is_judged_on_the_quiet_attempt() -> None:
    def attempt_rows(load: Window, fast: bool):
        rows = latency_rows(None, fast)
        return rows, {f"{r['form']}{r['batch']}": load for r in rows}, load

    tries = iter([(BUSY, False), (QUIET, True)])
    rows, found = contention.retimed(lambda: attempt_rows(*next(tries)))
    for r in rows:
        r["contention"] = found.record(f"{r['form']}{r['batch']}")
    v = deployment_claims.slim_latency_claim(rows, 0.5, [1, 8], 1)
    assert found.kept == 1 and v.verdict == "holds" and "machine quiet" in v.measured


def test_unrecorded_contention_is_judged_as_before_and_labelled() -> None:
    v = deployment_claims.slim_latency_claim(latency_rows(None), 0.5, [1, 8], 1)
    assert v.verdict == "holds" and "contention not measured" in v.measured and v.contention["state"] == "not measured"
    fast = {"dense": [10.0, 10.2, 9.9, 10.1], "pruned": [5.0, 5.1, 5.0, 4.9]}
    old, = early_tickets_claims.earlybird_latency(fast, 0.5)
    assert old.verdict == "holds" and "contention not measured" in old.measured
    busy = {k: contention.Attempts({k: BUSY}, [BUSY], 0).record(k) for k in fast}
    loaded, = early_tickets_claims.earlybird_latency(fast, 0.5, busy)
    assert loaded.verdict == "inconclusive" and "measured under load" in loaded.measured


def cost_rows(load: dict | None) -> list[dict]:
    return [{"seed": s, "ratio": 0.5, "detected_epoch": 3, "standard_accuracy": 0.9, "early_accuracy": 0.9,
             "standard_final_accuracy": 0.9, "early_final_accuracy": 0.9, "early_seconds": 4.0 + 0.1 * s,
             "standard_seconds": 10.0, "early_flops": 4.0, "standard_flops": 10.0, "devices": ["cpu"],
             "contention": load} for s in range(3)]


def test_cost_saved_wall_half_follows_the_rule() -> None:
    judged = {v.id: v for v in early_tickets_claims._pipeline_claims(cost_rows(QUIET.to_dict()), 0.5, True)}
    assert judged["cost_saved"].verdict == "holds" and "wall times machine quiet" in judged["cost_saved"].measured
    judged = {v.id: v for v in early_tickets_claims._pipeline_claims(cost_rows(BUSY.to_dict()), 0.5, True)}
    assert judged["cost_saved"].verdict == "inconclusive"
    assert "wall times measured under load" in judged["cost_saved"].measured
    assert judged["eb_ticket_matches"].contention is None  # not a timing: no contention entry
    old = {v.id: v for v in early_tickets_claims._pipeline_claims(cost_rows(None), 0.5, True)}["cost_saved"]
    assert old.verdict == "holds" and "contention not measured" in old.measured


def test_a_cpu_bound_child_raises_the_others_share_above_the_level() -> None:
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # let it start spinning
        with contention.Monitor() as load:
            time.sleep(1.0)  # we use nothing: whatever is busy is someone else
    finally:
        hog.terminate()
        hog.wait()
    if load.window.state == "not measured":
        pytest.skip("no CPU counters on this platform")
    assert load.window.others_cores > QUIET_CORES and load.window.state == "busy"


def test_a_window_alone_has_every_field_in_range() -> None:
    with contention.Monitor() as load:
        sum(i * i for i in range(200_000))
    body = load.window.to_dict()
    assert body["wall"] > 0 and body["own_cpu"] >= 0 and body["cores"] >= 1 and body["state"] in contention.STATES
    if body["busy_cpu"] is not None:  # not asserted quiet: CI machines are noisy
        assert 0.0 <= body["others_share"] <= 1.5


def test_without_counters_nothing_is_measured(monkeypatch) -> None:
    monkeypatch.setattr(contention, "_busy_cpu", lambda: None)
    with contention.Monitor() as load:
        time.sleep(0.3)
    assert load.window.state == "not measured" and "contention not measured" in contention.describe(load.window)


def test_proc_stat_fallback(tmp_path) -> None:
    stat = tmp_path / "stat"
    stat.write_text("cpu  9 9 9 9 9 9 9 9 0 0\ncpu0 100 0 50 1000 7 0 0 10 0 0\ncpu1 200 0 0 1000 0 0 0 0 0 0\nintr 1\n")
    hz = contention.os.sysconf("SC_CLK_TCK")
    assert contention._proc_stat_busy(None, str(stat)) == pytest.approx(360 / hz)  # idle and iowait left out
    assert contention._proc_stat_busy([0], str(stat)) == pytest.approx(160 / hz)  # only the CPUs we may use
    assert contention._proc_stat_busy(None, str(tmp_path / "missing")) is None


def test_latency_timing_re_times_a_busy_machine_and_records_every_attempt(monkeypatch) -> None:
    forms = {"a": torch.nn.Linear(8, 4), "b": torch.nn.Linear(8, 2)}
    monkeypatch.setattr(contention.Window, "state", property(lambda self: "busy"))
    timed = cost.latency_timing(forms, torch.randn(3, 8), repeats=2, threads=1, min_seconds=0.0)
    assert len(timed.contention.tried) == contention.ATTEMPTS and timed.contention.kept == contention.ATTEMPTS - 1
    assert all(len(s) == 2 for s in timed.samples.values())
    rows, _ = deployment.time_forms([(forms_of(forms), torch.randn(3, 8))], [2], {1: 1}, repeats=2, min_seconds=0.0)
    assert all(len(r["contention"]["attempts"]) == contention.ATTEMPTS and "form" in r["contention"] for r in rows)


def forms_of(modules: dict) -> deployment.Forms:
    forms = deployment.Forms()
    for key, module in modules.items():
        forms.add(key, module, model="m", form=key, percent=100.0)
    return forms


def test_unit_metadata_records_contention_outside_the_key(tmp_path) -> None:
    store = cache.Cache(tmp_path)
    key = cache.unit_key("unit", seed=1)
    payload, meta = store.cached_meta(key, lambda: {"x": 1})
    assert payload == {"x": 1} and set(meta["contention"]) >= {"others_share", "state", "wall"}
    assert store.meta(key)["contention"] == meta["contention"] and store.path(key) == tmp_path / cache.config_hash(key)
    again, stored = store.cached_meta(key, lambda: pytest.fail("recomputed"))
    assert again == payload and stored["contention"] == meta["contention"]
    # an entry written before contention was recorded still loads, and reads as not measured
    old = cache.unit_key("unit", seed=2)
    store.put(old, {"x": 2}, {"device": "cpu", "seconds": 1.0})
    payload, meta = store.cached_meta(old, lambda: pytest.fail("recomputed"))
    assert payload == {"x": 2} and earlybird._with_contention(payload, meta)["contention"] is None
    assert earlybird._units_contention([{"contention": None}, {"contention": QUIET.to_dict()}]) is None
    assert Window.from_dict(earlybird._units_contention([{"contention": QUIET.to_dict()}] * 2)).state == "quiet"


def timing_record(load: Window | None) -> dict:
    v = deployment_claims.slim_latency_claim(latency_rows(load), 0.5, [1, 8], 1)
    return {"run": "06_deployment", "profile": "cpu", "device": "cpu", "claims": [report._plain(v.to_dict())]}


def test_scorecard_footer_and_index_show_each_timing_claim(tmp_path) -> None:
    records = [timing_record(BUSY)]
    old = timing_record(None)
    old["claims"][0].pop("contention")  # a record from before the rule
    old["run"] = "old_06"
    unjudged = {"run": "04_early_tickets", "profile": "cpu", "claims": [report._plain(
        engine.not_judged("cost_saved", "no early-bird ticket").to_dict())]}
    text = report.scorecard_markdown([*records, old, unjudged], "cpu", tmp_path)
    assert "- 04_early_tickets cost_saved: not judged — nothing was timed to judge" in text
    assert "Timing claims, whether the machine was quiet" in text
    assert "- 06_deployment slim_network_is_faster: busy — measured under load (other processes 50%" in text
    assert "- old_06 slim_network_is_faster: not measured — contention not recorded" in text
    page = report.scorecard_html(records, "cpu", tmp_path, tmp_path)
    assert "<h2>Timing claims</h2>" in page and "measured under load" in page


def test_timing_under_load_prints_two_records_side_by_side(tmp_path) -> None:
    alone, loaded = timing_record(QUIET), timing_record(BUSY)
    rows = timing_under_load.timing_rows(loaded)
    assert rows["slim_network_is_faster"]["state"] == "busy" and rows["slim_network_is_faster"]["others"] == 50
    table = timing_under_load.side_by_side(alone, loaded, ("alone", "loaded"))
    assert "| slim_network_is_faster | holds 0.512 [0.503, 0.521] (quiet, others 3%) | inconclusive 0.512" in table
    for name, body in (("a.json", alone), ("b.json", loaded)):
        (tmp_path / name).write_text(json.dumps(body))
    assert timing_under_load.main(["compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 0

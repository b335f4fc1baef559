"""Issue 21: every cited number names its passage, and the audit is data the notebooks show.

Every `paper=` string of a claim and every threshold source (the table in `thresholds`, the module constants in
`claims`, and those built inside the claim functions, collected by re-judging the published cpu records with the
current code) names a figure, a table, a section or says "unverified"; a number of our own says "ours", a claim
without a number says "no number".
"""

import importlib.util
import json
import re
from pathlib import Path

import nbformat
import pytest

from ticketlib.verdicts import audit, engine, thresholds
from ticketlib import studies
from ticketlib.verdicts.thresholds import Threshold, cites_passage, paper_is_labelled, source_is_labelled

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("rejudge", ROOT / "benchmarks" / "rejudge.py")
rejudge = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rejudge)
RECORDS = {p.stem: json.loads(p.read_text()) for p in sorted((ROOT / "results" / "cpu").glob("*.json"))}


def test_the_passage_test_can_fail() -> None:
    assert cites_passage("Frankle & Carbin 2019, Fig. 5") and cites_passage("Chen et al. 2020, Table 2")
    assert cites_passage("Tanaka et al. 2020, Sec. 5") and cites_passage("the network unverified")
    assert not cites_passage("Frankle & Carbin 2019") and not cites_passage("")
    assert not paper_is_labelled("You et al. 2020")
    assert not source_is_labelled("ours: a reason", "paper")  # only a number of our own may say "ours" instead
    assert source_is_labelled("ours: a reason", "ours") and source_is_labelled("no number in the paper", "direction")


def test_every_setting_names_its_passage() -> None:
    for key, found in thresholds.SETTINGS.items():
        assert cites_passage(found.paper), f"{key}: paper {found.paper!r} names no figure, table or section"
        if found.threshold is not None:
            assert cites_passage(found.threshold.source), f"{key}: threshold source {found.threshold.source!r}"
    _, fallback = thresholds.level_for("ticket_matches_dense", "vgg11", "cifar10", 5.0)
    assert paper_is_labelled(fallback) and "ours" in fallback


def test_every_module_threshold_is_labelled() -> None:
    modules = [engine] + [importlib.import_module(f"ticketlib.studies.{package}.claims")
                          for package, _ in studies.STUDIES.values()]
    constants = {name: t for module in modules for name, t in vars(module).items() if isinstance(t, Threshold)}
    assert {"CONSERVATION_TOLERANCE", "CHANCE_MARGIN", "SHUFFLE_TOLERANCE", "COMPACT_TARGET"} <= set(constants)
    for name, t in constants.items():
        assert source_is_labelled(t.source, t.basis), f"claims.{name}: {t.source!r}"


def _judged() -> list[tuple[str, dict]]:
    return [(run, v.to_dict()) for run, record in RECORDS.items() for v in rejudge.rejudge(record)]


@pytest.mark.parametrize("run", sorted(rejudge.REJUDGE))
def test_every_claim_built_by_the_claim_functions_names_its_passage(run: str) -> None:
    judged = [c for r, c in _judged() if r == run]
    assert judged, f"no published cpu record of {run}"
    for c in judged:
        assert paper_is_labelled(c["paper"]), f"{run}/{c['id']}: paper {c['paper']!r}"
        for part in c["parts"] or [c]:
            assert source_is_labelled(part["source"], part["threshold_basis"]), f"{run}/{c['id']}: {part['source']!r}"


def test_the_paper_profiles_sentiment_task_cites_chens_number() -> None:
    assert "60%" in thresholds.chen_matching_text("glue/sst2", "60% sparsity")
    assert "Table 2" in thresholds.chen_matching_text("glue/sst2", "60% sparsity")
    assert "ours" in thresholds.chen_matching_text("rotten_tomatoes", "50% sparsity")


def test_rejudging_the_published_records_reproduces_them() -> None:
    """The published records were judged by the current claim code (after the audit, with 07): re-judging them
    from their own metrics gives every claim back, with the same estimate, verdict and threshold."""
    assert set(RECORDS) == set(rejudge.REJUDGE)
    for run, record in RECORDS.items():
        again = {v.id: v for v in rejudge.rejudge(record)}
        assert set(again) == {c["id"] for c in record["claims"]}, run
        for c in record["claims"]:
            assert again[c["id"]].estimate == pytest.approx(c["estimate"], nan_ok=True), f"{run}/{c['id']}"
        for row in rejudge.compare(record):
            assert row["before"] == row["after"] and row["changed"] == "-", row
    claims = {(run, c["id"]): c for run, record in RECORDS.items() for c in record["claims"]}
    assert claims[("03_bert_transfer", "transfer_matches_full")]["threshold_basis"] == "ours"  # issue 21, item 1
    assert claims[("02_conservation", "synflow_max_critical_compression")]["threshold"] == 2.25  # item 4


def test_rejudging_shows_what_a_changed_claim_moved() -> None:
    """compare() reports a claim the record lacks as new, and a moved threshold as before → after."""
    record = json.loads(json.dumps(RECORDS["02_conservation"]))
    claim = next(c for c in record["claims"] if c["id"] == "synflow_max_critical_compression")
    claim["threshold"], claim["verdict"] = 2.5, "fails"
    record["claims"] = [c for c in record["claims"] if c["id"] != "shuffle_does_not_hurt"]
    rows = {r["claim"]: r for r in rejudge.compare(record)}
    assert rows["synflow_max_critical_compression"]["threshold"] == "2.5 → 2.25"
    assert rows["synflow_max_critical_compression"]["before"] == "fails" != rows["synflow_max_critical_compression"]["after"]
    assert rows["shuffle_does_not_hurt"]["before"] == "(new)"


def test_the_audit_names_real_claims_and_passages() -> None:
    judged = {(run, c["id"]) for run, c in _judged()}
    for change in audit.CHANGES:
        assert cites_passage(change.passage) or re.search(r"\w+/\w+, [\w/]+\.py", change.passage), change
        if not change.claim.startswith("recipe"):
            for cid in change.claim.split(", "):
                assert (change.notebook, cid.split(" (")[0]) in judged, f"audit names an unknown claim {cid!r}"
    assert {c.notebook for c in audit.CHANGES} == set(audit.NOTEBOOKS)
    assert audit.rows("03_bert_transfer")[0]["claim"] == "transfer"
    with pytest.raises(ValueError):
        audit.rows("07_nothing")


@pytest.mark.parametrize("notebook", audit.NOTEBOOKS)
def test_each_notebook_ends_by_showing_its_audit_rows(notebook: str) -> None:
    nb = nbformat.read(ROOT / "notebooks" / f"{notebook}.ipynb", as_version=4)
    assert nb.cells[-1].source == f'display(Markdown(audit.markdown("{notebook}")))'
    assert nb.cells[-2].cell_type == "markdown" and "audit" in nb.cells[-2].source

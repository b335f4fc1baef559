"""A profile published on two CPU paths (`make publish-path`): the other path beside the reference, a verdict per
path in the README, scorecard.md and index.html, and "provisional" exactly where a path of the same params
judged a claim otherwise."""
import json
from pathlib import Path

import pytest

from test_publish import base_provenance, do_publish, layout, readme_rows  # noqa: F401 (fixtures)
from ticketlib.runner import paths
from ticketlib.runner import publish
from ticketlib.runner import report
from ticketlib.runner.publish import PublishError


def set_path(root: Path, capability: str, verdicts: dict[tuple[str, int], str] | None = None,
             params: dict | None = None) -> None:
    """Rewrite runs/cpu's records as if run on `capability`, with some claims' verdicts (run, index) changed."""
    for path in sorted((root / "runs" / "cpu").glob("*.json")):
        record = json.loads(path.read_text())
        record["provenance"]["cpu"]["capability"] = capability
        for (run, index), verdict in (verdicts or {}).items():
            if record["run"] == run:
                record["claims"][index]["verdict"] = verdict
        if params is not None:
            record["params"] = params
        path.write_text(json.dumps(record))


def publish_path(root: Path) -> Path:
    return publish.publish_path("cpu", runs=root / "runs", results=root / "results", root=root,
                                readme=root / "README.md")


def test_path_label_names_one_capability_or_refuses() -> None:
    record = lambda run, cap: {"run": run, "provenance": {"cpu": {"capability": cap}}}  # noqa: E731
    assert paths.path_label([record("a", "AVX512"), record("b", "AVX512")]) == "avx512"
    with pytest.raises(paths.PathError, match="several CPU capabilities"):
        paths.path_label([record("a", "AVX2"), record("b", "AVX512")])
    with pytest.raises(paths.PathError, match="no CPU capability recorded for b"):
        paths.path_label([record("a", "AVX2"), {"run": "b"}])


def test_a_second_path_is_published_beside_and_marks_exactly_the_claims_that_moved(layout) -> None:  # noqa: F811
    set_path(layout, "AVX2")
    do_publish(layout)
    before = (layout / "README.md").read_text()
    assert report.OTHER_PATHS not in before  # one path: the table is as it always was
    set_path(layout, "AVX512", {("01_imp", 1): "holds"})  # 01's second claim: inconclusive on AVX2, holds here
    target = publish_path(layout)
    assert target == layout / "results" / "cpu" / "paths" / "avx512"
    assert sorted(p.name for p in target.glob("*.json")) == ["01_imp.json", "02_conservation.json"]
    assert (target / "01_imp.html").exists()
    readme = (layout / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| [")]
    moved = [r for r in rows if "01_imp_claim1" in r]
    assert len(moved) == 1 and "provisional — AVX512: holds" in moved[0] and "| inconclusive |" in moved[0]
    assert sum("provisional" in r for r in rows) == 1
    assert all("AVX512: " in r for r in rows) and "CPU path AVX2" in readme
    assert [v for _, _, v in readme_rows(layout / "README.md")] == ["holds", "inconclusive"] * 2  # verdicts: the reference's
    scorecard = (layout / "results" / "cpu" / "scorecard.md").read_text()
    assert "AVX512 (results/<profile>/paths/avx512/): 3 of 4 comparable verdicts agree; 1 provisional" in scorecard
    assert "provisional — AVX512: holds" in (layout / "results" / "cpu" / "index.html").read_text()

    set_path(layout, "AVX2", {("01_imp", 1): "inconclusive"})  # the reference re-published: the other path stays
    do_publish(layout)
    assert (layout / "results" / "cpu" / "paths" / "avx512" / "01_imp.json").exists()
    assert "provisional — AVX512: holds" in (layout / "README.md").read_text()


def test_another_paths_run_of_other_params_is_shown_but_not_compared(layout) -> None:  # noqa: F811
    set_path(layout, "AVX2")
    do_publish(layout)
    set_path(layout, "AVX512", {("01_imp", 0): "fails"}, params={"seeds": [0, 1, 2, 3]})
    publish_path(layout)
    readme = (layout / "README.md").read_text()
    assert "provisional" not in readme and "AVX512: other params (not compared)" in readme
    assert "0 of 0 comparable verdicts agree" in (layout / "results" / "cpu" / "scorecard.md").read_text()


def test_publish_path_refuses_the_reference_path_and_an_empty_reference(layout) -> None:  # noqa: F811
    set_path(layout, "AVX2")
    with pytest.raises(PublishError, match="publish the reference path first"):
        publish_path(layout)
    do_publish(layout)
    with pytest.raises(PublishError, match=r"\(AVX2\) is the reference's"):
        publish_path(layout)
    assert not (layout / "results" / "cpu" / "paths").exists()

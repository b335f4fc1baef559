"""ticketlib.runner.compare: two run folders compared claim by claim, CPU paths stated; the `compare` command."""

import json
from pathlib import Path

from ticketlib.runner import compare
from ticketlib.runner.run import main


def record(capability: str, verdicts: dict[str, str], run: str = "01_imp") -> dict:
    return {"run": run, "seconds": 10.0,
            "provenance": {"threads": 2, "cpu": {"model": "x", "capability": capability, "onednn_max_isa": capability}},
            "claims": [{"id": k, "verdict": v, "estimate": 1.0, "interval": [0.5, 1.5]} for k, v in verdicts.items()]}


def write(folder: Path, *records: dict) -> Path:
    folder.mkdir()
    for rec in records:
        (folder / f"{rec['run']}.json").write_text(json.dumps(rec))
    return folder


def test_same_verdicts_on_two_capabilities_are_reported_as_such(tmp_path) -> None:
    a = compare.load_records(write(tmp_path / "a", record("AVX2", {"c1": "holds", "c2": "fails"})))
    b = compare.load_records(write(tmp_path / "b", record("AVX512", {"c1": "holds", "c2": "fails"})))
    lines, differ = compare.table(a, b, ("a", "b"))
    assert any("different CPU capabilities (AVX2: 01_imp; AVX512: 01_imp)" in line for line in lines)
    assert (differ, lines[-1]) == (0, "0 of 2 verdicts differ")


def test_a_flipped_verdict_is_counted_and_marked(tmp_path) -> None:
    a = compare.load_records(write(tmp_path / "a", record("AVX2", {"c1": "holds", "c2": "fails"})))
    b = compare.load_records(write(tmp_path / "b", record("AVX2", {"c1": "inconclusive", "c2": "fails"})))
    lines, differ = compare.table(a, b, ("a", "b"))
    assert not any("different CPU capabilities" in line for line in lines)
    assert any(line.startswith("| c1 |") and line.endswith("**no** |") for line in lines)
    assert (differ, lines[-1]) == (1, "1 of 2 verdicts differ")


def test_a_claim_missing_on_the_second_side_counts_as_differing(tmp_path) -> None:
    a = compare.load_records(write(tmp_path / "a", record("AVX2", {"c1": "holds", "c2": "fails"})))
    b = compare.load_records(write(tmp_path / "b", record("AVX2", {"c1": "holds"})))
    lines, differ = compare.table(a, b, ("a", "b"))
    assert any(line.startswith("| c2 |") and "(missing)" in line for line in lines)
    assert (differ, lines[-1]) == (1, "1 of 2 verdicts differ")


def test_summary_counts_agreement_names_each_difference_and_both_cpu_paths(tmp_path) -> None:
    mine = compare.load_records(write(tmp_path / "a", record("AVX512", {"c1": "holds", "c2": "fails", "c3": "holds"}),
                                      record("AVX512", {"d1": "holds"}, run="02_conservation")))
    published = compare.load_records(write(tmp_path / "b", record("AVX2", {"c1": "inconclusive", "c2": "fails"})))
    lines = compare.summary(mine, published, ("yours", "published"))
    assert lines[0] == "1 of 3 verdicts agree with published"
    assert lines[1] == "- yours: x, ATen AVX512, oneDNN AVX512" and lines[2] == "- published: x, ATen AVX2, oneDNN AVX2"
    assert "  01_imp c1: yours holds 1 [0.5, 1.5], published inconclusive 1 [0.5, 1.5]" in lines
    assert "  01_imp c3: yours holds 1 [0.5, 1.5], published missing" in lines
    assert any("the CPU paths differ" in line for line in lines)
    assert lines[-1] == "- runs on one side only (not compared): 02_conservation"


def test_summary_of_identical_runs_says_all_agree_and_blames_nothing(tmp_path) -> None:
    a = compare.load_records(write(tmp_path / "a", record("AVX2", {"c1": "holds"})))
    lines = compare.summary(a, a, ("yours", "published"))
    assert lines == ["1 of 1 verdicts agree with published", "- yours: x, ATen AVX2, oneDNN AVX2",
                     "- published: x, ATen AVX2, oneDNN AVX2"]


def test_mixed_cpu_paths_in_one_folder_are_named_per_run(tmp_path) -> None:
    a = compare.load_records(write(tmp_path / "a", record("AVX2", {"c1": "holds"}),
                                   record("AVX512", {"c1": "holds"}, run="02_conservation")))
    assert compare.paths_text(a) == "x, ATen AVX2, oneDNN AVX2 (01_imp); x, ATen AVX512, oneDNN AVX512 (02_conservation)"
    assert compare.cpu_path({"run": "r"}) == "CPU path not recorded"


def test_compare_command_prints_the_summary_and_refuses_an_empty_folder(tmp_path, capsys) -> None:
    a = write(tmp_path / "a", record("AVX2", {"c1": "holds"}))
    b = write(tmp_path / "b", record("AVX2", {"c1": "fails"}))
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"0 of 1 verdicts agree with {b}") and "01_imp c1: yours holds" in out
    assert main(["compare", str(a), str(b), "--table"]) == 0
    assert capsys.readouterr().out.strip().endswith("1 of 1 verdicts differ")
    (tmp_path / "empty").mkdir()
    assert main(["compare", str(a), str(tmp_path / "empty")]) == 2
    assert "no run records" in capsys.readouterr().err

"""benchmarks/cpu_verdicts.py: two run folders compared claim by claim, capabilities stated."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("cpu_verdicts", ROOT / "benchmarks" / "cpu_verdicts.py")
cpu_verdicts = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cpu_verdicts)


def record(capability: str, verdicts: dict[str, str]) -> dict:
    return {"run": "01_imp", "seconds": 10.0,
            "provenance": {"threads": 2, "cpu": {"model": "x", "capability": capability, "onednn_max_isa": capability}},
            "claims": [{"id": k, "verdict": v, "estimate": 1.0, "interval": [0.5, 1.5]} for k, v in verdicts.items()]}


def write(folder: Path, rec: dict) -> Path:
    folder.mkdir()
    (folder / "01_imp.json").write_text(json.dumps(rec))
    return folder


def test_same_verdicts_on_two_capabilities_are_reported_as_such(tmp_path) -> None:
    a = cpu_verdicts.load_records(write(tmp_path / "a", record("AVX2", {"c1": "holds", "c2": "fails"})), None)
    b = cpu_verdicts.load_records(write(tmp_path / "b", record("AVX512", {"c1": "holds", "c2": "fails"})), None)
    lines, differ = cpu_verdicts.compare(a, b, ("a", "b"))
    assert any("different CPU capabilities (AVX2: 01_imp; AVX512: 01_imp)" in line for line in lines)
    assert (differ, lines[-1]) == (0, "0 of 2 verdicts differ")


def test_a_flipped_verdict_is_counted_and_marked(tmp_path) -> None:
    a = cpu_verdicts.load_records(write(tmp_path / "a", record("AVX2", {"c1": "holds", "c2": "fails"})), None)
    b = cpu_verdicts.load_records(write(tmp_path / "b", record("AVX2", {"c1": "inconclusive", "c2": "fails"})), None)
    lines, differ = cpu_verdicts.compare(a, b, ("a", "b"))
    assert not any("different CPU capabilities" in line for line in lines)
    assert any(line.startswith("| c1 |") and line.endswith("**no** |") for line in lines)
    assert (differ, lines[-1]) == (1, "1 of 2 verdicts differ")


def test_a_claim_missing_on_the_second_side_counts_as_differing(tmp_path) -> None:
    a = cpu_verdicts.load_records(write(tmp_path / "a", record("AVX2", {"c1": "holds", "c2": "fails"})), None)
    b = cpu_verdicts.load_records(write(tmp_path / "b", record("AVX2", {"c1": "holds"})), None)
    lines, differ = cpu_verdicts.compare(a, b, ("a", "b"))
    assert any(line.startswith("| c2 |") and "(missing)" in line for line in lines)
    assert (differ, lines[-1]) == (1, "1 of 2 verdicts differ")

"""ticketlib.infra.progress: units report to the runner's events file (in process and from spawned workers), the line
it shows (counts, cache hits, elapsed, an ETA from the units' own timings), and the record's `units`."""
import io
import json
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import torch

from ticketlib.infra import progress
from ticketlib.infra.cache import Cache


def test_no_runner_no_events_file(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(progress.ENV, raising=False)
    Cache(tmp_path / "cache").cached({"unit": "u"}, lambda: torch.zeros(1))
    assert list(tmp_path.iterdir()) == [tmp_path / "cache"]


def test_cached_units_report_hits_and_computed_seconds(tmp_path, monkeypatch) -> None:
    events = tmp_path / "events.jsonl"
    monkeypatch.setenv(progress.ENV, str(events))
    cache = Cache(tmp_path / "cache")
    cache.cached({"unit": "a"}, lambda: (time.sleep(0.05), torch.zeros(1))[1])
    cache.cached({"unit": "a"}, lambda: torch.ones(1))  # a hit
    Cache(None).cached({"unit": "b"}, lambda: torch.zeros(1))  # caching off: still a unit, computed
    units = progress.read_units(events)
    assert (units.done, units.hits, units.computed) == (3, 1, 2)
    assert units.computed_seconds >= 0.05
    assert units.as_record() == {"total": 3, "cached": 1, "computed_seconds": round(units.computed_seconds, 1)}


def _worker_unit(root: str, name: str) -> None:
    Cache(root).cached({"unit": name}, lambda: torch.zeros(2))


def test_spawned_workers_inherit_the_events_file(tmp_path, monkeypatch) -> None:
    events = tmp_path / "events.jsonl"
    monkeypatch.setenv(progress.ENV, str(events))
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        for future in [pool.submit(_worker_unit, str(tmp_path / "cache"), f"w{i}") for i in range(4)]:
            future.result()
    assert progress.read_units(events).done == 4


def test_a_torn_last_line_is_skipped_and_a_missing_file_is_empty(tmp_path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"hit": false, "seconds": 2.0}\n{"hit": true, "seconds": 0.0}\n{"hit": fal')
    assert progress.read_units(events) == progress.Units(done=2, hits=1, computed_seconds=2.0)
    assert progress.read_units(tmp_path / "absent") == progress.Units()


def test_eta_is_remaining_units_times_the_mean_computed_unit() -> None:
    units = progress.Units(done=10, hits=4, computed_seconds=60.0)  # 6 computed, 10 s each
    assert progress.seconds_left(units, total=25) == 150.0
    assert progress.seconds_left(units, total=None) is None
    assert progress.seconds_left(progress.Units(done=3, hits=3), total=10) is None  # no timing yet
    assert progress.seconds_left(units, total=8) == 0.0  # more units than the previous run: never negative
    assert progress.status_line("01_imp", units, 271, 25) == "01_imp: 10/25 units (4 cached), 4:31 elapsed, ~2:30 left"
    assert progress.status_line("01_imp", units, 3725, None) == "01_imp: 10 units (4 cached), 1:02:05 elapsed"


def test_expected_units_come_from_the_first_record_of_the_same_params(tmp_path) -> None:
    old, new, other = tmp_path / "old.json", tmp_path / "new.json", tmp_path / "other.json"
    old.write_text(json.dumps({"run": "01_imp", "seconds": 5.0, "params": {"seeds": [0, 1]}}))  # before units were counted
    new.write_text(json.dumps({"params": {"seeds": [0, 1]}, "units": {"total": 41, "cached": 0, "computed_seconds": 5.0}}))
    other.write_text(json.dumps({"params": {"seeds": [0, 1, 2]}, "units": {"total": 60}}))
    assert progress.expected_units({"seeds": [0, 1]}, tmp_path / "absent.json", old, other, new) == 41
    assert progress.expected_units({"seeds": [0, 1, 2]}, new, other) == 60
    assert progress.expected_units({"seeds": [0]}, new, other) is None  # no record ran these params: no guess
    assert progress.expected_units(None, other, new) == 60
    assert progress.expected_units({"seeds": [0, 1]}, old) is None


def test_monitor_prints_plain_lines_off_a_terminal_and_cleans_up(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(progress.ENV, raising=False)
    stream = io.StringIO()
    with progress.Monitor("01_imp", tmp_path / "e.jsonl", total=4, stream=stream, every=0.0, poll=0.02) as monitor:
        assert progress.ENV in __import__("os").environ
        Cache(None).cached({"unit": "a"}, lambda: (time.sleep(0.05), torch.zeros(1))[1])
        time.sleep(0.2)
    lines = stream.getvalue().splitlines()
    assert lines and all(line.startswith("01_imp: ") and " units (0 cached), " in line for line in lines)
    assert any(line.startswith("01_imp: 1/4 units (0 cached)") and line.endswith("left") for line in lines)
    assert monitor.units().done == 1 and progress.ENV not in __import__("os").environ


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_monitor_draws_a_tqdm_bar_in_a_terminal(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(progress.ENV, raising=False)
    stream = _Terminal()
    with progress.Monitor("01_imp", tmp_path / "e.jsonl", total=4, stream=stream, every=0.0, poll=0.02):
        Cache(None).cached({"unit": "a"}, lambda: (time.sleep(0.05), torch.zeros(1))[1])
        time.sleep(0.2)
    drawn = stream.getvalue()
    assert "01_imp: 1/4 units" in drawn and "0 cached" in drawn and "left" in drawn
    assert "\n01_imp: " not in drawn  # one live line redrawn in place (carriage returns), not a line per update

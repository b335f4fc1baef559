"""Do the verdicts survive the machine? Compare two run folders of one profile, claim by claim.

Runs of the same params on two CPU paths (say the default path and `ATEN_CPU_CAPABILITY=avx2
ONEDNN_MAX_CPU_ISA=AVX2`, or two machines) differ in the last digits. This prints, per run, the scorecard's own
run notes for both records (wall time, ATen capability, oneDNN ISA, threads, and a warning when the
capabilities differ), then every claim's verdict, estimate and interval on both sides, marking the
verdicts that differ (`ticketlib.runner.compare.table`, the same comparison `make reproduce` ends with). Exit status 1
when a verdict differs (or is missing on the second side), 0 otherwise.

    .venv/bin/python benchmarks/cpu_verdicts.py runs/cpu /path/to/other/runs/cpu [--runs 01_imp 02_conservation]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ticketlib.runner.compare import load_records, table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--runs", nargs="*", help="run names to compare (default: every run on both sides)")
    args = parser.parse_args()
    try:
        a, b = load_records(args.first, args.runs), load_records(args.second, args.runs)
    except FileNotFoundError as error:
        raise SystemExit(f"error: {error}") from None
    lines, differ = table(a, b, (str(args.first), str(args.second)))
    print("\n".join(lines))
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env bash
# The GPU check, under 10 minutes on one GPU: every smoke notebook on device: cuda against its CPU record
# (tests/test_cuda.py, with per-notebook wall times), then the steps/s of two paper-profile units and what
# the paper profile costs in GPU-hours. Run it from the repository root after `make setup`; exit status 1
# when a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
$PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU visible to torch')"
start=$(date +%s)
status=0
$PY -m pytest -q -s -m cuda tests/test_cuda.py || status=$?
$PY benchmarks/gpu_units.py || status=$?
echo "gpu_check: $(( $(date +%s) - start )) s in all; exit status $status"
exit $status

#!/usr/bin/env bash
# The GPU go/no-go, under 10 minutes on one GPU; exit status 1 when any check fails. From the repository root after
# `make setup` (with the paper extra: datasets): (1) every paper params file validates; (2) every paper file runs
# truncated on CUDA (ticketlib.runner.truncate: the paper's models and recipes on fixtures in the real formats, BERT
# bert-base-shaped at the profile's precision, bf16 where native); (3) one CNN unit and one BERT unit computed
# twice are bit-identical; (4) each paper file's GPU-hours from its own params at the steps/s measured here;
# (5) the smoke notebooks on CUDA against their CPU records (tests/test_cuda.py).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
$PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU visible to torch')" || exit 1
WORK=${WORK:-$(mktemp -d)}
start=$(date +%s)
status=0
step() { local t=$(date +%s); echo "== $1"; shift; "$@" || { status=1; echo "FAILED: $*"; }; echo "   ($(( $(date +%s) - t )) s)"; }
step "validate" $PY -m ticketlib validate params/paper/*.yaml
step "fixtures (bert-base shape)" $PY -c "import sys; from ticketlib import fixtures; fixtures.build(sys.argv[1], fixtures.BERT_BASE)" "$WORK/fixtures"
for params in params/paper/*.yaml; do
  step "truncated $(basename "$params" .yaml)" $PY -m ticketlib run --truncate "$WORK/fixtures" --out "$WORK/runs" "$params"
done
step "a unit twice, bit for bit" $PY benchmarks/gpu_repeat.py "$WORK/fixtures"
step "GPU-hours per paper file" $PY benchmarks/gpu_units.py
step "smoke notebooks on CUDA" $PY -m pytest -q -s -m cuda tests/test_cuda.py
echo "gpu_check: $(( $(date +%s) - start )) s in all; exit status $status"
exit $status

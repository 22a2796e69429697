# rvcloud: `make demo` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
SHARED ?= $(abspath ../shared/data/mrt)
export RVCLOUD_SHARED_MRT := $(SHARED)

.PHONY: venv tools emulators proto test lint demo dev-cloud bench fuzz clean deploy-check

venv: $(VENV)/.stamp
$(VENV)/.stamp: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# Debian tools the tests use as oracles (bgpdump), for parallel bzip2, and nginx (the
# load balancer of tests/e2e/test_cluster.py; the tests run it themselves, no service).
tools:
	@command -v bgpdump >/dev/null && command -v lbzip2 >/dev/null && test -x /usr/sbin/nginx || { \
	  (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bgpdump lbzip2 nginx >/dev/null; }

# Local emulators of GCS, Pub/Sub, Datastore and BigQuery (PyPI + the Google Cloud CLI).
emulators:
	bash deploy/emulators/install.sh

# Regenerate the gRPC code from proto/ (a test fails when the committed code is stale).
proto: venv
	$(BIN)/python -m grpc_tools.protoc -I proto --python_out=proto --pyi_out=proto \
	  --grpc_python_out=proto proto/rvcloud/v1/gateway.proto

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy -p rvcloud

test: venv tools emulators
	$(BIN)/python -m pytest -q

# Offline validation of deploy/ (Dockerfiles, Cloud Run, Kubernetes, Terraform; part of
# `make test` too): hadolint, kubernetes-validate, checkov, HashiCorp's HCL parser and
# formatter, and drift checks against the code. What it cannot run: deploy/README.md.
deploy-check: venv
	PY=$(abspath $(BIN)/python) bash tests/deploy/install_tools.sh
	$(BIN)/python -m pytest -q tests/deploy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

# The whole cloud topology on this machine: the four emulators, the resources, and the
# gateway, two converters and the loader as separate processes (Ctrl-C stops it).
dev-cloud: venv emulators
	BIN=$(BIN) bash deploy/emulators/dev-cloud.sh

# The main job on embedded backends, on real files (FILE=... FILENAME=... for your own).
demo: venv
	BIN=$(BIN) SHARED=$(SHARED) bash deploy/local/demo.sh

# Long coverage-guided fuzzing of the decoder (FUZZ_SECONDS per target, default 30 min).
fuzz: venv
	$(BIN)/python tests/fuzz/run.py --seconds $${FUZZ_SECONDS:-1800} --corpus .fuzz-corpus --crashes fuzz-crashes --save-regressions

# Side by side with bgpdump, pybgpkit-parser and mrtparse -> bench/RESULTS.md (BENCH_ARGS=... for
# bench/run.py). Peers go to a separate venv; synthetic inputs are made once (deterministic).
BENCH_OUT := bench/out
bench: venv
	@command -v bgpdump >/dev/null && command -v bzip2 >/dev/null && command -v lbzip2 >/dev/null || { \
	  (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bgpdump bzip2 lbzip2 >/dev/null; }
	@mkdir -p $(BENCH_OUT)
	@test -x $(BENCH_OUT)/peers-venv/bin/python || { $(PY) -m venv $(BENCH_OUT)/peers-venv && \
	  $(BENCH_OUT)/peers-venv/bin/pip install -q --only-binary :all: pybgpkit-parser mrtparse; }
	@test -f $(BENCH_OUT)/synth-rib.bz2 || { $(BIN)/python -m rvcloud.mrt.synth rib $(BENCH_OUT)/synth-rib.tmp.bz2 --seed 1 && \
	  mv $(BENCH_OUT)/synth-rib.tmp.bz2 $(BENCH_OUT)/synth-rib.bz2; }
	@test -f $(BENCH_OUT)/synth-updates.bz2 || { $(BIN)/python -m rvcloud.mrt.synth updates $(BENCH_OUT)/synth-updates.tmp.bz2 --seed 1 && \
	  mv $(BENCH_OUT)/synth-updates.tmp.bz2 $(BENCH_OUT)/synth-updates.bz2; }
	$(BIN)/python bench/run.py $(BENCH_ARGS)

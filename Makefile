# One-command entry points. Each target sets up .venv first (idempotent) and regenerates
# plan.yaml (the expanded stage lists) from runs.yaml before DVC reads it.
PY := .venv/bin/python
VENV_STAMP := .venv/.installed
# DVC runs stage commands through the shell as `python ...`: make that the venv's python.
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: setup plan test smoke stage repro gate fresh bench gpu-check pull compare

# Columns `make compare` hides: dependency hashes (files and folders), the date, the ARI means
# (they stay in summary.json, `dvc metrics show`)
EXP_HIDE := .*/.*|clusterbench|.*\.yaml|Created|.*\.ari

# Where `nvidia-smi -L` lists a GPU, faiss-gpu of the faiss-cpu pin's version replaces faiss-cpu
# (scripts/setup_deps.py writes that list to .venv/requirements-gpu.txt); elsewhere
# requirements.txt is installed as it is.
$(VENV_STAMP): requirements.txt pyproject.toml scripts/setup_deps.py
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	req=$$($(PY) scripts/setup_deps.py requirements.txt .venv/requirements-gpu.txt) && \
	if [ "$$req" != requirements.txt ]; then $(PY) -m pip uninstall -q -y faiss-cpu 2>/dev/null || true; fi && \
	$(PY) -m pip install -q -r "$$req"
	touch $(VENV_STAMP)

setup: $(VENV_STAMP)

plan: setup            ## plan.yaml from runs.yaml (validates params.yaml and runs.yaml)
	$(PY) -m clusterbench.plan

test: setup            ## the test suite (what CI runs)
	$(PY) -m pytest -q

# A run's seeds side by side, one process each (same results as one after another: test_runs);
# SMOKE_JOBS=1 runs them one after another.
SMOKE_JOBS ?= 2

smoke: plan            ## every stage on small real subsets, CPU, ~14 minutes on 2 busy cores (README)
	CLUSTERBENCH_JOBS=$(SMOKE_JOBS) $(PY) -m dvc repro tables@smoke lnscc-figures@smoke ghdcc-figures@smoke figures@smoke

# `dvc repro <stage>` straight after adding a run to runs.yaml: DVC reads the stage lists from
# plan.yaml before any of our code runs, so with a stale plan.yaml it says only "Stage ... not found".
stage: plan            ## one stage and what it needs, plan.yaml regenerated first: make stage S=train@<run>
	@test -n "$(S)" || { echo "make stage: name the stage, e.g. make stage S=train@lnscc-digits (dvc stage list names them)" >&2; exit 2; }
	$(PY) -m dvc repro $(S)

gate: setup            ## fail if a smoke metric fell below its committed expected value by more than its measured band
	$(PY) -m clusterbench.gate

fresh: setup           ## fail if a committed output was made by code or parameters that changed since
	$(PY) -m clusterbench.freshness

# The launcher (clusterbench.launch): prints the plan and its bill, then runs JOBS stages at once
# through submitit (EXECUTOR=local|slurm|debug, default params.yaml launcher.executor); ALL=1 keeps
# GPU-sized runs on a machine without a GPU; DRY_RUN=1 prints the plan only; TARGETS= limits it.
JOBS ?= 1
repro: plan            ## the plan and its bill, then every stage that can run, JOBS=N at once (downloads; GPU recommended), then a summary
	$(PY) -m clusterbench.launch --jobs $(JOBS) $(if $(EXECUTOR),--executor $(EXECUTOR)) $(if $(filter 1 yes true,$(ALL)),--all) $(if $(filter 1 yes true,$(DRY_RUN)),--dry-run) $(TARGETS)

bench: setup           ## kNN / graph / training speed and pipeline overhead against the obvious alternatives
	$(PY) benchmarks/bench.py

# DRY_RUN=1: the same checks on the CPU at tiny sizes (benchmarks/gpu-check-dry.json), for machines
# without a GPU and for the test suite; without it, a machine without a CUDA GPU stops with one line.
gpu-check: setup       ## one epoch each of CC at 224 px, ConstellationNet, LNSCC, Hi-LANDER and faiss kNN on this GPU, ~8 min (benchmarks/gpu-check.json)
	$(PY) benchmarks/gpu_check.py $(if $(filter 1 yes true,$(DRY_RUN)),--dry-run)

compare: setup         ## experiments side by side in a 120-column terminal, then what moved vs HEAD
	$(PY) -m dvc exp show --only-changed --no-pager --drop '$(EXP_HIDE)'
	$(PY) -m dvc metrics diff

pull: plan             ## fetch what the DVC remote holds; two lines on what it could not fetch and why
	$(PY) -m clusterbench.pull

# One-command entry points. Each target sets up .venv first (idempotent).
PY := .venv/bin/python
VENV_STAMP := .venv/.installed
# DVC runs stage commands through the shell as `python ...`: make that the venv's python.
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: setup test smoke repro gate bench clean-smoke

$(VENV_STAMP): requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $(VENV_STAMP)

setup: $(VENV_STAMP)

test: setup            ## the test suite (what CI runs)
	$(PY) -m pytest -q

smoke: setup           ## every stage on small real subsets, CPU, < 10 minutes
	$(PY) -m dvc repro tables@smoke lnscc-figures@smoke

gate: setup            ## fail if a smoke metric fell below its committed expected value
	$(PY) -m clusterbench.gate

repro: setup           ## the whole benchmark (downloads datasets and weights; GPU recommended)
	$(PY) -m dvc repro

bench: setup           ## kNN / graph / training speed against the obvious alternatives
	$(PY) benchmarks/bench.py

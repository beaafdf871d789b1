# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# Each creates .venv, installs the package with the extras it needs, and runs.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The CPU build of PyTorch; installed before anything that depends on torch, so pip does not
# pick a multi-GB CUDA build. Override on another machine, e.g. TORCH="torch --index-url ...".
TORCH  ?= torch==2.13.0
HYPOTHESIS_PROFILE ?= ci
PYTEST_WORKERS ?= 2

.PHONY: demo test lint bench bench-quick clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[dev,reference]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/python -m minitorch_cnn.tour
	$(BIN)/minitorch-cnn demo

test: $(VENV)/.installed
	HYPOTHESIS_PROFILE=$(HYPOTHESIS_PROFILE) $(BIN)/python -m pytest -n $(PYTEST_WORKERS) \
		--durations=15 -p no:cacheprovider tests

lint: $(VENV)/.installed
	$(BIN)/ruff check .

bench-quick: $(VENV)/.installed
	$(BIN)/python -m benchmarks.ops --quick

bench: $(VENV)/.installed
	$(BIN)/python -m benchmarks.ops

clean:
	rm -rf $(VENV) build *.egg-info .hypothesis runs

# Two commands do everything on a fresh machine:  `make run`  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test bench lint

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,dask]'
	touch $@

## run: a real NSGA-II mask search on the embedded default problem; results go to runs/quickstart
run: $(BIN)/.installed
	$(BIN)/masksearch run --out runs/quickstart --overwrite

## test: the whole test suite (fails when no test ran)
test: $(BIN)/.installed
	$(BIN)/pytest -q

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/run_all.py

lint: $(BIN)/.installed
	$(BIN)/ruff check .

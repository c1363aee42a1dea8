# Two commands on a fresh machine: `make run` (gateway + simulators + embedded store) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint cassettes bench simulate clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/gateway serve --demo

simulate: $(STAMP)
	$(BIN)/gateway simulate --port 8090

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 --record-mode=none --block-network --allowed-hosts=127.0.0.1,localhost,::1

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Re-record every provider's cassettes from the simulators (started in-process by the tests).
cassettes: $(STAMP)
	rm -rf cassettes/*/
	GATEWAY_RECORD=1 $(BIN)/python -m pytest tests/providers -k cassette --record-mode=all -p no:xdist

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info

# Two commands on a fresh machine: `make run` (gateway + simulators + embedded store) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint cassettes bench bench-replicas simulate clean chromium docs postgres

$(STAMP): pyproject.toml examples/azure_batch/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	$(BIN)/python -m pip install -q -e examples/azure_batch  # the example third-party plugin, beside the built-ins
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/gateway serve --demo

simulate: $(STAMP)
	$(BIN)/gateway simulate --port 8090

# PostgreSQL server binaries for the tests' private servers (never a system-wide server: none is started here).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
		echo "installing PostgreSQL (Debian package) for the tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }
	@command -v psql >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/psql >/dev/null 2>&1

# Debian's chromium for the dashboard's browser test (headless, driven by Playwright), where it is missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the dashboard browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: $(STAMP) postgres chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	GATEWAY_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -n 2 --record-mode=none --block-network --allowed-hosts=127.0.0.1,localhost,::1

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Re-record every provider's cassettes from the simulators (started in-process by the tests).
cassettes: $(STAMP)
	rm -rf cassettes/*/ examples/azure_batch/tests/cassettes
	GATEWAY_RECORD=1 $(BIN)/python -m pytest tests/providers examples/azure_batch/tests -k cassette \
		--record-mode=all -p no:xdist

# Rewrite the README's generated sections (the providers' mapping tables) from the code.
docs: $(STAMP)
	$(BIN)/python -c "import pathlib, gateway.cli as c; print('README.md', 'updated' if c.write_readme_sections(pathlib.Path('README.md')) else 'up to date')"

# Benchmarks (bench/run.py --help); the read benchmark needs Debian's wrk, installed here where missing (as root).
bench: $(STAMP) bench-replicas
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# 10,000 watched jobs on one replica, then on two sharing one PostgreSQL (a private server it starts itself)
bench-replicas: $(STAMP) postgres
	$(BIN)/python bench/replicas.py

clean:
	rm -rf $(VENV) build *.egg-info

# The README's commands. `make demo` and `make test` set everything up on a fresh machine.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup demo test lint typecheck pytest bench clean

$(BIN)/rollbook: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/rollbook

demo: setup
	$(BIN)/rollbook --db sqlite:///demo.db demo --serve

test: setup
	scripts/ensure-postgres
	scripts/ensure-sqlite3
	scripts/ensure-chromium
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

# The million-row benchmark (docs/benchmarks.md); options after BENCH=, e.g. BENCH='--runs 1'.
# PostgreSQL's server is installed only for a throwaway cluster: not with --no-postgres, nor
# for an operator's own server ($ROLLBOOK_BENCH_POSTGRES_URL).
bench: $(VENV)/.bench
	scripts/ensure-sqlite3
	case " $(BENCH) " in *" --no-postgres "*) ;; \
	  *) [ -n "$${ROLLBOOK_BENCH_POSTGRES_URL:-}" ] || scripts/ensure-postgres ;; esac
	$(BIN)/python benchmarks/import_1m.py $(BENCH)

$(VENV)/.bench: $(BIN)/rollbook
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $@

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest

clean:
	rm -rf $(VENV) demo.db demo.db-* .pytest_cache .mypy_cache .ruff_cache .hypothesis

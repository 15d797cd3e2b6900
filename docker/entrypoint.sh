#!/bin/sh
# Container entrypoint for every Gnomon service. Runs the given command (exec, so it gets the signals) after:
#  - waiting for PostgreSQL when GNOMON_WAIT_FOR_DB=1 (default; compose also orders start-up by health checks);
#  - `migrate` and `collectstatic` when GNOMON_MIGRATE_ON_START=1 (the web service only: one process migrates).
set -eu
cd "$(dirname "$0")/.."  # the project root (/app in the image)

if [ "${GNOMON_WAIT_FOR_DB:-1}" = 1 ]; then
  python - <<'PY'
import os, sys, time
import psycopg
import dj_database_url

url = os.environ.get("DATABASE_URL")
if not url:
    sys.exit("entrypoint: DATABASE_URL is not set")
cfg = dj_database_url.parse(url)
deadline = time.monotonic() + float(os.environ.get("GNOMON_WAIT_FOR_DB_SECONDS", "60"))
while True:
    try:
        psycopg.connect(
            dbname=cfg["NAME"], user=cfg["USER"], password=cfg["PASSWORD"] or None,
            host=cfg["HOST"] or None, port=cfg["PORT"] or None, connect_timeout=3,
        ).close()
        break
    except psycopg.OperationalError as exc:
        if time.monotonic() > deadline:
            sys.exit(f"entrypoint: PostgreSQL not reachable: {exc}")
        time.sleep(1)
PY
fi

if [ "${GNOMON_MIGRATE_ON_START:-0}" = 1 ]; then
  python manage.py migrate --noinput
  python manage.py collectstatic --noinput -v 0
fi

exec "$@"

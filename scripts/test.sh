#!/usr/bin/env bash
# Install everything and run the whole test suite against PostgreSQL and Redis
# (DATABASE_URL / CELERY_BROKER_URL; defaults: 127.0.0.1:5432 user postgres, 127.0.0.1:6379).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${TANDEM_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q -r requirements.txt -r requirements-dev.txt
exec "$VENV/bin/python" -m pytest "$@"

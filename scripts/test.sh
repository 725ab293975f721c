#!/usr/bin/env bash
# Install everything and run the whole test suite against PostgreSQL and Redis
# (DATABASE_URL / CELERY_BROKER_URL; defaults: 127.0.0.1:5432 user postgres, 127.0.0.1:6379).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${TANDEM_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q -r requirements.txt -r requirements-dev.txt
# axe-core (the accessibility checks of the browser tests), pinned by package-lock.json
npm ci --no-audit --no-fund --loglevel=error
# browser tests drive Debian's chromium (`playwright install` cannot download its own browser here)
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium >/dev/null || { $SUDO apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium >/dev/null; }
fi
# the browser code's pure modules (node's own test runner), then the types (mypy + django-stubs), then pytest
node --test frontend/tests/*.test.mjs
"$VENV/bin/mypy" annotation modelsvc frontend config scripts
exec "$VENV/bin/python" -m pytest "$@"

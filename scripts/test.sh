#!/usr/bin/env bash
# Install everything and run the whole test suite against PostgreSQL and Redis
# (DATABASE_URL / CELERY_BROKER_URL; defaults: 127.0.0.1:5432 user postgres, 127.0.0.1:6379).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${TANDEM_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q -r requirements.txt -r requirements-dev.txt
# browser assets pinned by package-lock.json (the pages and the browser tests load them)
npm ci --no-audit --no-fund --loglevel=error
# browser tests drive Debian's chromium (`playwright install` cannot download its own browser here)
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium >/dev/null || { $SUDO apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium >/dev/null; }
fi
node --test frontend/tests/*.test.mjs
exec "$VENV/bin/python" -m pytest "$@"

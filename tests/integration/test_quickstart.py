"""The quick-start command brings the app up on the embedded default: a PostgreSQL and a Valkey broker started from
their wheels by scripts/embedded.py under TANDEM_VAR_DIR, with web, worker and beat as separate processes. The smoke
test imports (through that worker), labels, reviews and exports there; SIGTERM stops every process, the embedded
servers included. The embedded servers also come back on their existing data, and an earlier quick start's SQLite
database is copied in once."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import psycopg2
import pytest

from tests.integration.conftest import ROOT, command_lines, descendants, free_port, http, stop_tree, wait_job

pytestmark = pytest.mark.integration

PYTHON = sys.executable
EMBEDDED = str(ROOT / "scripts" / "embedded.py")
# the variables of the test run that must not leak into the quick start (it chooses its own)
LEAKS = ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SECRET_KEY", "DJANGO_SETTINGS_MODULE", "TANDEM_IMPORT_DIR")


def _clean_env(var: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LEAKS}
    env.update({"TANDEM_VAR_DIR": str(var), **extra})
    return env


def _processes_using(path: Path) -> list[str]:
    """Command lines of live processes that name `path` (the embedded postgres and valkey-server do)."""
    own = os.getpid()
    return [
        line
        for line in command_lines({int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()} - {own})
        if str(path) in line and ("postgres" in line or "valkey-server" in line)
    ]


def _wait_gone(path: Path, timeout: float = 20) -> list[str]:
    deadline = time.time() + timeout
    while (left := _processes_using(path)) and time.time() < deadline:
        time.sleep(0.2)
    return left


def _embedded(command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, EMBEDDED, command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def _exports(stdout: str) -> dict[str, str]:
    """`export NAME=value` lines (shell-quoted) as a dict."""
    out = {}
    for line in stdout.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        out[name] = shlex.split(value)[0]
    return out


def _query(var: Path, sql: str, params=()) -> list[tuple]:
    """One statement on the embedded PostgreSQL through its Unix socket in var/pg (committed)."""
    with closing(psycopg2.connect(host=str(var / "pg"), user="postgres", dbname="tandem")) as conn:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(entry.decode(errors="replace").partition("=")[::2] for entry in raw if b"=" in entry)


def test_quickstart_runs_web_worker_and_beat(tmp_path):
    port = free_port()
    var = tmp_path / "var"
    env = _clean_env(
        var,
        TANDEM_SKIP_INSTALL="1",  # the test command installed requirements into this venv already
        TANDEM_VENV=str(Path(sys.executable).parent.parent),
        PORT=str(port),
        DJANGO_SUPERUSER_PASSWORD="smoke-admin-pw",
        DJANGO_STATIC_ROOT=str(tmp_path / "static"),
    )
    log = open(tmp_path / "quickstart.log", "w")
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "run.sh")],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"

    def log_tail() -> str:
        return (tmp_path / "quickstart.log").read_text()[-3000:]

    try:
        deadline = time.time() + 180
        while True:
            assert proc.poll() is None, log_tail()
            try:
                status, _ = http("GET", f"{base}/api/", timeout=2)
                if status == 200:
                    break
            except OSError:
                pass
            assert time.time() < deadline, log_tail()
            time.sleep(0.5)

        # web, worker and beat were given the embedded servers' sockets under var/, not 127.0.0.1:5432 / :6379
        tree = descendants(proc.pid)
        running = "\n".join(command_lines(tree))
        for process in ("celery -A config worker", "celery -A config beat", "granian --interface wsgi"):
            assert process in running, running
        for process in ("granian --interface wsgi", "celery -A config worker", "celery -A config beat"):
            pid = next(p for p in tree if process in " ".join(command_lines({p})))
            env_of = _environ(pid)
            assert f"host={var / 'pg'}" in env_of["DATABASE_URL"], (process, env_of["DATABASE_URL"])
            assert "127.0.0.1" not in env_of["DATABASE_URL"]
            assert env_of["CELERY_BROKER_URL"] == f"redis+socket://{var / 'broker' / 'valkey.sock'}", process
        assert _query(var, "SELECT version()")[0][0].startswith("PostgreSQL ")

        status, body = http("POST", f"{base}/api/auth/token/", {"username": "admin", "password": "smoke-admin-pw"})
        assert status == 200, body
        token = body["token"]

        status, projects = http("GET", f"{base}/api/projects/", token=token)
        demo = [p for p in projects["results"] if p["name"] == "SMS spam (demo)"]
        assert len(demo) == 1
        assert demo[0]["item_count"] == 500

        status, project = http(
            "POST",
            f"{base}/api/projects/",
            # one admin labels and reviews: it reviews its own work, which a project must allow (docs/review.md)
            {"name": "smoke", "labels": ["a", "b"], "review_policy": "all", "reviewers_may_review_own": True},
            token=token,
        )
        assert status == 201, project
        pid = project["id"]
        rows = [{"external_id": f"s{i}", "text": f"smoke row {i}"} for i in range(3)]
        status, body = http("POST", f"{base}/api/projects/{pid}/import", rows, token=token)
        assert status == 202, body
        job = wait_job(base, token, body["job"])  # only the separate worker process runs import jobs
        assert job["status"] == "succeeded", (job, log_tail())
        assert job["result"]["created"] == 3

        # label everything
        def annotate(item: dict) -> str:
            status, ann = http(
                "POST", f"{base}/api/items/{item['id']}/annotations", {"value": {"label": "a"}}, token=token
            )
            assert status == 201, ann
            return item["external_id"]

        labeled = _each_next(f"{base}/api/projects/{pid}/next", token, annotate)
        assert labeled == {"s0", "s1", "s2"}
        status, rows = http("GET", f"{base}/api/projects/{pid}/items/?status=in_review", token=token)
        assert rows["count"] == 3, rows

        # review everything (review_policy "all"): approve each annotation
        def approve(task: dict) -> str:
            status, review = http(
                "POST",
                f"{base}/api/annotations/{task['annotations'][0]['id']}/review",
                {"verdict": "approve"},
                token=token,
            )
            assert status == 201, review
            assert review["final"] == {"label": "a"}, review
            return task["item"]["external_id"]

        reviewed = _each_next(f"{base}/api/projects/{pid}/review/next", token, approve)
        assert reviewed == {"s0", "s1", "s2"}
        status, rows = http("GET", f"{base}/api/projects/{pid}/items/?status=approved", token=token)
        assert rows["count"] == 3, rows

        # export: every row carries its final label
        status, export = _get_text(f"{base}/api/projects/{pid}/export?format=jsonl", token)
        assert status == 200, export
        exported = [json.loads(line) for line in export.splitlines() if line.strip()]
        assert sorted(r["external_id"] for r in exported) == ["s0", "s1", "s2"]
        assert all(r["final"] == {"label": "a"} for r in exported), exported

        # what the web wrote is in the embedded PostgreSQL
        finals = _query(
            var,
            "SELECT count(*) FROM annotation_finallabel f JOIN annotation_item i ON i.id = f.item_id"
            " WHERE i.project_id = %s",
            [pid],
        )
        assert finals == [(3,)]
    finally:
        stubborn = stop_tree(proc)
        log.close()
    assert not stubborn, f"processes that ignored SIGTERM: {stubborn}"
    assert not _wait_gone(var), _processes_using(var)  # run.sh stopped the embedded servers too
    assert "PostgreSQL stopped" in log_tail()


def _each_next(url: str, token: str, handle: Callable[[dict], str], limit: int = 5) -> set[str]:
    """GET url (a /next endpoint) until it answers 204, at most `limit` times, passing each 200 answer to handle();
    the external ids handle() returned."""
    handled = set()
    for _ in range(limit):
        status, body = http("GET", url, token=token)
        if status == 204:
            break
        assert status == 200, body
        handled.add(handle(body))
    return handled


def _get_text(url: str, token: str) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status, resp.read().decode()


def test_embedded_servers_come_back_on_their_data(tmp_path):
    """start -> write -> stop -> start again on the same var/: the row is there; `start` twice reuses the servers."""
    var = tmp_path / "var"
    env = _clean_env(var)
    try:
        first = _embedded("start", env)
        assert first.returncode == 0, first.stderr
        urls = _exports(first.stdout)
        assert urls["CELERY_BROKER_URL"] == f"redis+socket://{var / 'broker' / 'valkey.sock'}"
        _query(var, "CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)")
        again = _embedded("start", env)  # already running: the same servers, the same URLs
        assert again.returncode == 0, again.stderr
        assert _exports(again.stdout) == urls
        assert len([line for line in _processes_using(var) if "valkey-server" in line]) == 1

        stopped = _embedded("stop", env)
        assert stopped.returncode == 0, stopped.stderr
        assert not _wait_gone(var), _processes_using(var)

        second = _embedded("start", env)
        assert second.returncode == 0, second.stderr
        assert _query(var, "SELECT n FROM kept") == [(42,)]
        import redis

        broker = redis.Redis(unix_socket_path=str(var / "broker" / "valkey.sock"))
        assert broker.ping()
        broker.close()
    finally:
        _embedded("stop", env)
    assert not _wait_gone(var), _processes_using(var)


LEGACY_SETTINGS = """
from config.settings import *  # noqa: F403

_SQLITE = {{"ENGINE": "django.db.backends.sqlite3", "NAME": {path!r}}}
DATABASES = {{"default": _SQLITE, "jobs": {{**_SQLITE, "TEST": {{"MIRROR": "default"}}}}}}
"""

LEGACY_ROWS = """
import django
django.setup()
from django.contrib.auth import get_user_model
from annotation.models import Annotation, FinalLabel, Item, Project, Review
from modelsvc.models import ModelVersion

user = get_user_model().objects.create_superuser("old-admin", password="old-pw")
project = Project.objects.create(name="from sqlite", labels=[{"name": "a"}, {"name": "b"}], created_by=user)
items = [Item.objects.create(project=project, external_id=f"x{i}", data={"text": f"row {i}"}) for i in range(3)]
annotation = Annotation.objects.create(item=items[0], annotator=user, value={"label": "b"})
Review.objects.create(annotation=annotation, reviewer=user, verdict="approve")
FinalLabel.objects.create(item=items[0], value={"label": "b"}, source="review")
ModelVersion.objects.create(project=project, version=1, kind="zero_shot", base_model="m", labels=["a", "b"],
                            task_type="classification", status="active")
"""


def test_an_earlier_sqlite_database_is_copied_in_once(tmp_path):
    var = tmp_path / "var"
    var.mkdir()
    sqlite = var / "tandem.sqlite3"
    (tmp_path / "legacy_settings.py").write_text(LEGACY_SETTINGS.format(path=str(sqlite)))
    legacy_env = _clean_env(
        var,
        DJANGO_SETTINGS_MODULE="legacy_settings",
        PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]),
        DJANGO_SECRET_KEY="k" * 50,
    )
    for args in (["manage.py", "migrate", "--noinput", "-v0"], ["-c", LEGACY_ROWS]):
        res = subprocess.run([PYTHON, *args], cwd=ROOT, env=legacy_env, capture_output=True, text=True)
        assert res.returncode == 0, res.stdout + res.stderr

    env = _clean_env(var, DJANGO_SECRET_KEY="k" * 50)
    try:
        started = _embedded("start", env)
        assert started.returncode == 0, started.stderr
        env.update(_exports(started.stdout))
        res = subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert res.returncode == 0, res.stderr
        copied = _embedded("import-sqlite", env)
        assert copied.returncode == 0, copied.stdout + copied.stderr
        assert not sqlite.exists()
        assert (var / "tandem.sqlite3.imported").exists()  # kept, never deleted
        counts = {
            table: _query(var, f"SELECT count(*) FROM {table}")[0][0]
            for table in (
                "auth_user",
                "annotation_project",
                "annotation_item",
                "annotation_annotation",
                "annotation_review",
                "annotation_finallabel",
                "modelsvc_modelversion",
            )
        }
        final = _query(var, "SELECT value FROM annotation_finallabel")[0][0]
        assert counts == {
            "auth_user": 1,
            "annotation_project": 1,
            "annotation_item": 3,
            "annotation_annotation": 1,
            "annotation_review": 1,
            "annotation_finallabel": 1,
            "modelsvc_modelversion": 1,
        }
        assert final == {"label": "b"}

        # a second SQLite file where PostgreSQL already holds data: refused with a one-line instruction
        (var / "tandem.sqlite3.imported").rename(sqlite)
        refused = _embedded("import-sqlite", env)
        assert refused.returncode == 1
        assert "move it away" in refused.stderr, refused.stderr
        assert sqlite.exists()
    finally:
        _embedded("stop", env)
    assert not _wait_gone(var), _processes_using(var)

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body=None, token: str | None = None, timeout: float = 30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else None


def descendants(pid: int) -> set[int]:
    """Every live process below pid (honcho starts each child in a session of its own)."""
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, ppid in parent.items() if ppid in frontier} - found
        found |= frontier
    return found


def command_lines(pids: set[int]) -> list[str]:
    out = []
    for pid in pids:
        try:
            out.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            pass
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def stop_tree(proc: subprocess.Popen, grace: float = 20) -> set[int]:
    """SIGTERM the process (and its group), wait up to `grace` s, then SIGKILL every descendant left.
    Returns the pids that were still alive after the grace period."""
    tree = descendants(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.time() + grace
    while time.time() < deadline and (proc.poll() is None or any(_alive(p) for p in tree)):
        time.sleep(0.2)
    stubborn = {p for p in tree | {proc.pid} if _alive(p)}
    for pid in stubborn:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=10)
    return stubborn


def wait_job(base: str, token: str, job_id: int, timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    job: dict = {}
    while time.time() < deadline:
        status, job = http("GET", f"{base}/api/jobs/{job_id}", token=token)
        assert status == 200, job
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout}s: {job}")


@pytest.fixture
def start_worker(tmp_path, settings):
    """Start `celery worker -Q default,model` (real model, Redis, the test database); every worker started
    is stopped at the end. Keyword arguments become environment variables of the worker."""
    import sys

    import redis
    from django.db import connection

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    started: list[tuple[subprocess.Popen, object]] = []

    def start(name: str, **extra: str) -> subprocess.Popen:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings_test",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}",
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "TANDEM_IMPORT_DIR": str(settings.TANDEM_IMPORT_DIR),
            "MODEL_DIR": str(tmp_path / "models"),
            "TANDEM_MODEL_BACKEND": "hf",
            "TANDEM_PRELABEL_ON_IMPORT": "true",
            "TANDEM_CPU_THREADS": "2",
            "TANDEM_COLD_START_PICKS": "0",
            "TANDEM_EXPLAIN_HEAD": "3",
            # a killed worker's task comes back after 5 s, swept every second (defaults: 6 h, 100 s)
            "CELERY_VISIBILITY_TIMEOUT": "5",
            "CELERY_UNACKED_RESTORE_INTERVAL": "1",
            "CELERY_UNACKED_RESTORE_THROTTLE": "1",
            **extra,
        }
        log = open(tmp_path / f"{name}.log", "w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default,model", "-c", "1", "-l", "INFO"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        started.append((proc, log))
        return proc

    yield start
    for proc, log in started:
        if proc.poll() is None:
            stop_tree(proc, grace=15)
        log.close()


def wait_for(predicate, what: str, timeout: float, procs=()):
    """Poll `predicate` until it returns something truthy; fail if a watched worker dies or time runs out."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        for proc in procs:
            assert proc.poll() is None, f"the worker died while waiting for {what}"
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")

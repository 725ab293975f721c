"""The quick-start command brings the app up on the embedded default (SQLite + SQLite broker) with web,
worker and beat as separate processes; an import through the API is finished by that worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, command_lines, descendants, free_port, http, stop_tree, wait_job

pytestmark = pytest.mark.integration


def test_quickstart_runs_web_worker_and_beat(tmp_path):
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SECRET_KEY", "DJANGO_SETTINGS_MODULE", "TANDEM_IMPORT_DIR")
    }
    env.update(
        {
            "TANDEM_SKIP_INSTALL": "1",  # the test command installed requirements into this venv already
            "TANDEM_VENV": str(Path(sys.executable).parent.parent),
            "TANDEM_VAR_DIR": str(tmp_path / "var"),
            "PORT": str(port),
            "DJANGO_SUPERUSER_PASSWORD": "smoke-admin-pw",
            "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
        }
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
    try:
        deadline = time.time() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "quickstart.log").read_text()[-3000:]
            try:
                status, _ = http("GET", f"{base}/api/", timeout=2)
                if status == 200:
                    break
            except OSError:
                pass
            assert time.time() < deadline, (tmp_path / "quickstart.log").read_text()[-3000:]
            time.sleep(0.5)
        status, body = http("POST", f"{base}/api/auth/token/", {"username": "admin", "password": "smoke-admin-pw"})
        assert status == 200, body
        token = body["token"]

        status, projects = http("GET", f"{base}/api/projects/", token=token)
        demo = [p for p in projects["results"] if p["name"] == "SMS spam (demo)"]
        assert len(demo) == 1
        assert demo[0]["item_count"] == 500

        status, project = http("POST", f"{base}/api/projects/", {"name": "smoke", "labels": ["a", "b"]}, token=token)
        assert status == 201, project
        rows = [{"external_id": f"s{i}", "text": f"smoke row {i}"} for i in range(3)]
        status, body = http("POST", f"{base}/api/projects/{project['id']}/import", rows, token=token)
        assert status == 202, body
        job = wait_job(base, token, body["job"])  # only the separate worker process runs import jobs
        assert job["status"] == "succeeded", job
        assert job["result"]["created"] == 3

        # label everything on the embedded database (the ORM code path SQLite uses)
        labeled = set()
        for _ in range(5):
            status, item = http("GET", f"{base}/api/projects/{project['id']}/next", token=token)
            if status == 204:
                break
            assert status == 200, item
            status, ann = http(
                "POST", f"{base}/api/items/{item['id']}/annotations", {"value": {"label": "a"}}, token=token
            )
            assert status == 201, ann
            labeled.add(item["external_id"])
        assert labeled == {"s0", "s1", "s2"}
        status, rows = http("GET", f"{base}/api/projects/{project['id']}/items/?status=approved", token=token)
        assert rows["count"] == 3

        running = "\n".join(command_lines(descendants(proc.pid)))
        for process in ("celery -A config worker", "celery -A config beat", "granian --interface wsgi"):
            assert process in running, running
    finally:
        stubborn = stop_tree(proc)
        log.close()
    assert not stubborn, f"processes that ignored SIGTERM: {stubborn}"

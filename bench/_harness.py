"""Small, stdlib-only harness for Tandem's benchmarks.

Starts the real deployment shape against a fresh PostgreSQL database and Redis: `manage.py
migrate`, a superuser, the web server (granian, as in Procfile; BENCH_SERVER=gunicorn for gthread)
and one Celery worker, each in its own process group. Everything is stopped and the database dropped on exit: try/finally, atexit, SIGTERM /
SIGINT / SIGHUP handlers, and a detached reaper process for when the benchmark itself is
SIGKILLed. Also: a keep-alive HTTP client (http.client), CPU accounting from /proc, and
percentile helpers. Progress goes to stderr; benchmarks print one JSON line on stdout.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin"
PY = VENV_BIN / "python"
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
REDIS_DB = 12
ADMIN_USER, ADMIN_PASS = "bench_admin", "bench-admin-Pw-5531"
USER_PASS = "bench-user-Pw-8817"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# the labels of ag_news, the default text source
LABELS = ["World", "Sports", "Business", "Sci/Tech"]
DATASETS = [
    Path("/work/shared/datasets/ag_news/test.jsonl"),
    Path("/work/shared/datasets/sms_spam/train.jsonl"),
    Path("/work/shared/datasets/sms_spam/test.jsonl"),
]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def web_figures(workers: int, threads: int) -> dict:
    """The web server a benchmark ran against, for its JSON line."""
    return {"server": os.environ.get("BENCH_SERVER", "granian"), "workers": workers, "threads": threads}


def emit(figures: dict) -> None:
    """The benchmark's one JSON line on stdout."""
    print(json.dumps(figures, sort_keys=False), flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(sql: str, db: str = "postgres", check: bool = True) -> str:
    cmd = ["psql", "-w", "-h", PG["host"], "-p", str(PG["port"]), "-U", PG["user"], "-d", db, "-AtXqc", sql]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    if res.returncode != 0 and check:
        raise RuntimeError(f"psql failed ({sql[:80]}): {res.stderr.strip()[:300]}")
    return res.stdout


def redis_flush(db: int = REDIS_DB) -> None:
    cmd = b"*2\r\n$6\r\nSELECT\r\n$%d\r\n%d\r\n*1\r\n$7\r\nFLUSHDB\r\n" % (len(str(db)), db)
    reply = b""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", 6379), timeout=5) as s:
        s.sendall(cmd)
        for _ in range(10):
            if reply.count(b"\r\n") >= 2:
                break
            chunk = s.recv(256)
            if not chunk:
                break
            reply += chunk
    if reply != b"+OK\r\n+OK\r\n":
        log(f"warning: Redis FLUSHDB on db {db} answered {reply[:80]!r}")


# ------------------------------------------------------------------ /proc accounting


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm may contain spaces/parens: split after the last ')'
    head, _, rest = raw.rpartition(")")
    return [head.split("(", 1)[0].strip(), head.split("(", 1)[1], *rest.split()]


def proc_cpu(pid: int, children: bool = True) -> float:
    """utime+stime (+ cutime+cstime of reaped children) of one process, in seconds."""
    f = _stat(pid)
    if f is None:
        return 0.0
    # fields after ')' start at index 2 here: state=2, ... utime=13, stime=14, cutime=15, cstime=16
    ticks = int(f[13]) + int(f[14])
    if children:
        ticks += int(f[15]) + int(f[16])
    return ticks / CLK_TCK


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def group_pids(pgid: int) -> list[int]:
    out = []
    for pid in all_pids():
        f = _stat(pid)
        if f is not None and int(f[4]) == pgid:
            out.append(pid)
    return out


def group_cpu(pgid: int) -> float:
    """CPU seconds of a whole process group (the leader's reaped children included)."""
    return sum(proc_cpu(pid) for pid in group_pids(pgid))


def postgres_pids() -> list[int]:
    out = []
    for pid in all_pids():
        f = _stat(pid)
        if f is not None and f[1] in ("postgres", "postmaster"):
            out.append(pid)
    return out


def postgres_cpu_by_pid() -> dict[int, float]:
    """CPU seconds of every postgres process (the postmaster's reaped backends included)."""
    return {pid: proc_cpu(pid) for pid in postgres_pids()}


def rss_kb(pid: int, key: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_hwm(pid: int) -> bool:
    """Reset VmHWM (peak RSS) of a process we own (Linux >= 4.0: write 5 to clear_refs)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class CpuMeter:
    """CPU seconds of the server (the web server's process group), the worker (celery group), the database and us."""

    def __init__(self, app: App):
        self.app = app

    def sample(self, settle: float = 0.0) -> dict:
        """settle: wait first, so that a backend whose connection just closed has been reaped by the
        postmaster (its CPU moves into the postmaster's cutime only then)."""
        if settle:
            time.sleep(settle)
        pg = postgres_cpu_by_pid()
        ours = self.app.db_pids()
        t = os.times()
        return {
            "server": group_cpu(self.app.web.pid) if self.app.web else 0.0,
            "worker": group_cpu(self.app.worker.pid) if self.app.worker else 0.0,
            "pg": pg,
            "pg_ours": ours,
            "client": t.user + t.system + t.children_user + t.children_system,
            "wall": time.perf_counter(),
        }

    @staticmethod
    def delta(a: dict, b: dict) -> dict:
        # a backend that exited between the samples is gone from b, and its whole CPU time moved
        # into the postmaster's cutime: subtract what it had at a (b.get(p, 0) - a[p])
        db_all = sum(b["pg"].get(p, 0.0) - a["pg"].get(p, 0.0) for p in set(a["pg"]) | set(b["pg"]))
        # our database's backends, the postmaster (backends that exited) and PostgreSQL's background
        # processes (walwriter, checkpointer...), not other databases' live backends (e.g. a test
        # suite running beside us)
        ours = set(a["pg_ours"]) | set(b["pg_ours"])
        db_ours = sum(b["pg"].get(p, 0.0) - a["pg"].get(p, 0.0) for p in ours)
        return {
            "server_cpu_s": round(b["server"] - a["server"], 3),
            "worker_cpu_s": round(b["worker"] - a["worker"], 3),
            "db_cpu_s": round(db_ours, 3),
            "db_all_cpu_s": round(db_all, 3),
            "client_cpu_s": round(b["client"] - a["client"], 3),
            "wall_s": round(b["wall"] - a["wall"], 3),
        }


# ------------------------------------------------------------------ HTTP


class Http:
    """One keep-alive HTTP/1.1 connection (not thread-safe: one per thread)."""

    def __init__(self, port: int, token: str | None = None, timeout: float = 60):
        self.port, self.token, self.timeout = port, token, timeout
        self.conn: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            self.conn.connect()
            self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def headers(self, extra: dict | None = None) -> dict:
        h = {"Accept": "application/json"}
        if self.token:
            h["Authorization"] = f"Token {self.token}"
        h.update(extra or {})
        return h

    def request(self, method: str, path: str, body=None, headers: dict | None = None) -> tuple[int, bytes]:
        data = None
        h = self.headers(headers)
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        for attempt in (1, 2):
            try:
                conn = self._connect()
                conn.request(method, path, body=data, headers=h)
                resp = conn.getresponse()
                payload = resp.read()
                if resp.will_close:
                    self.close()
                return resp.status, payload
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # the server closed an idle keep-alive connection: reconnect once (only safe to
                # retry because every request we send is idempotent or carries an Idempotency-Key)
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, body=None, expect=(200, 201, 202), headers=None):
        status, payload = self.request(method, path, body, headers)
        if status not in expect:
            raise RuntimeError(f"{method} {path} -> {status}: {payload[:300]!r}")
        return json.loads(payload) if payload else None

    def upload_file(
        self, path: str, file: Path, content_type: str = "application/x-ndjson", chunk: int = 1 << 20
    ) -> tuple[int, bytes]:
        """POST a file as the raw request body, streamed from disk (never whole in memory)."""
        self.close()
        conn = self._connect()
        conn.putrequest("POST", path)
        for k, v in self.headers({"Content-Type": content_type}).items():
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(file.stat().st_size))
        conn.endheaders()
        with open(file, "rb") as f:
            while True:
                block = f.read(chunk)
                if not block:
                    break
                conn.send(block)
        resp = conn.getresponse()
        payload = resp.read()
        self.close()
        return resp.status, payload


# ------------------------------------------------------------------ the app

_LIVE: list[App] = []


def _on_signal(signum, frame):
    raise SystemExit(f"stopped by signal {signum} (cleaned up)")


def _cleanup_all() -> None:
    for app in list(_LIVE):
        app.close()


atexit.register(_cleanup_all)

REAPER = r"""
import json, os, signal, subprocess, sys, time
parent, state = int(sys.argv[1]), sys.argv[2]
while os.getppid() == parent:
    time.sleep(0.5)
try:
    st = json.load(open(state))
except Exception:
    sys.exit(0)
for pg in st["pgids"]:
    try: os.killpg(pg, signal.SIGKILL)
    except Exception: pass
time.sleep(1)
subprocess.run(["psql", "-w", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc",
                'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % st["db"]], capture_output=True)
import shutil; shutil.rmtree(st["tmp"], ignore_errors=True)
os.unlink(state)
"""


class App:
    """Fresh database + the web server (granian or gunicorn) + one Celery worker. Use as a context manager."""

    def __init__(
        self,
        workers: int = 2,
        threads: int = 2,
        worker: bool = True,
        env: dict | None = None,
        gunicorn_args: list[str] | None = None,
    ):
        self.web_workers, self.web_threads, self.want_worker = workers, threads, worker
        self.extra_env = env or {}
        self.server = os.environ.get("BENCH_SERVER", "granian")
        self.gunicorn_args = gunicorn_args or os.environ.get("BENCH_GUNICORN_ARGS", "").split()
        self.server_args = os.environ.get("BENCH_SERVER_ARGS", "").split()
        self.db = f"tandem_bench_{os.getpid()}"
        self.port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix="tandem-bench-"))
        self.secret = secrets.token_urlsafe(50)[:50]
        self.procs: list[subprocess.Popen] = []
        self.web: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.reaper: subprocess.Popen | None = None
        self.state = self.tmp.with_suffix(".state.json")
        self._closed = False
        self._old_handlers: dict = {}

    # -- environment
    def env(self) -> dict:
        e = dict(os.environ)
        e.update(
            {
                "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{self.db}",
                "CELERY_BROKER_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
                "DJANGO_SECRET_KEY": self.secret,
                "DJANGO_DEBUG": "0",
                "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
                "TANDEM_VAR_DIR": str(self.tmp / "var"),
                "TANDEM_IMPORT_MAX_ROWS": "5000000",
                "TANDEM_MODEL_BACKEND": "fake",
                # the benches measure import, the labeling loop and export: no pre-labeling job after the
                # import competing with them for the CPU and the database (the model loop has its own benches)
                "TANDEM_PRELABEL_ON_IMPORT": "0",
                "MODEL_DIR": str(self.tmp / "models"),
                "DJANGO_SUPERUSER_USERNAME": ADMIN_USER,
                "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASS,
                "DJANGO_SUPERUSER_EMAIL": "bench@example.org",
                "DJANGO_LOG_LEVEL": "WARNING",
                "PYTHONUNBUFFERED": "1",
            }
        )
        e.update(self.extra_env)
        return e

    def manage(self, *args: str) -> None:
        res = subprocess.run(
            [str(PY), "manage.py", *args],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=600,
        )
        if res.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed: {(res.stderr or res.stdout)[-800:]}")

    def _save_state(self) -> None:
        self.state.write_text(json.dumps({"pgids": [p.pid for p in self.procs], "db": self.db, "tmp": str(self.tmp)}))

    def spawn(self, name: str, cmd: list[str]) -> subprocess.Popen:
        logf = open(self.tmp / f"{name}.log", "w")
        p = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=self.env(),
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        logf.close()
        p.log_path = self.tmp / f"{name}.log"  # type: ignore[attr-defined]
        self.procs.append(p)
        self._save_state()
        return p

    def log_tail(self, p: subprocess.Popen, n: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(Path(p.log_path).read_text(errors="replace").splitlines()[-n:])  # type: ignore[attr-defined]
        return ""

    def check_alive(self) -> None:
        for p in self.procs:
            if p.poll() is not None:
                raise RuntimeError(f"{p.args[0]} exited with {p.returncode}:\n{self.log_tail(p)}")

    # -- lifecycle
    def __enter__(self) -> App:
        _LIVE.append(self)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            with contextlib.suppress(ValueError):
                self._old_handlers[sig] = signal.signal(sig, _on_signal)
        try:
            self._save_state()
            self.reaper = subprocess.Popen(
                [sys.executable, "-c", REAPER, str(os.getpid()), str(self.state)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                cwd="/",
            )
            psql(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
            psql(f'CREATE DATABASE "{self.db}"')
            redis_flush()
            t0 = time.time()
            self.manage("migrate", "--noinput")
            self.manage("createsuperuser", "--noinput")
            log(f"database {self.db} migrated in {time.time() - t0:.1f} s")
            self.web = self.spawn("web", self.web_command())
            if self.want_worker:
                self.worker = self.spawn(
                    "worker",
                    [
                        str(VENV_BIN / "celery"),
                        "-A",
                        "config",
                        "worker",
                        "-Q",
                        "default,model",
                        "-c",
                        "1",
                        "-l",
                        "WARNING",
                        "--without-gossip",
                        "--without-mingle",
                    ],
                )
            self._wait_web()
            log(f"{self.server} -w {self.web_workers} --threads {self.web_threads} on :{self.port}")
        except BaseException:
            self.close()
            raise
        return self

    def web_command(self) -> list[str]:
        """The web server's command line: BENCH_SERVER=granian (default, as in Procfile) or gunicorn (gthread)."""
        if self.server == "granian":
            return [
                str(VENV_BIN / "granian"),
                "--interface",
                "wsgi",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.web_workers),
                "--blocking-threads",
                str(self.web_threads),
                "--backlog",
                "512",
                "--no-ws",
                *self.server_args,
                "config.wsgi:application",
            ]
        return [
            str(VENV_BIN / "gunicorn"),
            "config.wsgi",
            "-b",
            f"127.0.0.1:{self.port}",
            "-k",
            "gthread",
            "-w",
            str(self.web_workers),
            "--threads",
            str(self.web_threads),
            "--timeout",
            "300",
            "--keep-alive",
            "75",
            "--backlog",
            "512",
            # the per-request heartbeat touches a file: keep it in memory (as in docker-compose.yml)
            "--worker-tmp-dir",
            "/dev/shm",
            *self.gunicorn_args,
        ]

    def _wait_web(self, timeout: float = 90) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.check_alive()
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, _ = Http(self.port, timeout=5).request("GET", "/api/auth/token/")
                if status:
                    return
            time.sleep(0.3)
        raise RuntimeError(f"{self.server} did not answer in {timeout} s:\n{self.log_tail(self.web)}")

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for p in self.procs:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, signal.SIGTERM)
            deadline = time.time() + 5
            while time.time() < deadline and any(p.poll() is None for p in self.procs):
                time.sleep(0.1)
            for p in self.procs:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(timeout=5)
            if os.environ.get("BENCH_KEEP_LOGS"):
                log(f"logs kept in {self.tmp}")
            self.release_data()
            if not os.environ.get("BENCH_KEEP_LOGS"):
                shutil.rmtree(self.tmp, ignore_errors=True)
            with contextlib.suppress(OSError):
                self.state.unlink()
            if self.reaper is not None:
                with contextlib.suppress(ProcessLookupError):
                    self.reaper.kill()
                with contextlib.suppress(Exception):
                    self.reaper.wait(timeout=5)
        finally:
            if self in _LIVE:
                _LIVE.remove(self)
            for sig, old in self._old_handlers.items():
                with contextlib.suppress(ValueError, TypeError):
                    signal.signal(sig, old if old is not None else signal.SIG_DFL)

    def release_data(self) -> None:
        """At close: the bench's database dropped and its Redis database flushed (a subclass may keep its data)."""
        with contextlib.suppress(Exception):
            psql(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)', check=False)
        redis_flush()

    # -- introspection
    def web_worker_pids(self) -> list[int]:
        """The web server's worker processes (its process group minus the main process)."""
        return [p for p in group_pids(self.web.pid) if p != self.web.pid] if self.web else []

    def db_pids(self) -> list[int]:
        """Backends of our database plus PostgreSQL's own background processes."""
        out = psql(
            f"SELECT pid FROM pg_stat_activity WHERE datname = '{self.db}' OR backend_type <> 'client backend'",
            check=False,
        )
        pids = [int(x) for x in out.split() if x.strip().isdigit()]
        # the postmaster: its cutime/cstime hold the CPU of backends that exited (a closed connection)
        for pid in postgres_pids():
            f = _stat(pid)
            if f is not None and int(f[3]) not in postgres_pids():
                pids.append(pid)
        return pids

    def sql(self, query: str) -> str:
        return psql(query, db=self.db).strip()

    # -- API helpers
    def http(self, token: str | None = None) -> Http:
        return Http(self.port, token)

    def token(self, username: str, password: str) -> str:
        return Http(self.port).json("POST", "/api/auth/token/", {"username": username, "password": password})["token"]

    def admin(self) -> Http:
        return self.http(self.token(ADMIN_USER, ADMIN_PASS))

    def create_project(self, api: Http, name: str, labels: list[str] = LABELS, **extra) -> int:
        body = {"name": name, "task_type": "classification", "labels": labels, **extra}
        return api.json("POST", "/api/projects/", body)["id"]

    def annotators(self, api: Http, project_id: int, n: int, prefix: str = "ann") -> list[str]:
        """Tokens of n annotator users of the project, made 4 at a time (password hashing is slow)."""
        tokens: list[str | None] = [None] * n
        errors: list[BaseException] = []

        def make(i: int) -> None:
            admin = Http(self.port, api.token)  # one connection per thread
            try:
                name = f"{prefix}{i:03d}"
                admin.json(
                    "POST", "/api/users/", {"username": name, "password": USER_PASS, "email": f"{name}@example.org"}
                )
                admin.json("POST", f"/api/projects/{project_id}/members/", {"username": name, "role": "annotator"})
                tokens[i] = self.token(name, USER_PASS)
            except BaseException as e:
                errors.append(e)
            finally:
                admin.close()

        for i0 in range(0, n, 4):
            threads = [threading.Thread(target=make, args=(i,)) for i in range(i0, min(n, i0 + 4))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(300)
        if errors:
            raise errors[0]
        return [t for t in tokens if t]

    def wait_job(self, api: Http, job_id: int, timeout: float = 1800, poll: float = 0.2) -> dict:
        t0 = time.time()
        last = -1.0
        while time.time() - t0 < timeout:
            job = api.json("GET", f"/api/jobs/{job_id}", expect=(200,))
            if job["status"] in ("succeeded", "failed"):
                return job
            if job.get("total") and time.time() - last > 10:
                last = time.time()
                log(f"  job {job_id} {job['status']}: {100 * (job.get('progress') or 0) / job['total']:.0f}%")
            self.check_alive()
            time.sleep(poll)
        raise RuntimeError(f"job {job_id} did not finish in {timeout} s")

    def import_file(self, api: Http, project_id: int, file: Path, timeout: float = 1800) -> dict:
        """Upload a JSONL file (streamed raw body) and wait for its Job. Returns timings and the Job."""
        t0 = time.perf_counter()
        status, payload = api.upload_file(f"/api/projects/{project_id}/import?format=jsonl", file)
        t_upload = time.perf_counter() - t0
        if status != 202:
            raise RuntimeError(f"import answered {status}: {payload[:300]!r}")
        job = self.wait_job(api, json.loads(payload)["job"], timeout=timeout, poll=0.1)
        total = time.perf_counter() - t0
        if job["status"] != "succeeded":
            raise RuntimeError(f"import job failed: {json.dumps(job)[:500]}")
        return {"upload_s": t_upload, "total_s": total, "job": job}


# ------------------------------------------------------------------ data


def _texts() -> list[str]:
    texts: list[str] = []
    for path in DATASETS:
        with contextlib.suppress(OSError), open(path, encoding="utf-8") as f:
            for line in f:
                t = json.loads(line).get("text", "")
                if t and t.strip():
                    texts.append(t)
    if not texts:  # no datasets here: synthetic ~40-word texts
        words = "alpha beta gamma delta market team game vote bank chip launch price city cup".split()
        texts = [" ".join(words[(i * 7 + j * 3) % len(words)] for j in range(40)) for i in range(997)]
    return texts


def write_jsonl(path: Path, rows: int, prefix: str = "r") -> int:
    """A JSONL file of `rows` items (real news / SMS texts cycled, unique external ids). Returns bytes."""
    texts = _texts()
    enc = json.JSONEncoder(ensure_ascii=False)
    n_texts = len(texts)
    with open(path, "w", encoding="utf-8", buffering=1 << 20) as f:
        buf = []
        for i in range(rows):
            buf.append(
                enc.encode({"external_id": f"{prefix}{i}", "text": texts[i % n_texts], "source": "bench", "n": i})
            )
            if len(buf) >= 10000:
                f.write("\n".join(buf) + "\n")
                buf = []
        if buf:
            f.write("\n".join(buf) + "\n")
    return path.stat().st_size


def percentiles(values: list[float], ps=(50, 95, 99)) -> dict:
    """Percentiles in ms (nearest-rank) of values in seconds."""
    if not values:
        return {f"p{p}": None for p in ps} | {"n": 0}
    s = sorted(values)
    out = {}
    for p in ps:
        k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))
        out[f"p{p}"] = round(s[k] * 1000, 2)
    out["n"] = len(s)
    return out


def new_key() -> str:
    return uuid.uuid4().hex


def parse_sizes(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        mult = 1
        if part.endswith("k"):
            mult, part = 1000, part[:-1]
        elif part.endswith("m"):
            mult, part = 1_000_000, part[:-1]
        out.append(int(float(part) * mult))
    return out


def machine() -> dict:
    model, mem = "", 0
    with contextlib.suppress(OSError, StopIteration):
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    with contextlib.suppress(OSError, StopIteration):
        with open("/proc/meminfo") as f:
            mem = int(next(line.split()[1] for line in f if line.startswith("MemTotal"))) // 1024 // 1024
    return {"cpus": os.cpu_count(), "cpu": model, "mem_gb": mem, "date": time.strftime("%Y-%m-%d"), "git": git_state()}


def git_state() -> str:
    """The commit measured, with "+dirty" when app files (outside bench/) differ from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", ".", ":(exclude)bench"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return head + ("+dirty" if status else "")


def url(path: str, **params) -> str:
    return path + ("?" + urllib.parse.urlencode(params) if params else "")

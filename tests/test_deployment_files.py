"""docker-compose.yml is checked structurally here (no Docker engine on CI machines); where the
docker-compose client is installed, its own `config` validation runs too."""

import os
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
        "bad = sorted(m for m in ('torch', 'transformers') if m in sys.modules);"
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

"""Tandem settings: everything comes from environment variables (django-environ).

PostgreSQL and a Redis-protocol broker everywhere. DATABASE_URL and CELERY_BROKER_URL default to a local
PostgreSQL (127.0.0.1:5432, user postgres, database tandem) and Redis (127.0.0.1:6379/0); the quick start
(scripts/run.sh) sets both to the embedded servers that scripts/embedded.py starts under ``TANDEM_VAR_DIR``.
With DJANGO_DEBUG off (the default) the app refuses to start without a real DJANGO_SECRET_KEY.
"""

from __future__ import annotations

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

VAR_DIR = Path(env.str("TANDEM_VAR_DIR", default=str(BASE_DIR / "var"))).resolve()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
_WEAK_KEYS = {"", "changeme", "change-me", "secret", "insecure"}
if not DEBUG and (SECRET_KEY.lower() in _WEAK_KEYS or len(SECRET_KEY) < 32):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY must be set to a random value of at least 32 characters when "
        "DJANGO_DEBUG is off (generate one with: python -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )
if not SECRET_KEY:
    SECRET_KEY = "django-insecure-debug-only-key-never-used-in-production"  # noqa: S105 - DEBUG only

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "annotation",
    "modelsvc",
    "frontend",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "frontend.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/tandem")}
if not DATABASES["default"]["ENGINE"].endswith(("postgresql", "postgis")):
    raise ImproperlyConfigured(
        "DATABASE_URL must name a PostgreSQL database (postgres://...): Tandem runs on PostgreSQL only."
    )
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DJANGO_CONN_MAX_AGE", default=60))
# A second connection to the same database, used only to publish Job progress while the import's own
# transaction is still open (so a failed import leaves nothing behind).
DATABASES["jobs"] = {**DATABASES["default"], "TEST": {"MIRROR": "default"}}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.str("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
# Chart.js (the dashboard's charts) comes from npm (package.json) and is served like every other static file,
# under static/vendor/chart.js/; without `npm ci` the dashboard shows its tables and says the charts are missing
CHART_JS_DIR = BASE_DIR / "node_modules" / "chart.js" / "dist"
STATICFILES_DIRS = [("vendor/chart.js", CHART_JS_DIR)] if CHART_JS_DIR.is_dir() else []
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG

LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Content-Security-Policy on HTML pages (frontend/csp.py): no inline script, no eval. The Swagger UI
# page renders an inline init script, so it is exempt.
TANDEM_CSP_EXEMPT = ("/api/docs",)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# --- REST framework -----------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "annotation.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "annotation.storable.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "annotation.apis.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "annotation.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # the export takes ?format=jsonl|csv itself; DRF's own ?format= switch must not swallow it
    "URL_FORMAT_OVERRIDE": None,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Tandem API",
    "DESCRIPTION": "Human-in-the-loop annotation: projects, import, labeling queue, annotations, export.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Celery ------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
CELERY_TASK_IGNORE_RESULT = True  # Job rows carry status and results; no result backend needed
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"modelsvc.tasks.*": {"queue": "model"}}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis redelivers a task unacked for longer than this: keep it above the longest job.
# Unacknowledged tasks of a lost worker are swept back every interval x throttle seconds (kombu: 10 x 10).
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=6 * 3600),
        "unacked_restore_interval": env.int("CELERY_UNACKED_RESTORE_INTERVAL", default=10),
        "unacked_restore_throttle": env.int("CELERY_UNACKED_RESTORE_THROTTLE", default=10),
    }
    if CELERY_BROKER_URL.startswith(("redis://", "rediss://", "redis+socket://"))
    else {}
)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

# --- Tandem ------------------------------------------------------------------------------
MODEL_DIR = Path(env.str("MODEL_DIR", default=str(VAR_DIR / "models")))
TANDEM_MODEL = env.str("TANDEM_MODEL", default="")  # empty: the packaged all-MiniLM-L6-v2
TANDEM_MODEL_BACKEND = env.str("TANDEM_MODEL_BACKEND", default="hf")
TANDEM_IMPORT_DIR = Path(env.str("TANDEM_IMPORT_DIR", default=str(VAR_DIR / "imports")))
# dataset snapshots (annotation/datasets): their files, shared by every web replica and worker like TANDEM_IMPORT_DIR
TANDEM_SNAPSHOT_DIR = Path(env.str("TANDEM_SNAPSHOT_DIR", default=str(VAR_DIR / "snapshots")))
# formats the build Job writes after the canonical JSONL and the card (the snapshot is ready before them); any
# other is written on its first download, in the web request (a second request meanwhile gets 503 + Retry-After)
TANDEM_SNAPSHOT_EAGER_FORMATS = env.list(
    "TANDEM_SNAPSHOT_EAGER_FORMATS", default=["csv", "parquet", "hf", "conll", "labelstudio"]
)
TANDEM_SNAPSHOT_TASK_TIME_LIMIT = env.int("TANDEM_SNAPSHOT_TASK_TIME_LIMIT", default=3600)  # s (soft) per build
TANDEM_IMPORT_MAX_BYTES = env.int("TANDEM_IMPORT_MAX_BYTES", default=1024 * 1024 * 1024)
TANDEM_IMPORT_MAX_ROWS = env.int("TANDEM_IMPORT_MAX_ROWS", default=2_000_000)
TANDEM_IMPORT_MAX_ERRORS = env.int("TANDEM_IMPORT_MAX_ERRORS", default=100)
TANDEM_IMPORT_BATCH_SIZE = env.int("TANDEM_IMPORT_BATCH_SIZE", default=5000)
TANDEM_MAX_TEXT_CHARS = env.int("TANDEM_MAX_TEXT_CHARS", default=100_000)
TANDEM_MAX_FIELD_CHARS = env.int("TANDEM_MAX_FIELD_CHARS", default=10_000)
# Server-side prepared statements for the hot queries (off behind a transaction-mode pooler)
TANDEM_PG_PREPARE = env.bool("TANDEM_PG_PREPARE", default=True)
TANDEM_ASSIGNMENT_TTL_SECONDS = env.int("TANDEM_ASSIGNMENT_TTL_SECONDS", default=30 * 60)
# The model loop (modelsvc): pre-label after each successful import; chunk and batch sizes; CPU runtime
TANDEM_PRELABEL_ON_IMPORT = env.bool("TANDEM_PRELABEL_ON_IMPORT", default=True)
TANDEM_PRELABEL_CHUNK_SIZE = env.int("TANDEM_PRELABEL_CHUNK_SIZE", default=256)
TANDEM_PRELABEL_STALE_SECONDS = env.int("TANDEM_PRELABEL_STALE_SECONDS", default=6 * 3600)  # then replaced
TANDEM_PRELABEL_BATCH_SIZE = env.int("TANDEM_PRELABEL_BATCH_SIZE", default=32)
TANDEM_GPU_BATCH_SIZE = env.int("TANDEM_GPU_BATCH_SIZE", default=1024)  # bf16 on CUDA
TANDEM_CPU_THREADS = env.int("TANDEM_CPU_THREADS", default=0)  # 0: torch's default (all cores)
TANDEM_CPU_RUNTIME = env.str("TANDEM_CPU_RUNTIME", default="onnx-int8")  # onnx-int8 | onnx | torch | torch-int8
TANDEM_COLD_START_PICKS = env.int("TANDEM_COLD_START_PICKS", default=10)  # diverse items served first
TANDEM_COLD_START_SAMPLE = env.int("TANDEM_COLD_START_SAMPLE", default=500)  # embedded for that pick
TANDEM_EXPLAIN_HEAD = env.int("TANDEM_EXPLAIN_HEAD", default=20)  # explained after each pre-label
TANDEM_EXPLAIN_MAX_VARIANTS = env.int("TANDEM_EXPLAIN_MAX_VARIANTS", default=64)
# Time limits of the model tasks (modelsvc/tasks.py), in s: at the soft limit the task's Job fails with the
# reason, TANDEM_TASK_KILL_GRACE later the worker child is killed (a hung model load or ONNX export included)
TANDEM_PRELABEL_TASK_TIME_LIMIT = env.int("TANDEM_PRELABEL_TASK_TIME_LIMIT", default=1800)  # plan or one chunk
TANDEM_EXPLAIN_TASK_TIME_LIMIT = env.int("TANDEM_EXPLAIN_TASK_TIME_LIMIT", default=600)
TANDEM_BEAT_TASK_TIME_LIMIT = env.int("TANDEM_BEAT_TASK_TIME_LIMIT", default=120)  # training check, schedules
TANDEM_TASK_KILL_GRACE = env.int("TANDEM_TASK_KILL_GRACE", default=60)
# Training (modelsvc.services.training / modelsvc.training)
TANDEM_VALIDATION_FRACTION = env.float("TANDEM_VALIDATION_FRACTION", default=0.2)  # reserved, never trained on
TANDEM_TRAIN_MIN_LABELS = env.int("TANDEM_TRAIN_MIN_LABELS", default=10)  # fewer: the run is skipped
TANDEM_TRAIN_MAX_EPOCHS = env.int("TANDEM_TRAIN_MAX_EPOCHS", default=10)
TANDEM_TRAIN_BATCH_SIZE = env.int("TANDEM_TRAIN_BATCH_SIZE", default=16)
TANDEM_TRAIN_LEARNING_RATE = env.float("TANDEM_TRAIN_LEARNING_RATE", default=1e-4)
TANDEM_TRAIN_SEED = env.int("TANDEM_TRAIN_SEED", default=0)
TANDEM_TRAIN_PATIENCE = env.int("TANDEM_TRAIN_PATIENCE", default=2)  # epochs without improvement, then stop
TANDEM_TRAIN_FREEZE_EMBEDDINGS = env.bool(
    "TANDEM_TRAIN_FREEZE_EMBEDDINGS", default=True
)  # word embeddings as pre-trained
TANDEM_TRAIN_MAX_LENGTH = env.int("TANDEM_TRAIN_MAX_LENGTH", default=128)  # tokens per text
TANDEM_TRAIN_TIME_LIMIT = env.int("TANDEM_TRAIN_TIME_LIMIT", default=1800)  # s of training; then stop early
TANDEM_TRAIN_TASK_TIME_LIMIT = env.int("TANDEM_TRAIN_TASK_TIME_LIMIT", default=3600)  # s (soft); then the run fails
TANDEM_TRAIN_STALE_SECONDS = env.int("TANDEM_TRAIN_STALE_SECONDS", default=600)  # no heartbeat: worker lost
TANDEM_PROMOTION_METRIC = env.str("TANDEM_PROMOTION_METRIC", default="accuracy")  # or macro_f1
TANDEM_PROMOTION_MARGIN = env.float("TANDEM_PROMOTION_MARGIN", default=0.0)  # must beat active by more
TANDEM_MODEL_RETENTION = env.int("TANDEM_MODEL_RETENTION", default=3)  # artifacts kept besides the active
# the live accuracy against final labels (annotation/quality/model.py) covers the last N decided items
TANDEM_LIVE_LAST_N = env.int("TANDEM_LIVE_LAST_N", default=500)
# quality metrics (annotation/quality/metrics.py): the beat queues a refresh of a changed project at most this often
TANDEM_METRICS_REFRESH_SECONDS = env.int("TANDEM_METRICS_REFRESH_SECONDS", default=60)
TANDEM_METRICS_TASK_TIME_LIMIT = env.int("TANDEM_METRICS_TASK_TIME_LIMIT", default=600)  # s (soft) per refresh
# cached metrics older than this are recomputed even without a seen change (deletions leave no timestamp)
TANDEM_METRICS_MAX_AGE_SECONDS = env.int("TANDEM_METRICS_MAX_AGE_SECONDS", default=6 * 3600)
CELERY_BEAT_SCHEDULE = {
    # stale training runs are failed; projects with min_new_labels new approved labels start a run
    "tandem-training-check": {"task": "modelsvc.tasks.training_check_task", "schedule": 60.0},
    # projects whose data changed since their cached metrics get a refresh Job
    "tandem-metrics-check": {
        "task": "annotation.tasks.metrics_check_task",
        "schedule": float(TANDEM_METRICS_REFRESH_SECONDS),
    },
}

# Uploads larger than this are streamed to a temporary file, never held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

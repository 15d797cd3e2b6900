"""Gnomon settings: every knob is an environment variable, read here and nowhere else.

See the configuration table in README.md. With ``DATABASE_URL`` or ``CELERY_BROKER_URL`` unset, private PostgreSQL and
Redis servers are started under ``GNOMON_VAR_DIR`` (see ``gnomon.embedded``).
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

from gnomon.logging import build_logging_config

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("GNOMON_DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise RuntimeError("SECRET_KEY must be set when GNOMON_DEBUG is off")
    SECRET_KEY = "dev-only-insecure-key-set-SECRET_KEY-in-production"  # noqa: S105 - DEBUG only
if not DEBUG and not os.environ.get("ALLOWED_HOSTS", "").strip():
    raise RuntimeError("ALLOWED_HOSTS must be set when GNOMON_DEBUG is off (comma-separated host names)")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

# Where Gnomon keeps its own files (embedded servers, model weights, dataset cache) and where seed data is read from.
VAR_DIR = Path(os.environ.get("GNOMON_VAR_DIR", BASE_DIR / "var")).resolve()
DATA_DIR = Path(os.environ.get("GNOMON_DATA_DIR", VAR_DIR / "datasets")).resolve()
DATASET_CACHE_DIR = Path(os.environ.get("GNOMON_DATASET_CACHE", VAR_DIR / "dataset-cache")).resolve()
MODEL_DIR = Path(os.environ.get("GNOMON_MODEL_DIR", VAR_DIR / "models")).resolve()

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "catalog",
    "discovery",
    "frontend",
    "api",  # management commands (publish_dumps); no models
]

MIDDLEWARE = [
    "gnomon.logging.RequestIdMiddleware",
    "gnomon.security.RequestSizeLimitMiddleware",
    "gnomon.security.RejectNulBytesMiddleware",
    "gnomon.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

# Largest request body accepted, in bytes (default 2.5 MiB, Django's own). Nothing Gnomon accepts comes near it (a
# campaign's settings are a few hundred bytes). RequestSizeLimitMiddleware refuses a larger Content-Length with 413
# before anything reads the body: Django's own limit does not cover multipart file parts, which it spools to disk.
GNOMON_MAX_REQUEST_BYTES = int(os.environ.get("GNOMON_MAX_REQUEST_BYTES", str(2_621_440)))
DATA_UPLOAD_MAX_MEMORY_SIZE = GNOMON_MAX_REQUEST_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = GNOMON_MAX_REQUEST_BYTES

ROOT_URLCONF = "gnomon.urls"
WSGI_APPLICATION = "gnomon.wsgi.application"
ASGI_APPLICATION = "gnomon.asgi.application"

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

if not os.environ.get("DATABASE_URL"):
    if not DEBUG:
        raise RuntimeError("DATABASE_URL must be set when GNOMON_DEBUG is off (no embedded PostgreSQL in production)")
    from gnomon.embedded import start_postgres

    os.environ["DATABASE_URL"], _embedded_postgres = start_postgres(VAR_DIR)
DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60, conn_health_checks=True)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Cache (throttle counters, home-page figures). With GNOMON_CACHE_URL (a Redis URL) every gunicorn worker and host
# shares it, so throttles hold across workers; without it each process keeps its own, which multiplies the
# configured throttle rates by the number of web processes.
GNOMON_CACHE_URL = os.environ.get("GNOMON_CACHE_URL", "")
if GNOMON_CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": GNOMON_CACHE_URL}}

# Celery: broker on Redis. With CELERY_BROKER_URL unset, the quick start provides an embedded Redis.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
# Queues: default (orchestration), dft (DFT jobs), screening (campaign stages that train or run the graph networks;
# discovery.services.campaigns.STAGE_QUEUES sends them there explicitly).
CELERY_TASK_ROUTES = {
    "discovery.tasks.screen_*": {"queue": "screening"},
    "discovery.tasks.run_dft_*": {"queue": "dft"},
}
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": int(os.environ.get("GNOMON_VISIBILITY_TIMEOUT", "7200"))}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
}
# Requests per period (DRF syntax, e.g. "600/min"); the export has its own, lower rates.
GNOMON_API_THROTTLE_RATES = {
    "anon": os.environ.get("GNOMON_API_ANON_RATE", "600/min"),
    "user": os.environ.get("GNOMON_API_USER_RATE", "3000/min"),
    "anon_export": os.environ.get("GNOMON_API_ANON_EXPORT_RATE", "10/hour"),
    "user_export": os.environ.get("GNOMON_API_USER_EXPORT_RATE", "120/hour"),
}
# OPTIMADE provider name and home page (the provider prefix is fixed: `gnomon`, as in the `_gnomon_*` fields).
GNOMON_OPTIMADE_PROVIDER_NAME = os.environ.get("GNOMON_OPTIMADE_PROVIDER_NAME", "Gnomon")
GNOMON_OPTIMADE_HOMEPAGE = os.environ.get("GNOMON_OPTIMADE_HOMEPAGE", "") or None
# This server's OPTIMADE base URL as the outside sees it (self links inside the published dumps).
GNOMON_OPTIMADE_BASE_URL = os.environ.get("GNOMON_OPTIMADE_BASE_URL", "http://127.0.0.1:8000/optimade/v1")
# Published full dumps (manage.py publish_dumps), served unthrottled at /api/v1/dumps/.
GNOMON_DUMP_DIR = Path(os.environ.get("GNOMON_DUMP_DIR", VAR_DIR / "dumps")).resolve()
SPECTACULAR_SETTINGS = {
    "TITLE": "Gnomon API",
    "DESCRIPTION": "Export API of a living materials-discovery catalog.",
    "VERSION": "1.0.0",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and ReDoc from our own static files (drf-spectacular-sidecar): the docs work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Science settings.
GNOMON_SYMPREC = float(os.environ.get("GNOMON_SYMPREC", "0.1"))
GNOMON_IMPORT_WORKERS = int(os.environ.get("GNOMON_IMPORT_WORKERS", str(os.cpu_count() or 1)))
GNOMON_IMPORT_BATCH_SIZE = int(os.environ.get("GNOMON_IMPORT_BATCH_SIZE", "500"))
MP_API_KEY = os.environ.get("MP_API_KEY", "")
# Chemical systems with this many elements or more are solved per composition (linear programme) instead of one hull.
# Screening models (discovery.screening): torch intra-op threads (0 = torch's default, one per core), the device
# ('auto' = CUDA when present, else CPU) and how many structures go through the ensemble in one batch.
GNOMON_TORCH_THREADS = int(os.environ.get("GNOMON_TORCH_THREADS", "0"))
GNOMON_TORCH_DEVICE = os.environ.get("GNOMON_TORCH_DEVICE", "auto")
GNOMON_SCREENING_BATCH_SIZE = int(os.environ.get("GNOMON_SCREENING_BATCH_SIZE", "256"))

# Parallel processes for candidate generation run from a command or notebook (never inside a Celery task: see
# catalog/parallel.py). Campaigns split a round's generation into chunk tasks instead: so many parents, or so many
# compositions, per chunk; a chunk sent this long ago without a result is sent again (3 tries).
GNOMON_GENERATION_WORKERS = int(os.environ.get("GNOMON_GENERATION_WORKERS", str(min(2, os.cpu_count() or 1))))
GNOMON_GENERATION_CHUNK_PARENTS = int(os.environ.get("GNOMON_GENERATION_CHUNK_PARENTS", "100"))
GNOMON_GENERATION_CHUNK_COMPOSITIONS = int(os.environ.get("GNOMON_GENERATION_CHUNK_COMPOSITIONS", "4"))
GNOMON_GENERATION_CHUNK_TIMEOUT_S = int(os.environ.get("GNOMON_GENERATION_CHUNK_TIMEOUT_S", "900"))
GNOMON_HULL_PATCH_THRESHOLD = int(os.environ.get("GNOMON_HULL_PATCH_THRESHOLD", "7"))

# Logging: one line per event on stderr, JSON (production default) or text (development default), each line carrying
# the request id (X-Request-ID honoured) or the Celery task id. See gnomon/logging.py.
GNOMON_LOG_FORMAT = os.environ.get("GNOMON_LOG_FORMAT", "text" if DEBUG else "json")
LOGGING = build_logging_config(GNOMON_LOG_FORMAT, os.environ.get("GNOMON_LOG_LEVEL", "INFO"))

# Health check (/healthz): seconds each dependency check may take before it counts as failing.
GNOMON_HEALTHZ_TIMEOUT = float(os.environ.get("GNOMON_HEALTHZ_TIMEOUT", "3"))

# Production (GNOMON_DEBUG=0): secrets, hosts and broker only from the environment (checked above), HTTPS everywhere.
# Gnomon is meant to sit behind a TLS-terminating reverse proxy that sets X-Forwarded-Proto; `manage.py check --deploy`
# is clean with the defaults below. See docs/deployment.md.
DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
    "connect_timeout", int(os.environ.get("GNOMON_DB_CONNECT_TIMEOUT", "10"))
)
if not DEBUG:
    if not os.environ.get("CELERY_BROKER_URL"):
        raise RuntimeError("CELERY_BROKER_URL must be set when GNOMON_DEBUG is off")
    if env_bool("GNOMON_BEHIND_PROXY", True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("GNOMON_SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SESSION_COOKIE_HTTPONLY = True
    SECURE_HSTS_SECONDS = int(os.environ.get("GNOMON_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("GNOMON_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("GNOMON_HSTS_PRELOAD", True)
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
    X_FRAME_OPTIONS = "DENY"

# DFT verification (discovery/dft, discovery/services/dft/).
GNOMON_DFT_BACKEND = os.environ.get("GNOMON_DFT_BACKEND", "gpaw")
GNOMON_DFT_PRESET = os.environ.get("GNOMON_DFT_PRESET", "fast")
GNOMON_DFT_WORKDIR = Path(os.environ.get("GNOMON_DFT_WORKDIR", VAR_DIR / "dft")).resolve()
GNOMON_DFT_BACKEND_PLUGINS = env_list("GNOMON_DFT_BACKEND_PLUGINS", "")  # modules that call register_backend()
GNOMON_DFT_MAX_RETRIES = int(os.environ.get("GNOMON_DFT_MAX_RETRIES", "3"))  # transient errors only
GNOMON_DFT_MAX_REFERENCE_PHASES = int(os.environ.get("GNOMON_DFT_MAX_REFERENCE_PHASES", "5"))
# decorated prototypes computed per competitor known by composition only (discovery/services/dft/)
GNOMON_DFT_SEARCHED_STRUCTURES = int(os.environ.get("GNOMON_DFT_SEARCHED_STRUCTURES", "2"))
GNOMON_VASP = {  # VASP on a SLURM cluster: see discovery/dft/vasp_backend.py
    "command": os.environ.get("GNOMON_VASP_COMMAND", "srun vasp_std"),
    "host": os.environ.get("GNOMON_SLURM_HOST") or None,  # ssh host; unset: sbatch/squeue/sacct run locally
    "remote_root": os.environ.get("GNOMON_SLURM_REMOTE_DIR") or None,
    "partition": os.environ.get("GNOMON_SLURM_PARTITION") or None,
    "account": os.environ.get("GNOMON_SLURM_ACCOUNT") or None,
    "ntasks": int(os.environ.get("GNOMON_SLURM_NTASKS", "16")),
    "poll_interval_s": float(os.environ.get("GNOMON_SLURM_POLL_S", "30")),
}


# Periodic tasks (celery beat). DFT jobs left "running" by a dead worker are re-queued (also done when a worker starts).
CELERY_BEAT_SCHEDULE = {
    "requeue-stale-dft-jobs": {"task": "discovery.tasks.requeue_stale_dft_jobs", "schedule": 300.0},
    # Campaigns live in PostgreSQL; this re-sends the nudge to any active campaign that stopped moving.
    "resume-stalled-campaigns": {
        "task": "discovery.tasks.resume_stalled_campaigns_task",
        "schedule": float(os.environ.get("GNOMON_RESUME_EVERY_S", "60")),
    },
}
# A running campaign whose row has not changed for this long is nudged again by the beat task above.
GNOMON_STALLED_AFTER_S = float(os.environ.get("GNOMON_STALLED_AFTER_S", "120"))

"""Settings for the whole platform, read from the environment (django-environ).

Every integration is switched by an environment variable with an embedded,
safe default: SQLite and a filesystem Celery broker under ``var/``.
"""

from __future__ import annotations

import os
import secrets as _secrets
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")  # optional; a missing file is fine

VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """The key from SECRET_KEY, else one generated once and kept in var/."""
    from_env = env.str("SECRET_KEY", default="")
    if from_env:
        return from_env
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(_secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_results",
    "django_celery_beat",
    "platform_core.common",
    "platform_core.tenancy",
    "platform_core.catalog",
    "platform_core.events",
    "platform_core.plugins",
    "platform_core.jobs",
    "platform_core.profiles",
    "platform_core.serving",
    "platform_core.analytics",
    "platform_core.api",
    "platform_core.console",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "platform_core.api.middleware.ControlCharactersMiddleware",  # /api/ only: NUL & co. in the URL → 400
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "platform_core.urls"
WSGI_APPLICATION = "platform_core.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server and the worker read while the other writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            # BEGIN IMMEDIATE: a transaction takes the write lock up front and waits
            # for it (timeout), instead of failing with "database is locked" when
            # two processes upgrade read locks at once.
            "transaction_mode": "IMMEDIATE",
        }
    )
    # A file test database (one per pytest process), so a real Celery worker
    # subprocess started by the tests can open it; pytest-django deletes it after.
    DATABASES["default"].setdefault("TEST", {})["NAME"] = str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3")
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    # A kept connection is checked before a request reuses it, so a database restart costs
    # a reconnect instead of a 500 on the first request of every process (issue 11).
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns on every start when it is missing
# Static files (admin, Swagger UI from the sidecar) are served by WhiteNoise
# straight from the finders: no CDN, no collectstatic step needed.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

STORAGES = {
    "default": {
        "BACKEND": env.str("ARTIFACT_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage"),
        "OPTIONS": {"location": str(VAR_DIR / "artifacts")}
        if env.str("ARTIFACT_STORAGE_BACKEND", default="").strip()
        in ("", "django.core.files.storage.FileSystemStorage")
        else {},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Local cache where serving and workers materialise artifacts read from storage.
ARTIFACT_CACHE_DIR = Path(env.str("ARTIFACT_CACHE_DIR", default=str(VAR_DIR / "artifact-cache")))

# --- REST framework and OpenAPI -------------------------------------------------
API_THROTTLE_RATE = env.str("API_THROTTLE_RATE", default="6000/min")
# --- Bounded input (docs/api.md, "Limits"; README, "Throttling") --------------------
# Failed authentications (no, malformed, unknown or revoked key) per client address; "" = off.
API_AUTH_FAILURE_RATE = env.str("API_AUTH_FAILURE_RATE", default="60/min")
API_NUM_PROXIES = env.int("API_NUM_PROXIES", default=0)
API_MAX_JSON_DEPTH = env.int("API_MAX_JSON_DEPTH", default=32)  # every JSON body and query parameter
FILTER_MAX_DEPTH = env.int("FILTER_MAX_DEPTH", default=32)  # nested parentheses and 'not' in a filter
# Items' and users' attributes: each string (list elements, nested values and keys included) and
# the whole object as JSON. Event contexts: EVENTS_MAX_CONTEXT_BYTES in all, strings alike.
ATTRIBUTE_MAX_VALUE_BYTES = env.int("ATTRIBUTE_MAX_VALUE_BYTES", default=4096)
ATTRIBUTES_MAX_BYTES = env.int("ATTRIBUTES_MAX_BYTES", default=65536)
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": ["platform_core.api.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["platform_core.api.auth.HasApiKey"],
    "DEFAULT_THROTTLE_CLASSES": ["platform_core.api.throttles.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": API_THROTTLE_RATE},
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["platform_core.api.parsers.BoundedJSONParser"],
    "EXCEPTION_HANDLER": "platform_core.common.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
    # Proxies in front that append to X-Forwarded-For; 0: the client address is REMOTE_ADDR (a
    # client cannot pick its own address to slip past the failed-authentication throttle).
    "NUM_PROXIES": API_NUM_PROXIES,
    # OPTIONS lists the allowed methods and nothing else (docs/api.md, "Methods and scopes").
    "DEFAULT_METADATA_CLASS": "platform_core.api.auth.AllowedMethodsMetadata",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Behaviour platform API",
    "DESCRIPTION": "Events in; profiles, recommendations and risk scores out.",
    "VERSION": "1.0.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_INCLUDE_SCHEMA": False,
    # The one error shape on every /api/v1 operation (platform_core/api/schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "platform_core.api.schema.error_responses_hook",
    ],
}

CACHES = {
    "default": env.cache_url("CACHE_URL", default="locmemcache://"),
}

# --- Ingestion limits -------------------------------------------------------------
EVENTS_MAX_BATCH = env.int("EVENTS_MAX_BATCH", default=10_000)
EVENTS_MAX_FUTURE_SECONDS = env.int("EVENTS_MAX_FUTURE_SECONDS", default=24 * 3600)
EVENTS_MAX_CONTEXT_BYTES = env.int("EVENTS_MAX_CONTEXT_BYTES", default=8192)
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=32 * 1024 * 1024)
# In-process cache lifetime for API key → tenant and active-version lookups.
HOT_CACHE_SECONDS = env.int("HOT_CACHE_SECONDS", default=5)

# --- Serving (docs/serving.md) ----------------------------------------------------
SERVING_MAX_K = env.int("SERVING_MAX_K", default=100)
SERVING_CANDIDATE_FACTOR = env.int("SERVING_CANDIDATE_FACTOR", default=4)  # index candidates per slot
SERVING_EXPLORATION_DEFAULT = env.float("SERVING_EXPLORATION_DEFAULT", default=0.0)  # share of slots
SERVING_COLD_START_WINDOW_DAYS = env.int("SERVING_COLD_START_WINDOW_DAYS", default=30)
SERVING_POPULAR_CACHE_SECONDS = env.int("SERVING_POPULAR_CACHE_SECONDS", default=30)
SERVING_RELOAD_IN_BACKGROUND = env.bool("SERVING_RELOAD_IN_BACKGROUND", default=True)
SERVING_RELOAD_RETRY_SECONDS = env.int("SERVING_RELOAD_RETRY_SECONDS", default=60)
# Users' query vectors kept per process, keyed by the events they came from (serving/user_vectors.py).
SERVING_USER_VECTOR_CACHE = env.int("SERVING_USER_VECTOR_CACHE", default=10_000)
# Users' events and vectors kept per web process, dropped on PostgreSQL notifications
# (serving/user_state.py; off on SQLite). MB per process; entries expire after MAX_AGE seconds.
SERVING_USER_STATE_CACHE_MB = env.int("SERVING_USER_STATE_CACHE_MB", default=16)
SERVING_USER_STATE_MAX_AGE = env.int("SERVING_USER_STATE_MAX_AGE", default=600)
# Each user's last computed list (no explanations) kept beside that state and served again while
# nothing it came from changed; a domain whose rules read the clock, for at most CLOCK_SECONDS.
SERVING_LIST_CACHE = env.bool("SERVING_LIST_CACHE", default=True)
SERVING_LIST_CACHE_CLOCK_SECONDS = env.int("SERVING_LIST_CACHE_CLOCK_SECONDS", default=30)
SERVING_STATS_FLUSH_SECONDS = env.int("SERVING_STATS_FLUSH_SECONDS", default=10)
SERVING_RECOMMENDATION_MAX_AGE = env.int("SERVING_RECOMMENDATION_MAX_AGE", default=7 * 24 * 3600)
# Hot-path queries as PostgreSQL prepared statements (off behind a transaction-pooling PgBouncer).
SERVING_PREPARED_STATEMENTS = env.bool("SERVING_PREPARED_STATEMENTS", default=True)

# --- Domain plugins ----------------------------------------------------------------
DOMAIN_PLUGINS = env.list(
    "DOMAIN_PLUGINS",
    default=[
        "domains.ecommerce.plugin.EcommercePlugin",
        "domains.social.plugin.SocialPlugin",
        "domains.education.plugin.EducationPlugin",
        "domains.finance_risk.plugin.FinanceRiskPlugin",
        "domains.healthcare.plugin.HealthcarePlugin",
        "domains.transport.plugin.TransportPlugin",
    ],
)
DOMAIN_PLUGIN_ENTRY_POINT_GROUP = "platform.domains"
# Fernet keys for sensitive attributes, newest first (MultiFernet rotation).
# Empty: a key is generated once into var/ (development only).
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])

# --- Celery --------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
_broker_dir = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("out", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Broadcast (inspect, revoke) needs a fanout table; kombu's default is ./control (the cwd).
        "control_folder": str(_broker_dir / "control"),
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
        # A publish tries to connect once instead of retrying for broker_connection_timeout
        # (6 s measured against a closed port): a request never waits on a broker that is down.
        # Workers pass their own retry count when they (re)connect to consume.
        "max_retries": 0,
    }
    # Redis: several deployments (or a test run's worker) can share one server under their own prefix.
    if env.str("CELERY_BROKER_KEY_PREFIX", default=""):
        CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = env.str("CELERY_BROKER_KEY_PREFIX")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="django-db")
CELERY_RESULT_EXTENDED = True
CELERY_CACHE_BACKEND = "default"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=3600)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=3300)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

# --- Jobs: training, quality gate, heartbeats (docs/operations.md) -----------------
# The gate promotes a new version only if its primary model beats popularity and
# the active version on JOBS_GATE_METRIC by more than JOBS_GATE_MARGIN (absolute).
JOBS_GATE_METRIC = env.str("JOBS_GATE_METRIC", default="")  # empty: mlcore's validation metric
JOBS_GATE_MARGIN = env.float("JOBS_GATE_MARGIN", default=0.0)
JOBS_TRAIN_TIME_LIMIT = env.int("JOBS_TRAIN_TIME_LIMIT", default=CELERY_TASK_TIME_LIMIT)
JOBS_TRAIN_MAX_MINUTES = env.float("JOBS_TRAIN_MAX_MINUTES", default=max(JOBS_TRAIN_TIME_LIMIT / 60 - 2, 1))
JOBS_HEARTBEAT_SECONDS = env.int("JOBS_HEARTBEAT_SECONDS", default=10)
JOBS_STALE_AFTER_SECONDS = env.int("JOBS_STALE_AFTER_SECONDS", default=120)
PROFILE_REFRESH_DEBOUNCE_SECONDS = env.int("PROFILE_REFRESH_DEBOUNCE_SECONDS", default=30)
# A build_profiles job is split into this many user pk ranges, one task each on the
# "profiles" queue (one per worker process); small tenants get fewer parts.
PROFILES_BUILD_PARTS = env.int("PROFILES_BUILD_PARTS", default=2)
PROFILES_PART_MIN_USERS = env.int("PROFILES_PART_MIN_USERS", default=5000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Faults (issue 11) ---------------------------------------------------------
# Seconds one connection attempt to the broker may take when a request publishes
# (a broker that drops packets instead of refusing them); Celery's default is 4.
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0)
# Retry-After of a 503 broker_unavailable answer.
BROKER_RETRY_AFTER_SECONDS = env.int("BROKER_RETRY_AFTER_SECONDS", default=30)
# A profile-refresh request (outbox row) whose task has not run this long after its
# debounce is sent again by the periodic drain.
PROFILE_OUTBOX_RESEND_SECONDS = env.int("PROFILE_OUTBOX_RESEND_SECONDS", default=120)

# --- Erasure (README "Erasure", docs/api.md) ----------------------------------------
# A model version trained on an erased user's events that is serving is replaced by a
# retrain within this many hours; the beat sweep (jobs.erasure_retrains) starts the
# retrain once the oldest pending erasure is half-way to its due time (erasures of the
# first half share one retrain) and retries a failed or unpromoted one after the pause below.
ERASURE_RETRAIN_WINDOW_HOURS = env.float("ERASURE_RETRAIN_WINDOW_HOURS", default=24.0)
ERASURE_RETRAIN_RETRY_MINUTES = env.float("ERASURE_RETRAIN_RETRY_MINUTES", default=60.0)

# --- Analytics (docs/analytics.md) ------------------------------------------------
ANALYTICS_CACHE_SECONDS = env.int("ANALYTICS_CACHE_SECONDS", default=60)  # 0: no caching
# Segments older than this are recomputed by the beat entry "analytics-segments-refresh".
ANALYTICS_SEGMENT_MAX_AGE_SECONDS = env.int("ANALYTICS_SEGMENT_MAX_AGE_SECONDS", default=3600)

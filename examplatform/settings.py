"""One settings module for every environment, driven by the environment.

`DJANGO_DEMO=true` (what `make run` sets) is the only place defaults for the
secret key, the database (SQLite) and the cache (local memory) exist; anywhere
else the environment must provide them.
"""

from datetime import timedelta
from pathlib import Path

import environ
from redis.backoff import NoBackoff
from redis.retry import Retry

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEMO = env.bool("DJANGO_DEMO", default=False)

if DEMO:
    SECRET_KEY = env("DJANGO_SECRET_KEY", default="demo-only-insecure-key-never-use-in-production")
else:
    SECRET_KEY = env("DJANGO_SECRET_KEY")

DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEMO else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "examplatform.apps.ExamAdminConfig",  # django.contrib.admin on the exam-mode-gated site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "examplatform",
    "sessions_app",
    "analytics_app",
]

MIDDLEWARE = [
    # First, so its timing covers every middleware below and it sees every response.
    "examplatform.observability.middleware.ObservabilityMiddleware",
    # Database down or pool exhausted -> 503 + Retry-After, not a 500 (docs/resilience.md).
    "examplatform.resilience.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "examplatform.urls"

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

WSGI_APPLICATION = "examplatform.wsgi.application"
ASGI_APPLICATION = "examplatform.asgi.application"

# --- Database -------------------------------------------------------------
# PostgreSQL through Django's native psycopg pool. Each worker process owns its
# pool, so the backend's connection budget is split across the workers (see
# examplatform/capacity.py). The pool opens lazily on the first query, inside the
# worker, never in gunicorn's master.
from examplatform.capacity import pool_options  # noqa: E402

DATABASES = {
    "default": env.db(
        "DATABASE_URL",
        default=f"sqlite:///{BASE_DIR / 'var' / 'demo.sqlite3'}" if DEMO else environ.Env.NOTSET,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Never persistent connections with a pool (and never under ASGI): the pool
    # is the one place connections are kept.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Django's backend, failing fast while the database is down (docs/resilience.md).
    DATABASES["default"]["ENGINE"] = "examplatform.postgres"
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"]["pool"] = pool_options(env)
    DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env.int("DB_CONNECT_TIMEOUT", 3))
    # Session settings for the app's connections. JIT off: our queries are short
    # OLTP reads whose cost estimates can still cross jit_above_cost, and then
    # compiling took 21 of a create's 24 ms (docs/performance.md).
    DATABASES["default"]["OPTIONS"].setdefault("options", env("DB_SESSION_OPTIONS", default="-c jit=off"))
    DATABASES["default"].setdefault("TEST", {})["NAME"] = env(
        "DATABASE_TEST_NAME", default=f"test_{DATABASES['default']['NAME']}"
    )

# A request that finds the database down is refused at once; one per interval probes it.
DB_DOWN_RETRY_SECONDS = env.float("DB_DOWN_RETRY_SECONDS", default=1.0)
DB_RETRY_AFTER_SECONDS = env.int("DB_RETRY_AFTER_SECONDS", default=2)
# Server connections kept free of the web pools (the check examplatform.W002 warns when they don't fit).
DB_CONNECTION_RESERVE = env.int("DB_CONNECTION_RESERVE", default=10)

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded demo: several workers share one file, so wait for the write
    # lock instead of failing, and let readers run beside the writer.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------
# Redis is an accelerator, never a dependency: 1 s timeouts with retries off so
# the timeout is real (redis-py's default retries stretched 1 s to ~6 s).
REDIS_URL = env("REDIS_URL", default="" if DEMO else "redis://127.0.0.1:6379/0")
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=1.0)
REDIS_CONNECT_TIMEOUT = env.float("REDIS_CONNECT_TIMEOUT", default=1.0)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="exam"),
            "OPTIONS": {
                "CLIENT_CLASS": "examplatform.redis_client.BreakerClient",
                "SOCKET_CONNECT_TIMEOUT": REDIS_CONNECT_TIMEOUT,
                "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
                "CONNECTION_POOL_KWARGS": {"retry": Retry(NoBackoff(), 0)},
                # Fail-open: with the breaker open or Redis down, reads return the default, writes are dropped.
                "IGNORE_EXCEPTIONS": True,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# After a Redis failure every worker skips Redis this long, then one request probes it.
REDIS_BREAKER_RESET_SECONDS = env.float("REDIS_BREAKER_RESET_SECONDS", default=5.0)

# --- Auth -----------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Stateless: no user row per request; logout is enforced by the
        # blacklist check inside this class.
        "examplatform.auth.BlacklistAwareJWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "examplatform.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    # Per student on the API, per client IP on login (examplatform/throttles.py); generous, and
    # not enforced while Redis is down.
    "DEFAULT_THROTTLE_CLASSES": ["examplatform.throttles.StudentRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": env("THROTTLE_USER_RATE", default="1200/min"),
        "login": env("THROTTLE_LOGIN_RATE", default="3000/min"),
    },
    # Proxies in front whose X-Forwarded-For is believed for the login limit (1 behind Traefik).
    "NUM_PROXIES": env.int("THROTTLE_NUM_PROXIES", default=0),
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=30)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    # No rotation: the refresh jti identifies the login (see examplatform/auth.py).
    "ROTATE_REFRESH_TOKENS": False,
    "UPDATE_LAST_LOGIN": False,
    "TOKEN_OBTAIN_SERIALIZER": "examplatform.auth.TokenObtainPairSerializer",
    "TOKEN_REFRESH_SERIALIZER": "examplatform.auth.TokenRefreshSerializer",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Exam platform API",
    "DESCRIPTION": "Student API: question bank, exam sessions, answers, submit, review, revision.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's assets are served from here, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # The urls' `id` converter (examplatform/converters.py) is an integer, not a string pattern.
    "PATH_CONVERTER_OVERRIDES": {"id": int},
}

# --- Exam rules -----------------------------------------------------------
# Requests already in flight when the deadline passes still count.
EXAM_DEADLINE_GRACE_SECONDS = env.int("EXAM_DEADLINE_GRACE_SECONDS", default=30)
EXAM_SECONDS_PER_QUESTION = env.int("EXAM_SECONDS_PER_QUESTION", default=90)
EXAM_MAX_QUESTIONS = env.int("EXAM_MAX_QUESTIONS", default=200)
IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=24)
EXAM_MODE = env.bool("EXAM_MODE", default=False)
# Unauthenticated endpoints for tests and benchmarks (examplatform/test_endpoints.py); never in production.
ENABLE_TEST_ENDPOINTS = env.bool("ENABLE_TEST_ENDPOINTS", default=False)

# --- Observability (docs/observability.md) ---------------------------------
SLOW_REQUEST_WARN_MS = env.float("SLOW_REQUEST_WARN_MS", default=500.0)
SLOW_REQUEST_ERROR_MS = env.float("SLOW_REQUEST_ERROR_MS", default=1500.0)
SLOW_SQL_WARN_MS = env.float("SLOW_SQL_WARN_MS", default=100.0)
SLOW_SQL_ERROR_MS = env.float("SLOW_SQL_ERROR_MS", default=300.0)
# Whose X-Request-ID is believed (addresses or CIDRs); anyone else's is replaced.
TRUSTED_PROXY_IPS = env.list("TRUSTED_PROXY_IPS", default=["127.0.0.0/8", "::1"])
# Who may scrape /metrics without METRICS_TOKEN (never a request relayed by the proxy).
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=["127.0.0.0/8", "::1"])
METRICS_TOKEN = env("METRICS_TOKEN", default="")
READY_DB_TIMEOUT_SECONDS = env.float("READY_DB_TIMEOUT_SECONDS", default=2.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "examplatform.observability.jsonlog.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        "json": {"class": "logging.StreamHandler", "formatter": "json"},
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # One JSON line per request, plus slow_request / slow_sql reports.
        "examplatform.request": {
            "handlers": ["json"], "level": env("REQUEST_LOG_LEVEL", default="INFO"), "propagate": False,
        },
        "examplatform.sql": {"handlers": ["json"], "level": "WARNING", "propagate": False},
    },
}

if not DEBUG and not DEMO:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_CONTENT_TYPE_NOSNIFF = True

"""Settings for the Komo → Braze portal, read from the environment (django-environ).

Embedded default: SQLite + django-q2's ORM broker, nothing to configure.
Production: DATABASE_URL=postgres://…, REDIS_URL=redis://…, SECRET_KEY, DEBUG=false,
ALLOWED_HOSTS, FIELD_ENCRYPTION_KEYS.
"""

import os
from pathlib import Path

import environ
from django.utils.translation import gettext_lazy as _

from integrations.logging import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str(
    "SECRET_KEY",
    default="insecure-dev-only-key-change-me-in-production-0123456789abcdef" if DEBUG else "",
)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_q",
    "integrations",
]

MIDDLEWARE = [
    # The request id on every log line the request causes (X-Request-ID in and out).
    "integrations.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # collectstatic's output, compressed and cached for a year (hashed names); docs/scaling.md.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "integrations.middleware.SecurityHeadersMiddleware",
    # Webhook paths end here (INTAKE_PATH_PREFIXES): everything below is for pages.
    "integrations.middleware.IntakeMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "integrations.middleware.LoginThrottleMiddleware",
]
# Paths served by IntakeMiddleware, past the page middleware (the webhook's two endpoints).
INTAKE_PATH_PREFIXES = ["/api/v1/hubs/", "/api/v1/ingest/"]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
VAR_DIR = Path(env.str("PORTAL_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL is switched on once after migrate (see integrations.apps); here only the per-connection
    # settings: wait for locks instead of failing, and take the write lock at BEGIN so that two
    # claimers never deadlock upgrading a read lock.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE"}
    )
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    # Off by default: the check is one extra round trip (SELECT 1) per request, ~12 % of the
    # webhook's time (docs/scaling.md). A connection that died with a database restart fails one
    # request (503 + Retry-After, Komo retries) and is then replaced.
    DATABASES["default"].setdefault(
        "CONN_HEALTH_CHECKS", env.bool("CONN_HEALTH_CHECKS", default=False)
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (shared rate budget, throttling) ---------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        # Django's Redis backend, reusing its redis client (portal/cache.py: 0.2 ms per call less).
        "default": {"BACKEND": "portal.cache.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "portal_cache",
        }
    }
# Counters written on every webhook (intake rate limit): Redis
# when there is one (shared by every process), else this process's memory, so the embedded
# default does not add a database write to each webhook. Several web processes without Redis
# each count on their own.
CACHES["throttle"] = (
    {**CACHES["default"], "KEY_PREFIX": "throttle"}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle"}
)
# Failed sign-ins (integrations/middleware.py): few, and they must be shared by every web process
# (else each of N workers allows its own LOGIN_THROTTLE_ATTEMPTS), so Redis or the database.
CACHES["login_throttle"] = {**CACHES["default"], "KEY_PREFIX": "login-throttle"}

# --- django-q2 --------------------------------------------------------------------------------
Q_BROKER = env.str("Q_BROKER", default="redis" if REDIS_URL else "orm")
Q_CLUSTER = {
    "name": env.str("Q_CLUSTER_NAME", default="portal"),
    # Delivery is I/O bound and one worker runs the minute-long sweep loop (tasks.sweep_loop).
    "workers": env.int("Q_WORKERS", default=4),
    "timeout": 90,
    "retry": 120,
    "max_attempts": 1,
    "save_limit": 200,
    "ack_failures": True,
    "catch_up": False,
    "poll": env.float("Q_POLL", default=0.2),
    "sync": env.bool("Q_SYNC", default=False),
    "label": "Django Q2",
}
if Q_BROKER == "redis":
    Q_CLUSTER["redis"] = REDIS_URL or "redis://127.0.0.1:6379/0"
else:
    Q_CLUSTER["orm"] = "default"

# --- Auth, i18n, static -----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
LOGIN_REDIRECT_URL = "integrations:hub_list"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("de", _("German")), ("ja", _("Japanese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
# Production serves what `manage.py collectstatic` wrote, through WhiteNoise: names carry a hash
# of the content (cached for a year), with gzip copies. DEBUG serves the app directories as is.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- REST framework ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Komo → Braze portal",
    "DESCRIPTION": "Webhook intake for Komo Engagement Hub submissions.",
    "VERSION": "1.0.0",
}

# --- Product settings -------------------------------------------------------------------------
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=1_000_000)
# How long a web process reuses a hub it looked up for a webhook (0 = always ask the database).
WEBHOOK_HUB_CACHE_SECONDS = env.float("WEBHOOK_HUB_CACHE_SECONDS", default=2.0)
# Largest CSV export a hub editor may upload for a backfill (larger: manage.py hub_backfill).
BACKFILL_MAX_UPLOAD_BYTES = env.int("BACKFILL_MAX_UPLOAD_BYTES", default=2 * 1024**3)
# Webhooks accepted per hub per minute (429 beyond; Hub.intake_rate_per_minute overrides; 0 = off).
WEBHOOK_RATE_PER_MINUTE = env.int("WEBHOOK_RATE_PER_MINUTE", default=6000)
# How often a web process sends a busy hub's intake count and delivery signal to the shared cache
# (integrations/services/intake_window.py); delivery runs linger as long. 0: on every webhook.
WEBHOOK_COALESCE_SECONDS = env.float("WEBHOOK_COALESCE_SECONDS", default=0.1)
if not 0 <= WEBHOOK_COALESCE_SECONDS <= 1:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("WEBHOOK_COALESCE_SECONDS must be between 0 and 1 (seconds).")
# Failed sign-ins allowed per username + client address before sign-in waits (429).
LOGIN_THROTTLE_ATTEMPTS = env.int("LOGIN_THROTTLE_ATTEMPTS", default=5)
LOGIN_THROTTLE_SECONDS = env.int("LOGIN_THROTTLE_SECONDS", default=900)
BRAZE_EXTRA_ENDPOINTS = env.list("BRAZE_EXTRA_ENDPOINTS", default=[])
BRAZE_TIMEOUT_SECONDS = env.float("BRAZE_TIMEOUT_SECONDS", default=10.0)
BRAZE_CONNECT_TIMEOUT_SECONDS = env.float("BRAZE_CONNECT_TIMEOUT_SECONDS", default=3.05)
DELIVERY_BATCH_SIZE = env.int("DELIVERY_BATCH_SIZE", default=75)
# Braze's /users/track rate window (3,000 requests per 3 s): the shared rate budget ends a window
# at min(X-RateLimit-Reset, first answer + this), since Reset is rounded up to whole seconds.
BRAZE_RATE_WINDOW_SECONDS = env.float("BRAZE_RATE_WINDOW_SECONDS", default=3.0)
DELIVERY_CLAIM_SECONDS = env.int("DELIVERY_CLAIM_SECONDS", default=120)
SWEEP_INTERVAL_SECONDS = env.int("SWEEP_INTERVAL_SECONDS", default=5)
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
# The key of the blind index (keyed hashes that let support find a person's encrypted
# submissions). Empty: derived from SECRET_KEY; set it in production so SECRET_KEY can rotate.
BLIND_INDEX_KEY = env.str("BLIND_INDEX_KEY", default="")
# Retention (docs/decisions.md): each hub's retention_days removes personal data; rows whose
# personal data is gone are deleted once older than this many days (never before the hub's own
# window), so history and charts still cover a year and storage stays bounded.
RETENTION_HISTORY_DAYS = env.int("RETENTION_HISTORY_DAYS", default=400)
RETENTION_BATCH_SIZE = env.int("RETENTION_BATCH_SIZE", default=500)

if not DEBUG:
    # Fail at start-up, not at the first encrypted write.
    from django.core.exceptions import ImproperlyConfigured

    if not SECRET_KEY:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    if not FIELD_ENCRYPTION_KEYS:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS must be set when DEBUG is off: one or more Fernet keys, "
            "comma-separated, newest first (python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')."
        )

# --- Security ---------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# --- Logs and metrics --------------------------------------------------------------------------
# LOG_FORMAT=json: one JSON object per line (python-json-logger); every line of every logger is
# scrubbed of tokens, keys and secrets and carries the request id and hub (integrations/logging.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("LOG_FORMAT must be 'plain' or 'json'.")
LOGGING_CONFIG = "integrations.logging.configure"
LOGGING = logging_config(log_format=LOG_FORMAT, level=env.str("LOG_LEVEL", default="INFO"))
# Prometheus: every process of this machine (gunicorn workers, django-q2) writes its metrics
# here and GET /metrics adds them up. Set before prometheus_client is first imported.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "metrics"))
Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
# /metrics is closed unless one of these is set: a bearer token the scraper sends, and/or the
# addresses (or networks) it scrapes from, matched against REMOTE_ADDR.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_ADDRESSES = env.list("METRICS_ALLOWED_ADDRESSES", default=[])

# --- What the deployment looks like (integrations/checks.py warns about unsafe combinations) -----
# Web processes per machine: gunicorn's WEB_CONCURRENCY, default 3 per core (gunicorn.conf.py).
WEB_CONCURRENCY = env.int("WEB_CONCURRENCY", default=3 * (os.cpu_count() or 1))
# "transaction" when PgBouncer pools in transaction mode in front of PostgreSQL.
PGBOUNCER_POOL_MODE = env.str("PGBOUNCER_POOL_MODE", default="")
if PGBOUNCER_POOL_MODE == "transaction":
    # Django's requirement for transaction pooling: no server-side cursors across transactions.
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
# How long a delivery run lingers after clearing its hub's flag; default: the coalescing interval
# + 50 ms. Set it on worker machines when web machines coalesce longer than the workers do.
DELIVERY_LINGER_SECONDS = (
    env.float("DELIVERY_LINGER_SECONDS") if env.str("DELIVERY_LINGER_SECONDS", default="") else None
)

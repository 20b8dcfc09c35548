"""Settings for sigfoxsite, read from the environment (and an optional .env file).

Every knob has a safe default for production except SECRET_KEY, which must be
set whenever DEBUG is off. See .env.example for the full list.
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A .env file is a convenience for local runs; real deployments set variables.
# The test settings switch it off (SIGFOXSITE_READ_DOT_ENV=false).
DOT_ENV = Path(env.str("SIGFOXSITE_DOT_ENV", default=str(BASE_DIR / ".env")))
if env.bool("SIGFOXSITE_READ_DOT_ENV", default=True) and DOT_ENV.is_file():
    env.read_env(DOT_ENV)

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "Set the SECRET_KEY environment variable (or DEBUG=true for local work)."
        )
    SECRET_KEY = "insecure-development-key-only-used-with-debug-on"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # The pages people read (charts, device pages, the site's login); first, so
    # that its registration/ templates win over the admin's.
    "dashboard",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    # API tokens for scripts, made in the admin.
    "rest_framework.authtoken",
    # The OpenAPI schema of /api/ and its Swagger UI, served from here (no CDN).
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "readings",
    "alerts",
    "storage",
    # The Sigfox REST API: backfill of missed messages, callback setup.
    "sigfoxapi",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "readings.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "sigfoxsite.urls"

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

WSGI_APPLICATION = "sigfoxsite.wsgi.application"

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.postgresql":
    # A new connection per request costs more than the whole callback: keep
    # them open. No health check (a SELECT 1 before each request's first
    # query, a sixth of a worker's time under load): a connection broken by a
    # database restart fails one request with a 503, is closed, and the next
    # request opens a new one.
    _db.setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=600))
    _db.setdefault("CONN_HEALTH_CHECKS", env.bool("CONN_HEALTH_CHECKS", default=False))
    # Fail fast when the database is unreachable: the Sigfox backend gives up
    # after 10 s, and a quick 503 lets it retry later.
    _db.setdefault("OPTIONS", {}).setdefault("connect_timeout", 3)
elif _db["ENGINE"] == "django.db.backends.sqlite3":
    _db.setdefault("OPTIONS", {}).update(
        {
            # WAL lets the chart page read while a callback writes; IMMEDIATE
            # takes the write lock up front instead of failing mid-transaction.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [
    # Front-end libraries come from npm (package.json); only their built files
    # are published, under static/vendor/<package>/.
    ("vendor/chart.js", BASE_DIR / "node_modules" / "chart.js" / "dist"),
    ("vendor/luxon", BASE_DIR / "node_modules" / "luxon" / "build" / "global"),
    (
        "vendor/chartjs-adapter-luxon",
        BASE_DIR / "node_modules" / "chartjs-adapter-luxon" / "dist",
    ),
    ("vendor/chartjs-plugin-zoom", BASE_DIR / "node_modules" / "chartjs-plugin-zoom" / "dist"),
    # hammerjs has no dist folder; its built files sit at the package root.
    ("vendor/hammerjs", BASE_DIR / "node_modules" / "hammerjs"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "dashboard.storage.StaticFilesStorage"
        )
    },
}

# Logins: the site's own pages (/accounts/login/, /accounts/logout/) for
# readers and staff alike; only staff get into the admin. django-axes counts
# failed logins per account and per client address (the one the callback
# rules use, readings.limits.client_address) and, after LOGIN_FAILURE_LIMIT
# of either, refuses logins for LOGIN_COOLOFF_MINUTES before any password is
# hashed: a flood of wrong passwords costs a few queries each instead of a
# PBKDF2 run on the workers that store callbacks.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
INSTALLED_APPS += ["axes"]
# Last, as axes asks: it turns a refused login into the lockout page.
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_CLIENT_IP_CALLABLE = "readings.limits.client_address"
AXES_LOCKOUT_CALLABLE = "readings.limits.login_lockout_response"
# A refused try during a lockout neither extends it nor writes a row: a flood
# would otherwise rewrite one ever-growing row per try.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False

# Who may see the chart page: logged-in users only, unless this is set.
PUBLIC_DASHBOARD = env.bool("PUBLIC_DASHBOARD", default=False)

# Callbacks must carry this secret (Bearer, Basic password or ?token=) when set.
SIGFOX_CALLBACK_TOKEN = env.str("SIGFOX_CALLBACK_TOKEN", default="")
# Only callbacks from these networks (comma-separated CIDRs) are accepted when
# set; the Sigfox backend calls from 185.110.96.0/22.
SIGFOX_CALLBACK_NETWORKS = env.list("SIGFOX_CALLBACK_NETWORKS", default=[])
# At most this many callbacks per source address ("600/min", "20/s"); empty: no limit.
SIGFOX_CALLBACK_RATE = env.str("SIGFOX_CALLBACK_RATE", default="")
# Splits the raw {data} of devices whose own config and type's are empty.
SIGFOX_PAYLOAD_CONFIG = env.str("SIGFOX_PAYLOAD_CONFIG", default="")

# A device sends at most one frame every this many seconds (a frame with its
# repetitions takes about 6 s on air): a jump in seqNumber larger than the
# time since the previous frame allows is a counter reset, not lost messages.
SIGFOX_MIN_FRAME_SPACING_S = env.int("SIGFOX_MIN_FRAME_SPACING_S", default=20)

# Bounds on what callbacks can make: every new field name of a callback (and
# every new /data/<sensor> path) is a new series, which every chart and list
# walks through. A callback past a bound is still stored (2xx, raw body
# kept) but makes no new series; the refusal is counted on the device.
SIGFOX_MAX_SERIES_PER_DEVICE = env.int("SIGFOX_MAX_SERIES_PER_DEVICE", default=100)
SIGFOX_MAX_QUANTITIES = env.int("SIGFOX_MAX_QUANTITIES", default=500)
# Device types register themselves from deviceTypeId: bounded the same way.
SIGFOX_MAX_DEVICE_TYPES = env.int("SIGFOX_MAX_DEVICE_TYPES", default=1000)

# Callbacks carry a few hundred bytes; anything much larger is not Sigfox.
SIGFOX_MAX_BODY_BYTES = 64 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = SIGFOX_MAX_BODY_BYTES

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "readings.exceptions.exception_handler",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "sigfoxsite API",
    "DESCRIPTION": (
        "Read API of sigfoxsite (devices, messages, readings, downsampled series, link "
        "quality, CSV) and the Sigfox callback endpoints it receives. Read endpoints take a "
        "session (the browser) or `Authorization: Token <key>` (keys are made in the admin); "
        "they are public when PUBLIC_DASHBOARD is set."
    ),
    "VERSION": "1",
    # A device's state (alerts.models.State) under one name wherever it appears.
    "ENUM_NAME_OVERRIDES": {"DeviceStateEnum": "alerts.models.State"},
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No badge fetched from the validator's host: the page loads nothing from elsewhere.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}

# Rate-limit counters; local memory is per worker process, a shared cache
# (e.g. CACHE_URL=redis://127.0.0.1:6379/1 with the redis package) is per site.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

# Production hardening; `manage.py check --deploy` stays clean with DEBUG off.
BEHIND_TLS_PROXY = env.bool("BEHIND_TLS_PROXY", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None
# Proxies (comma-separated addresses or CIDRs) whose X-Forwarded-For is
# believed: the client address is the right-most entry that is not one of
# them. Empty (the default), or a request from any other peer: the socket's
# address. BEHIND_TLS_PROXY alone trusts no X-Forwarded-For.
SIGFOX_TRUSTED_PROXIES = env.list("SIGFOX_TRUSTED_PROXIES", default=[])
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
# Load balancers and uptime checks probe over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# Every record goes through one handler that masks the callback token of a
# ?token= query (sigfoxsite/redact.py; gunicorn's access log does the same,
# gunicorn.conf.py). Django's own handlers for "django" (console when DEBUG)
# and "django.server" (runserver's request lines) would write records
# unmasked: their records go to the root handler instead.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "sigfoxsite.redact.RedactSecrets"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django": {"handlers": [], "propagate": True},
        "django.server": {"handlers": [], "propagate": True},
        # Failed logins and lockouts are warnings; axes' INFO lines add one per try.
        "axes": {"level": "WARNING"},
    },
}

# Alerts (alerts/): where notifications go (Apprise URLs, comma-separated:
# mailtos://user:pass@example.com, ntfys://ntfy.sh/topic, json://host/path),
# the site's address for links in them, and when a silent device is late and
# down (in expected intervals; each device's is learned from its rhythm).
SIGFOX_ALERT_URLS = env.list("SIGFOX_ALERT_URLS", default=[])
SIGFOX_SITE_URL = env.str("SIGFOX_SITE_URL", default="http://127.0.0.1:8000")
SIGFOX_LATE_AFTER = env.float("SIGFOX_LATE_AFTER", default=1.5)
SIGFOX_DOWN_AFTER = env.float("SIGFOX_DOWN_AFTER", default=3.0)
SIGFOX_GRACE_S = env.float("SIGFOX_GRACE_S", default=0.0)
# Seconds between reminders while a device stays down; 0: no reminders.
SIGFOX_ALERT_REMINDER_S = env.float("SIGFOX_ALERT_REMINDER_S", default=0.0)
# Seconds between the worker's passes (manage.py runworker).
SIGFOX_WORKER_INTERVAL_S = env.float("SIGFOX_WORKER_INTERVAL_S", default=30.0)

# Storage (storage/). On PostgreSQL, readings and messages are partitioned by
# time: one partition per "day", "week" or "month" (UTC), created this many
# ahead by the worker. Retention, per site here (per device type and device in
# the admin and the API): days to keep readings with their messages, hourly and
# daily rollups, and messages' raw bodies; empty or 0 keeps forever. The worker
# applies it every SIGFOX_RETENTION_INTERVAL_S seconds.
SIGFOX_PARTITION_INTERVAL = env.str("SIGFOX_PARTITION_INTERVAL", default="month")
SIGFOX_PARTITIONS_AHEAD = env.int("SIGFOX_PARTITIONS_AHEAD", default=2)
SIGFOX_RAW_RETENTION_DAYS = env.int("SIGFOX_RAW_RETENTION_DAYS", default=0) or None
SIGFOX_ROLLUP_RETENTION_DAYS = env.int("SIGFOX_ROLLUP_RETENTION_DAYS", default=0) or None
SIGFOX_BODY_RETENTION_DAYS = env.int("SIGFOX_BODY_RETENTION_DAYS", default=0) or None
SIGFOX_RETENTION_INTERVAL_S = env.float("SIGFOX_RETENTION_INTERVAL_S", default=3600.0)

# The Sigfox REST API (sigfoxapi/): an API user of the Sigfox portal (group ->
# API access), HTTP Basic. Without a login, nothing calls the API. The
# password is a secret: it is never logged.
SIGFOX_API_URL = env.str("SIGFOX_API_URL", default="https://api.sigfox.com/v2")
SIGFOX_API_LOGIN = env.str("SIGFOX_API_LOGIN", default="")
SIGFOX_API_PASSWORD = env.str("SIGFOX_API_PASSWORD", default="")
# Seconds to wait for one answer of the API.
SIGFOX_API_TIMEOUT_S = env.float("SIGFOX_API_TIMEOUT_S", default=30.0)
# Backfill run by the worker: at most this many API requests per hour; how far
# back it looks for spans that may have lost messages (days); a silence in a
# device type's messages longer than this many seconds (and than 3 times its
# usual spacing) is such a span. 0 requests per hour turns it off.
SIGFOX_BACKFILL_CALLS_PER_HOUR = env.int("SIGFOX_BACKFILL_CALLS_PER_HOUR", default=60)
SIGFOX_BACKFILL_LOOKBACK_DAYS = env.float("SIGFOX_BACKFILL_LOOKBACK_DAYS", default=3.0)
SIGFOX_BACKFILL_GAP_S = env.float("SIGFOX_BACKFILL_GAP_S", default=420.0)

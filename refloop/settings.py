"""refloop settings: one module, every value read from the environment through typed helpers.

SQLite under REFLOOP_DATA_DIR is the zero-setup default; set DATABASE_URL for PostgreSQL. A bad value stops
the process with ImproperlyConfigured naming the variable (the `refloop` command prints it as one line).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from refloop.lib.env import debug_secret_key, env_bool, env_int, env_list, env_path, env_secret, env_str

BASE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BASE_DIR.parent

DEBUG = env_bool("REFLOOP_DEBUG", False)
DATA_DIR = env_path("REFLOOP_DATA_DIR", PROJECT_DIR / "var")
# Production must be given its key. A debug checkout gets one generated into the data directory, so every
# process of that checkout (web workers, the task worker, the CLI) signs with the same key.
SECRET_KEY = env_secret("REFLOOP_SECRET_KEY", required=not DEBUG) or debug_secret_key(DATA_DIR)
ALLOWED_HOSTS = env_list("REFLOOP_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("REFLOOP_CSRF_TRUSTED_ORIGINS", [])
PRACTICE_TIME_ZONE = env_str("REFLOOP_TIME_ZONE", "America/New_York")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "csp",
    "ninja",  # the API docs page, served from the wheel's static files (no CDN)
    "django_tasks",
    "django_tasks_db",
    "refloop",
    "refloop.accounts",
    "refloop.practice",
    "refloop.directory",
    "refloop.referrals",
    "refloop.outreach",
    "refloop.insights",
    "refloop.letters",
    "refloop.interop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    "refloop.accounts.middleware.AuditContextMiddleware",
    "refloop.accounts.middleware.IdleTimeoutMiddleware",
    "refloop.accounts.middleware.TwoFactorMiddleware",
    "refloop.middleware.BadInputMiddleware",
]

MIDDLEWARE.append("axes.middleware.AxesMiddleware")  # django-axes: last, so it sees every login answer

ROOT_URLCONF = "refloop.urls"
WSGI_APPLICATION = "refloop.wsgi.application"

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
                "refloop.accounts.context_processors.navigation",
                "refloop.accounts.context_processors.idle_logoff",
                "refloop.referrals.context_processors.referral_counts",
            ],
            "builtins": ["refloop.accounts.templatetags.refloop_tags"],
        },
    },
]


def _database() -> dict:
    url = env_str("DATABASE_URL").strip()
    if not url:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "refloop.sqlite3",
            "OPTIONS": {
                # WAL lets the web server, the worker and the CLI read while one of them writes; IMMEDIATE
                # takes the write lock at BEGIN so two writers queue on the busy timeout instead of failing.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a usable database URL: {exc}") from None
    if config.get("ENGINE") not in {"django.db.backends.postgresql", "django.db.backends.sqlite3"}:
        raise ImproperlyConfigured(
            "DATABASE_URL must point at PostgreSQL (postgres://...) or SQLite (sqlite:///...)"
        )
    if config["ENGINE"] == "django.db.backends.postgresql":
        options = config.setdefault("OPTIONS", {})
        options["connect_timeout"] = env_int("REFLOOP_DB_CONNECT_TIMEOUT", 5, minimum=1)
        # No JIT compilation: the server compiles a query whose estimated cost passes jit_above_cost, and for the
        # dashboard's source lists (a few hundred thousand index rows) that took 20-25 ms of a ~130 ms answer.
        options["options"] = "-c jit=off"
        if env_bool("REFLOOP_DB_PREPARED", True):
            # Parameters bound by the server, and a statement sent five times on a connection is prepared: PostgreSQL
            # then parses and plans it once per connection, not on every request. Half of a referral intake's
            # database CPU was parsing and planning (the rollup upsert alone, 19 kB of SQL, 2-3 ms; issue 8). Off
            # (REFLOOP_DB_PREPARED=0) behind a pooler in transaction mode that cannot keep prepared statements.
            options["server_side_binding"] = True
            options["prepare_threshold"] = 5
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

SESSION_COOKIE_AGE = env_int("REFLOOP_SESSION_SECONDS", 8 * 3600, minimum=300)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_COOKIES = env_bool("REFLOOP_SECURE_COOKIES", not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LANGUAGE_CODE = "en-us"
TIME_ZONE = PRACTICE_TIME_ZONE
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise expects it before the first collectstatic
# plotly.js comes from the plotly wheel itself (served as /static/plotly/plotly.min.js): no CDN.
_PLOTLY_JS_DIR = Path(importlib.util.find_spec("plotly").submodule_search_locations[0]) / "package_data"
STATICFILES_DIRS = [BASE_DIR / "static", ("plotly", _PLOTLY_JS_DIR)]
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": DATA_DIR / "media"},
    },
    "staticfiles": {"BACKEND": "refloop.lib.staticfiles.FreshCompressedStaticFilesStorage"},
}
# Outside `refloop serve` (tests, management commands) whitenoise finds static files in the app folders. `refloop
# serve` collects them first and turns this off: whitenoise then serves the collected files with their gzip and
# brotli copies (finders would shadow them with the uncompressed originals: plotly.js is 4.8 MB, 1 MB as brotli).
WHITENOISE_USE_FINDERS = env_bool("REFLOOP_STATIC_FINDERS", True)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

EMAIL_HOST = env_str("REFLOOP_EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = env_int("REFLOOP_EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("REFLOOP_EMAIL_USER")
EMAIL_HOST_PASSWORD = env_secret("REFLOOP_EMAIL_PASSWORD", required=False)
EMAIL_USE_TLS = env_bool("REFLOOP_EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("REFLOOP_EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("REFLOOP_EMAIL_USE_TLS and REFLOOP_EMAIL_USE_SSL cannot both be on")
EMAIL_TIMEOUT = env_int("REFLOOP_EMAIL_TIMEOUT", 30, minimum=1)
DEFAULT_FROM_EMAIL = env_str("REFLOOP_EMAIL_FROM", "refloop@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("REFLOOP_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}


# ---- Letters and delivery (refloop.letters): letter PDFs, delivery channels, public pages -----------------------
# The address the practice's public pages are reached at (secure letter links in emails, status links).
PUBLIC_URL = env_str("REFLOOP_PUBLIC_URL").strip().rstrip("/")
if PUBLIC_URL and not PUBLIC_URL.startswith(("https://", "http://")):
    raise ImproperlyConfigured(f"REFLOOP_PUBLIC_URL must start with https:// or http://; got {PUBLIC_URL!r}")
# Email carries PHI: by default a letter by email is a secure expiring link, not an attached PDF.
LETTERS_EMAIL_ATTACH_PDF = env_bool("REFLOOP_LETTERS_EMAIL_ATTACH_PDF", False)
LETTERS_LINK_DAYS = env_int("REFLOOP_LETTERS_LINK_DAYS", 14, minimum=1, maximum=365)
# "email:{number}@fax.example" (email-to-fax through the outgoing mail server) or an https:// URL (HTTP gateway).
LETTERS_FAX_GATEWAY = env_str("REFLOOP_FAX_GATEWAY").strip()
if LETTERS_FAX_GATEWAY and not (
    LETTERS_FAX_GATEWAY.startswith(("http://", "https://"))
    or (LETTERS_FAX_GATEWAY.startswith("email:") and "{number}" in LETTERS_FAX_GATEWAY and "@" in LETTERS_FAX_GATEWAY)
):
    raise ImproperlyConfigured(
        "REFLOOP_FAX_GATEWAY must be email:{number}@gateway.example or an http(s):// URL; "
        f"got {LETTERS_FAX_GATEWAY!r}"
    )
LETTERS_FAX_GATEWAY_TOKEN = env_secret("REFLOOP_FAX_GATEWAY_TOKEN", required=False)
LETTERS_FAX_GATEWAY_TIMEOUT = env_int("REFLOOP_FAX_GATEWAY_TIMEOUT", 30, minimum=1)
# Direct secure messaging: the HISP's SMTP relay and the practice's own Direct address.
LETTERS_DIRECT_HOST = env_str("REFLOOP_DIRECT_HOST").strip()
LETTERS_DIRECT_PORT = env_int("REFLOOP_DIRECT_PORT", 587, minimum=1, maximum=65535)
LETTERS_DIRECT_USER = env_str("REFLOOP_DIRECT_USER")
LETTERS_DIRECT_PASSWORD = env_secret("REFLOOP_DIRECT_PASSWORD", required=False)
LETTERS_DIRECT_USE_TLS = env_bool("REFLOOP_DIRECT_USE_TLS", True)
LETTERS_DIRECT_FROM = env_str("REFLOOP_DIRECT_FROM").strip()
# Automatic retries of a failed delivery: the waits between attempts, in seconds; then a person decides.
_retry_waits = env_list("REFLOOP_DELIVERY_RETRY_SECONDS", ["60", "300", "1800", "7200"])
try:
    LETTERS_RETRY_SECONDS = [int(wait) for wait in _retry_waits]
except ValueError:
    raise ImproperlyConfigured(
        f"REFLOOP_DELIVERY_RETRY_SECONDS must be whole seconds separated by commas; got {_retry_waits!r}"
    ) from None
if any(wait < 0 for wait in LETTERS_RETRY_SECONDS):
    raise ImproperlyConfigured("REFLOOP_DELIVERY_RETRY_SECONDS must not hold a negative wait")
# A send that has not finished after this long belongs to a worker that died; it is taken back.
LETTERS_LEASE_SECONDS = env_int("REFLOOP_DELIVERY_LEASE_SECONDS", 300, minimum=1)
LETTERS_STATUS_LINK_DAYS = env_int("REFLOOP_STATUS_LINK_DAYS", 90, minimum=1, maximum=730)
# Public pages (status links, secure letter links, the referral form): requests per client address and per
# token in each 10-minute window, counted in the database so every web worker shares the count.
LETTERS_RATE_PER_IP = env_int("REFLOOP_PUBLIC_RATE_PER_IP", 60, minimum=1)
LETTERS_RATE_PER_TOKEN = env_int("REFLOOP_PUBLIC_RATE_PER_TOKEN", 30, minimum=1)
# Behind a proxy, the request header holding the client address (e.g. HTTP_X_FORWARDED_FOR); else REMOTE_ADDR.
LETTERS_CLIENT_IP_HEADER = env_str("REFLOOP_CLIENT_IP_HEADER").strip()
# The public referral form must be at least this old and at most this old when it is sent back.
LETTERS_FORM_MIN_SECONDS = env_int("REFLOOP_REFER_FORM_MIN_SECONDS", 3, minimum=0)
LETTERS_FORM_MAX_SECONDS = env_int("REFLOOP_REFER_FORM_MAX_SECONDS", 4 * 3600, minimum=60)
# WeasyPrint logs every layout step at INFO; the worker's log should show deliveries, not page layout.
LOGGING["loggers"].update({"weasyprint": {"level": "WARNING"}, "fontTools": {"level": "WARNING"}})
# ---- end of letters and delivery -----------------------------------------------------------------------------

# ---- HL7 v2 (refloop/interop/hl7) ----------------------------------------------------------------------------
# MSH-3/MSH-4 of every message refloop writes (ACKs and status messages).
HL7_APPLICATION = env_str("REFLOOP_HL7_APPLICATION", "REFLOOP").strip() or "REFLOOP"
HL7_FACILITY = env_str("REFLOOP_HL7_FACILITY", "").strip()
# Where status messages (RRI^I12, OSU^O51, SIU^S12/S13/S15/S26) go over MLLP: host:port. Unset: each message
# is still written and kept as queued, unsent, so nothing is lost when an interface engine is added later.
HL7_DESTINATION = env_str("REFLOOP_HL7_DESTINATION", "").strip()
if HL7_DESTINATION:
    _hl7_host, _, _hl7_port = HL7_DESTINATION.rpartition(":")
    if not _hl7_host or not _hl7_port.isdigit() or not 0 < int(_hl7_port) < 65536:
        raise ImproperlyConfigured(f"REFLOOP_HL7_DESTINATION must be host:port; got {HL7_DESTINATION!r}")
HL7_ACK_TIMEOUT = env_int("REFLOOP_HL7_ACK_TIMEOUT", 30, minimum=1)
_hl7_waits = env_list("REFLOOP_HL7_RETRY_SECONDS", ["30", "120", "600", "3600"])
if not all(wait.isdigit() for wait in _hl7_waits):
    raise ImproperlyConfigured(
        f"REFLOOP_HL7_RETRY_SECONDS must be whole seconds separated by commas; got {_hl7_waits!r}"
    )
HL7_RETRY_SECONDS = [int(wait) for wait in _hl7_waits]
# A send not finished after this long belongs to a worker that died: it is taken back and sent again (same MSH-10).
HL7_LEASE_SECONDS = env_int("REFLOOP_HL7_LEASE_SECONDS", 120, minimum=1)
# Largest inbound message the MLLP listener takes, in bytes (a referral with embedded documents can be large).
HL7_MAX_MESSAGE_BYTES = env_int("REFLOOP_HL7_MAX_MESSAGE_BYTES", 20_000_000, minimum=10_000)
# Root OID of the identifiers refloop gives in C-CDA documents (the practice's registered OID, if it has one);
# unset: an OID under 2.25 derived from the practice's NPI or name.
INTEROP_OID_ROOT = env_str("REFLOOP_OID_ROOT", "").strip()
# ---- end of HL7 v2 -------------------------------------------------------------------------------------------


# ---- Security (refloop.accounts): lockout, two-factor, idle logoff, HTTPS, Content Security Policy ------------
# django-axes: after this many failed passwords for one username, that account is locked for the cool-off.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("REFLOOP_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("REFLOOP_LOCKOUT_MINUTES", 15, minimum=1))
# Locked by username, not address: a practice's staff share one address behind its router.
# axes.W006 warns that rotating user agents or cookies dodges an address-based count; the count here is per
# username, which neither dodges, and counting per address too would lock the whole office out at once.
AXES_LOCKOUT_PARAMETERS = ["username"]
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_VERBOSE = False  # failures and lockouts go to the audit trail, not the log
LOGGING["loggers"]["axes"] = {"level": "WARNING"}
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_IPWARE_META_PRECEDENCE_ORDER = [env_str("REFLOOP_CLIENT_IP_HEADER").strip() or "REMOTE_ADDR"]
# django-otp: TOTP (authenticator apps); the issuer names the entry in the app.
OTP_TOTP_ISSUER = env_str("REFLOOP_TOTP_ISSUER", "refloop")
# Password reset links expire after this long.
PASSWORD_RESET_TIMEOUT = env_int("REFLOOP_PASSWORD_RESET_HOURS", 24, minimum=1, maximum=24 * 7) * 3600
# HTTPS: on by default in production (REFLOOP_SECURE_COOKIES); behind a TLS proxy set REFLOOP_PROXY_SSL_HEADER=1
# so the X-Forwarded-Proto header the proxy sets is believed.
SECURE_SSL_REDIRECT = env_bool("REFLOOP_SSL_REDIRECT", SECURE_COOKIES)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain HTTP inside the network
if env_bool("REFLOOP_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int("REFLOOP_HSTS_SECONDS", 31_536_000 if SECURE_COOKIES else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("REFLOOP_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("REFLOOP_HSTS_PRELOAD", True)
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
CSRF_COOKIE_HTTPONLY = True
# Content Security Policy (django-csp): scripts only from this server (no inline script, no eval). Styles may be
# inline because plotly.js sets style attributes on the charts it draws.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# ---- end of security ------------------------------------------------------------------------------------------

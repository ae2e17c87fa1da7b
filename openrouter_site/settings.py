"""Settings, read from the environment.

No DATABASE_URL means SQLite, no REDIS_URL means an in-process cache and eager Celery tasks:
the embedded default that `make run` uses. Every variable is listed in `.env.example`; manage.py
(so `make run`) reads a `.env` file before this module loads (common.env.load_env_file).
"""

from __future__ import annotations

import socket
from pathlib import Path

import dj_database_url

from common.env import env_bool, env_int, env_list, env_str, env_with_suffix

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", default=False)
SECRET_KEY = env_str("SECRET_KEY", "insecure-local-development-key-change-me")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
# Browser origins allowed to call /api/v1 (CORS); `*` (any page, as OpenRouter's API allows) by default.
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", "*")
# Where `manage.py serve` (make run) listens; SITE_URL (links in emails, banners) follows unless set.
HOST = env_str("HOST", "127.0.0.1")
PORT = env_int("PORT", 8000)
SITE_URL = env_str("SITE_URL") or f"http://{HOST}:{PORT}"
SITE_NAME = env_str("SITE_NAME", "OpenRouter Site")
# uvicorn's per-request access log (manage.py serve); off by default so the console stays readable.
ACCESS_LOG = env_bool("ACCESS_LOG", default=False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.sites",
    "rest_framework",
    "django_htmx",
    "template_partials",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "accounts",
    "organizations",
    "billing",
    "proxy",
    "analytics",
]

SOCIAL_PROVIDERS: dict[str, dict[str, object]] = {}
if env_str("GITHUB_CLIENT_ID"):
    INSTALLED_APPS.append("allauth.socialaccount.providers.github")
    SOCIAL_PROVIDERS["github"] = {
        "APPS": [{"client_id": env_str("GITHUB_CLIENT_ID"), "secret": env_str("GITHUB_CLIENT_SECRET")}],
        "SCOPE": ["user:email"],
    }
if env_str("GOOGLE_CLIENT_ID"):
    INSTALLED_APPS.append("allauth.socialaccount.providers.google")
    SOCIAL_PROVIDERS["google"] = {
        "APPS": [{"client_id": env_str("GOOGLE_CLIENT_ID"), "secret": env_str("GOOGLE_CLIENT_SECRET")}],
        "SCOPE": ["profile", "email"],
    }
# Single sign-on for teams: any OpenID Connect identity provider (Okta, Entra ID, Google Workspace,
# Keycloak, Authentik...). OIDC_SERVER_URL is the provider's issuer URL (its discovery document lives
# under /.well-known/openid-configuration); the redirect URI to register with it is
# <SITE_URL>/accounts/oidc/<OIDC_PROVIDER_ID>/login/callback/.
if env_str("OIDC_CLIENT_ID"):
    INSTALLED_APPS.append("allauth.socialaccount.providers.openid_connect")
    SOCIAL_PROVIDERS["openid_connect"] = {
        "OAUTH_PKCE_ENABLED": True,
        "APPS": [
            {
                "provider_id": env_str("OIDC_PROVIDER_ID", "sso"),
                "name": env_str("OIDC_NAME", "Single sign-on"),
                "client_id": env_str("OIDC_CLIENT_ID"),
                "secret": env_str("OIDC_CLIENT_SECRET"),
                "settings": {"server_url": env_str("OIDC_SERVER_URL"), "token_auth_method": "client_secret_post"},
            }
        ],
    }
# SAML 2.0 single sign-on (python3-saml): the IdP's entity id, SSO URL and signing certificate (PEM
# body or a path via SAML_IDP_X509CERT_FILE). Our metadata, to give the IdP, is served at
# <SITE_URL>/accounts/saml/<SAML_SLUG>/metadata/; the ACS is .../acs/.
if env_str("SAML_IDP_ENTITY_ID"):
    INSTALLED_APPS.append("allauth.socialaccount.providers.saml")
    SOCIAL_PROVIDERS["saml"] = {
        "APPS": [
            {
                "client_id": env_str("SAML_SLUG", "saml"),
                "name": env_str("SAML_NAME", "SAML single sign-on"),
                "settings": {
                    "idp": {
                        "entity_id": env_str("SAML_IDP_ENTITY_ID"),
                        "sso_url": env_str("SAML_IDP_SSO_URL"),
                        "x509cert": env_str("SAML_IDP_X509CERT"),
                    },
                    "attribute_mapping": {
                        "uid": ["uid", "urn:oasis:names:tc:SAML:attribute:subject-id"],
                        "email": [
                            "email",
                            "urn:oid:0.9.2342.19200300.100.1.3",
                            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
                        ],
                        "first_name": ["givenName", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"],
                        "last_name": ["sn", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"],
                    },
                    "advanced": {"strict": True, "reject_idp_initiated_sso": True},
                },
            }
        ],
    }
SAML_TRUST_EMAIL = env_bool("SAML_TRUST_EMAIL", default=True)
SOCIALACCOUNT_ADAPTER = "organizations.adapters.SocialAccountAdapter"
SOCIALACCOUNT_PROVIDERS = SOCIAL_PROVIDERS
# Whoever signs in with a verified address at one of these domains joins that organization:
# "example.com=acme:member,example.org=acme:admin" (domain=organization slug:role; owner is refused).
SSO_AUTO_JOIN = env_list("SSO_AUTO_JOIN", "")

MIDDLEWARE = [
    # First: whatever any later layer answers under /api/ (404, 405, 500 pages) leaves as JSON.
    "proxy.api.middleware.ApiJsonErrorsMiddleware",
    "openrouter_site.request_guard.RefuseNulBytesMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # WhiteNoise, streaming files asynchronously under ASGI (no "synchronous iterators" warning per page).
    "openrouter_site.static_files.AsgiWhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "organizations.middleware.CurrentOrganizationMiddleware",
    # Last: the audit context (source, IP, actor) wraps the view, where services record changes.
    "organizations.audit.AuditContextMiddleware",
]

ROOT_URLCONF = "openrouter_site.urls"
WSGI_APPLICATION = "openrouter_site.wsgi.application"
ASGI_APPLICATION = "openrouter_site.asgi.application"

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
                "organizations.context_processors.organizations",
                "openrouter_site.context_processors.site",
            ],
        },
    }
]

DATABASE_URL = env_str("DATABASE_URL", "")
# The embedded default (`make run` with no DATABASE_URL): one process on SQLite, mail to the console.
EMBEDDED = not DATABASE_URL
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(BASE_DIR / "var" / "db.sqlite3"),
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "")
# REDIS_URL names a seed node of a Redis Cluster (common/redis.py then hands out cluster clients).
# Django's cache and Celery's broker talk to one node only, so a cluster needs a plain Redis for them.
REDIS_CLUSTER = env_bool("REDIS_CLUSTER", False)
# The credit gate's hash-tag shards (billing/gate/keys.py): fixed for the life of a Redis dataset.
GATE_SHARDS = env_int("GATE_SHARDS", 8)
CACHE_URL = env_str("CACHE_URL", "" if REDIS_CLUSTER else REDIS_URL)
if REDIS_CLUSTER and not (CACHE_URL and env_str("CELERY_BROKER_URL")):
    raise ValueError("REDIS_CLUSTER needs CACHE_URL and CELERY_BROKER_URL on a non-cluster Redis")
if CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL and not env_str("CELERY_BROKER_URL")
CELERY_TASK_EAGER_PROPAGATES = True
# Settlement tasks must survive a killed worker: ack only after the work is committed.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The settlement worker's consumer name in the usage stream's group: stable across restarts, so a
# restarted worker re-reads the batch it held when it was killed before anything new.
SETTLEMENT_CONSUMER = env_str("SETTLEMENT_CONSUMER") or socket.gethostname()  # empty counts as unset
# The embedded default has no broker, so no beat: openrouter_site.scheduler runs CELERY_BEAT_SCHEDULE
# inside the server process instead. Off wherever Celery beat runs (a broker is configured).
IN_PROCESS_SCHEDULER = env_bool("IN_PROCESS_SCHEDULER", default=CELERY_TASK_ALWAYS_EAGER)
SCHEDULER_STATE_FILE = BASE_DIR / "var" / "scheduler-state.json"
# The embedded gate's free-model and BYOK request counters (no Redis to keep them across restarts).
# Only in the embedded default: with a database server, the gate keeps them in Redis.
GATE_COUNTERS_FILE = BASE_DIR / "var" / "gate-counters.json" if EMBEDDED else None
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "settle-usage": {"task": "billing.settle_usage", "schedule": 1.0},
    "release-expired-reservations": {"task": "billing.reservations_expire", "schedule": 30.0},
    "usage-reconcile": {"task": "billing.usage_reconcile", "schedule": 300.0},
    "crypto-scan": {"task": "payments.crypto_scan", "schedule": 15.0},
    "auto-topup": {"task": "payments.auto_topup_check", "schedule": 60.0},
    "audit-purge": {"task": "organizations.audit_purge", "schedule": 3600.0},
    "prompt-log-purge": {"task": "billing.prompt_log_purge", "schedule": 3600.0},
    # Hour/day usage rollups behind the activity charts and /api/v1/activity (idempotent, watermarked).
    "analytics-rollup": {"task": "analytics.rollup_usage", "schedule": 60.0},
}

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
SITE_ID = 1
LOGIN_REDIRECT_URL = "/keys/"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
# Mandatory in production; optional in the embedded default, where mail only reaches the console.
ACCOUNT_EMAIL_VERIFICATION = env_str("ACCOUNT_EMAIL_VERIFICATION") or ("optional" if EMBEDDED else "mandatory")
# Following the link (in the browser that signed up) signs the user in rather than asking again.
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_ADAPTER = "organizations.adapters.AccountAdapter"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = env_str("ACCOUNT_EMAIL_SUBJECT_PREFIX", f"[{SITE_NAME}] ")
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if SITE_URL.startswith("https") else "http"

# The console backend here frames each message and its links so a verification link stands out.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "openrouter_site.mail.ConsoleEmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", f"{SITE_NAME} <noreply@localhost>")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["proxy.api.drf.BearerKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "proxy.api.drf.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# The management API's OpenAPI document, served at /api/v1/openapi.json and fuzzed by schemathesis in tests.
# drf_spectacular is deliberately not in INSTALLED_APPS: its system check would generate the schema on every
# `manage.py check` and turn schema warnings into `check --deploy` failures; the view needs no app.
SPECTACULAR_SETTINGS = {
    "TITLE": "OpenRouter-compatible management API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "PREPROCESSING_HOOKS": ["billing.api.schema.only_api_v1"],
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
# Serve straight from the app and project static folders, so `make run` needs no collectstatic;
# a deployment that runs collectstatic gets the same URLs from STATIC_ROOT.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django logs every 4xx as a WARNING ("Not Found: /favicon.ico"); a 404 is a normal answer, not news.
        # Errors (5xx) still reach django.request's ERROR level.
        "django.request": {"level": "ERROR"},
    },
}

# --- Product settings -------------------------------------------------------------------------
# BYOK provider keys are encrypted with these (comma list, first encrypts, all decrypt: rotation).
BYOK_ENCRYPTION_KEYS = env_list("BYOK_ENCRYPTION_KEYS", "")
# Opted-in organizations' prompt logs are encrypted with these (separate from BYOK's; same rotation
# scheme: manage.py prompt_log_rotate). Empty: prompt logging cannot be switched on.
PROMPT_LOG_ENCRYPTION_KEYS = env_list("PROMPT_LOG_ENCRYPTION_KEYS", "")
# Audit events older than this are purged hourly (organizations.audit_purge); 0 keeps them forever.
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 365)
# /metrics answers loopback clients; others only with `Authorization: Bearer <METRICS_TOKEN>` (empty: never).
METRICS_TOKEN = env_str("METRICS_TOKEN")
# prometheus_client reads this variable itself in every worker; the view sums the files found there.
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR")
BYOK_FEE_PERCENT = env_int("BYOK_FEE_PERCENT", 5)
BYOK_FREE_REQUESTS_PER_MONTH = env_int("BYOK_FREE_REQUESTS_PER_MONTH", 1_000_000)
DEMO_CREDITS_USD = env_int("DEMO_CREDITS_USD", 5)
# demo_setup keeps the demo key and password here (0600) to print the same ones on every run.
DEMO_CREDENTIALS_FILE = BASE_DIR / "var" / "demo-credentials.json"
CATALOG_FILE = env_str("CATALOG_FILE", str(BASE_DIR / "proxy" / "catalog" / "catalog.json"))
MAX_REQUEST_BYTES = env_int("MAX_REQUEST_BYTES", 10 * 1024 * 1024)
# A client has this long to send its whole request body, or gets 408 (a stalled upload holds nothing).
REQUEST_BODY_TIMEOUT_SECONDS = env_int("REQUEST_BODY_TIMEOUT_SECONDS", 30)
# OpenTelemetry traces of completions (OTLP over HTTP, e.g. http://collector:4318); empty = off, and free.
OTEL_EXPORTER_OTLP_ENDPOINT = env_str("OTEL_EXPORTER_OTLP_ENDPOINT")
OTEL_SERVICE_NAME = env_str("OTEL_SERVICE_NAME", "openrouter-gateway")
# Retry budget: upstream attempts per request across providers and fallback models.
GATEWAY_MAX_ATTEMPTS = env_int("GATEWAY_MAX_ATTEMPTS", 4)
# Seconds of upstream silence before a stream starts sending `: OPENROUTER PROCESSING` comments.
GATEWAY_KEEPALIVE_SECONDS = float(env_str("GATEWAY_KEEPALIVE_SECONDS", "2.0"))
# Output tokens a credit hold assumes when neither the request (max_tokens) nor the endpoint
# (max_completion_tokens) limits the answer.
GATEWAY_HOLD_MAX_OUTPUT_TOKENS = env_int("GATEWAY_HOLD_MAX_OUTPUT_TOKENS", 32_768)
# The largest PDF the file-parser plugin extracts text from (decoded bytes); bigger ones are a 413.
FILE_PARSER_MAX_BYTES = env_int("FILE_PARSER_MAX_BYTES", 8 * 1024 * 1024)
# Sticky routing (proxy/routing/sticky.py): how long a conversation stays on the endpoint that last
# answered it after its latest success, and how many conversations each process remembers.
STICKY_ROUTING_TTL_SECONDS = env_int("STICKY_ROUTING_TTL_SECONDS", 300)
STICKY_ROUTING_MAX_ENTRIES = env_int("STICKY_ROUTING_MAX_ENTRIES", 50_000)
# A fixed `openrouter/auto` ranking, best first; empty: the scored policy (quality, price, latency; docs/routing.md).
AUTO_ROUTER_MODELS = env_list("AUTO_ROUTER_MODELS", "")
# Models `openrouter/auto` and `openrouter/free` try (primary + fallbacks).
AUTO_ROUTER_FALLBACKS = env_int("AUTO_ROUTER_FALLBACKS", 3)
# The web search plugin (`plugins: [{"id": "web"}]`, `:online`; proxy/plugins/web): engines are
# enabled by their settings; the default engine is used when a request names none.
WEB_SEARCH_SEARXNG_URL = env_str("WEB_SEARCH_SEARXNG_URL")
WEB_SEARCH_TAVILY_API_KEY = env_str("WEB_SEARCH_TAVILY_API_KEY")
WEB_SEARCH_TAVILY_URL = env_str("WEB_SEARCH_TAVILY_URL", "https://api.tavily.com")
WEB_SEARCH_DEFAULT_ENGINE = env_str("WEB_SEARCH_DEFAULT_ENGINE")  # empty: tavily if keyed, else searxng
WEB_SEARCH_TIMEOUT_SECONDS = float(env_str("WEB_SEARCH_TIMEOUT_SECONDS", "10"))
# Priced as OpenRouter prices Exa: per search, the first results included, then per result (nanos).
WEB_SEARCH_PRICE_NANOS = env_int("WEB_SEARCH_PRICE_NANOS", 7_000_000)
WEB_SEARCH_RESULT_PRICE_NANOS = env_int("WEB_SEARCH_RESULT_PRICE_NANOS", 1_000_000)
WEB_SEARCH_INCLUDED_RESULTS = env_int("WEB_SEARCH_INCLUDED_RESULTS", 10)
# Endpoint health and circuit breaker (docs/routing.md): what opens a circuit, for how long.
HEALTH_CB_FAILURES = env_int("HEALTH_CB_FAILURES", 5)
HEALTH_CB_ERROR_RATE = float(env_str("HEALTH_CB_ERROR_RATE", "0.5"))
HEALTH_CB_MIN_REQUESTS = env_int("HEALTH_CB_MIN_REQUESTS", 10)
HEALTH_CB_WINDOW_S = env_int("HEALTH_CB_WINDOW_S", 60)
HEALTH_CB_COOLDOWN_S = float(env_str("HEALTH_CB_COOLDOWN_S", "30"))
HEALTH_CB_PROBE_TTL_S = float(env_str("HEALTH_CB_PROBE_TTL_S", "30"))
# A breaker opens only on failures from this many organizations: one tenant cannot open it for all.
HEALTH_CB_MIN_ORGS = env_int("HEALTH_CB_MIN_ORGS", 2)
HEALTH_OUTAGE_MIN_ERRORS = env_int("HEALTH_OUTAGE_MIN_ERRORS", 2)
# Upstream credentials: <SLUG>_API_KEY / <SLUG>_BASE_URL for any catalog provider slug, an open-ended
# family, so collected by suffix once at startup (proxy/credentials.py maps a slug to its names).
PROVIDER_ENV = env_with_suffix("_API_KEY", "_BASE_URL")
# A hold's lease: a running request renews it every quarter lease (billing/gate/lease.py); the holds
# of a process that died are released about one lease (plus a housekeeping tick) later.
RESERVATION_TTL_SECONDS = env_int("RESERVATION_TTL_SECONDS", 60)
FREE_MODEL_RPM = env_int("FREE_MODEL_RPM", 20)
FREE_MODEL_RPD_NO_CREDITS = env_int("FREE_MODEL_RPD_NO_CREDITS", 50)
FREE_MODEL_RPD_WITH_CREDITS = env_int("FREE_MODEL_RPD_WITH_CREDITS", 1000)
FREE_MODEL_CREDITS_THRESHOLD_USD = env_int("FREE_MODEL_CREDITS_THRESHOLD_USD", 10)

STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
STRIPE_PUBLISHABLE_KEY = env_str("STRIPE_PUBLISHABLE_KEY")
# Point at a Stripe stand-in for staging; every Stripe call is bounded by the timeout so a hung API
# answers the user with an error quickly instead of holding the request past proxy timeouts.
STRIPE_API_BASE = env_str("STRIPE_API_BASE") or "https://api.stripe.com"
STRIPE_TIMEOUT_SECONDS = env_int("STRIPE_TIMEOUT_SECONDS", 8)
# Auto top-up calls Stripe with at most this many idempotency keys per attempt before giving up with a notice.
AUTO_TOPUP_MAX_ATTEMPTS = env_int("AUTO_TOPUP_MAX_ATTEMPTS", 3)

CRYPTO_XPUB = env_str("CRYPTO_XPUB")
# Blocks a USDC transfer must be buried under before it is credited (reorg safety), per chain.
CRYPTO_CONFIRMATIONS = {
    1: env_int("ETHEREUM_CONFIRMATIONS", 64),
    137: env_int("POLYGON_CONFIRMATIONS", 128),
    8453: env_int("BASE_CONFIRMATIONS", 300),
}
CRYPTO_MIN_DEPOSIT_USD = env_int("CRYPTO_MIN_DEPOSIT_USD", 1)
CRYPTO_MAX_BLOCK_RANGE = env_int("CRYPTO_MAX_BLOCK_RANGE", 2000)
CRYPTO_RPC_TIMEOUT_SECONDS = env_int("CRYPTO_RPC_TIMEOUT_SECONDS", 10)
CRYPTO_RPC_URLS = {
    1: env_str("ETHEREUM_RPC_URL"),
    137: env_str("POLYGON_RPC_URL"),
    8453: env_str("BASE_RPC_URL"),
}
# Only these token contracts count (a look-alike token emits the same Transfer event): Circle's native
# USDC by default; Polygon's bridged USDC.e is deliberately not accepted.
CRYPTO_TOKENS = {
    1: env_list("ETHEREUM_USDC_CONTRACTS", "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"),
    137: env_list("POLYGON_USDC_CONTRACTS", "0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359"),
    8453: env_list("BASE_USDC_CONTRACTS", "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),
}
# What each RPC must answer to eth_chainId; differs only for a stand-in node (a local test chain).
CRYPTO_RPC_CHAIN_IDS = {
    1: env_int("ETHEREUM_RPC_CHAIN_ID", 1),
    137: env_int("POLYGON_RPC_CHAIN_ID", 137),
    8453: env_int("BASE_RPC_CHAIN_ID", 8453),
}
# First block to scan per chain; unset means the head when the chain's first deposit address was shown.
CRYPTO_START_BLOCKS = {
    chain_id: int(block)
    for chain_id, block in (
        (1, env_str("ETHEREUM_START_BLOCK")),
        (137, env_str("POLYGON_START_BLOCK")),
        (8453, env_str("BASE_START_BLOCK")),
    )
    if block
}

# --- HTTPS hardening -----------------------------------------------------------------------------
# Behind TLS, HTTPS=1 turns on every default below (`manage.py check --deploy` is then clean); each
# can also be set on its own.
HTTPS = env_bool("HTTPS", default=False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=HTTPS)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]  # load balancers probe over plain HTTP
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=HTTPS)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=HTTPS)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=HTTPS)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=False)
# Preload is the domain owner's decision (anyone may submit a domain whose header says "preload", and
# leaving the list takes months), so it stays off unless asked for, and check --deploy is told so.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
# Only behind a proxy that sets (and overwrites) X-Forwarded-Proto: otherwise a client could forge it.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("TRUST_X_FORWARDED_PROTO") else None
USE_X_FORWARDED_HOST = env_bool("USE_X_FORWARDED_HOST", default=False)

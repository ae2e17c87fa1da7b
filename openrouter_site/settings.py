"""Settings, read from the environment.

No DATABASE_URL means SQLite, no REDIS_URL means an in-process cache and eager Celery tasks:
the embedded default that `make run` uses. Every variable is listed in `.env.example`.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url

from common.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", default=False)
SECRET_KEY = env_str("SECRET_KEY", "insecure-local-development-key-change-me")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

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
SOCIALACCOUNT_PROVIDERS = SOCIAL_PROVIDERS

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "organizations.middleware.CurrentOrganizationMiddleware",
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
            ],
        },
    }
]

DATABASE_URL = env_str("DATABASE_URL", "")
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
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
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
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "settle-usage": {"task": "billing.settle_usage", "schedule": 1.0},
    "release-expired-reservations": {"task": "billing.reservations_expire", "schedule": 30.0},
    "crypto-scan": {"task": "billing.crypto_scan", "schedule": 15.0},
    "auto-topup": {"task": "billing.auto_topup_check", "schedule": 60.0},
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
ACCOUNT_EMAIL_VERIFICATION = env_str("ACCOUNT_EMAIL_VERIFICATION", "mandatory")
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = env_str("ACCOUNT_EMAIL_SUBJECT_PREFIX", "[OpenRouter Site] ")
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if SITE_URL.startswith("https") else "http"

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "OpenRouter Site <noreply@localhost>")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["proxy.api.drf.BearerKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "proxy.api.drf.exception_handler",
    "UNAUTHENTICATED_USER": None,
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
}

# --- Product settings -------------------------------------------------------------------------
# API-key secrets never reach the database; this pepper is part of the stored digest.
API_KEY_PEPPER = env_str("API_KEY_PEPPER", SECRET_KEY)
# BYOK provider keys are encrypted with these (comma list, first encrypts, all decrypt: rotation).
BYOK_ENCRYPTION_KEYS = env_list("BYOK_ENCRYPTION_KEYS", "")
BYOK_FEE_PERCENT = env_int("BYOK_FEE_PERCENT", 5)
BYOK_FREE_REQUESTS_PER_MONTH = env_int("BYOK_FREE_REQUESTS_PER_MONTH", 1_000_000)
DEMO_CREDITS_USD = env_int("DEMO_CREDITS_USD", 5)
CATALOG_FILE = env_str("CATALOG_FILE", str(BASE_DIR / "proxy" / "catalog" / "catalog.json"))
MAX_REQUEST_BYTES = env_int("MAX_REQUEST_BYTES", 10 * 1024 * 1024)
# Retry budget: upstream attempts per request across providers and fallback models.
GATEWAY_MAX_ATTEMPTS = env_int("GATEWAY_MAX_ATTEMPTS", 4)
# Seconds of upstream silence before a stream starts sending `: OPENROUTER PROCESSING` comments.
GATEWAY_KEEPALIVE_SECONDS = float(env_str("GATEWAY_KEEPALIVE_SECONDS", "2.0"))
# Output tokens a credit hold assumes when neither the request (max_tokens) nor the endpoint
# (max_completion_tokens) limits the answer.
GATEWAY_HOLD_MAX_OUTPUT_TOKENS = env_int("GATEWAY_HOLD_MAX_OUTPUT_TOKENS", 32_768)
# Upper bound on how long a reservation may live if its request never reports back.
RESERVATION_TTL_SECONDS = env_int("RESERVATION_TTL_SECONDS", 900)
FREE_MODEL_RPM = env_int("FREE_MODEL_RPM", 20)
FREE_MODEL_RPD_NO_CREDITS = env_int("FREE_MODEL_RPD_NO_CREDITS", 50)
FREE_MODEL_RPD_WITH_CREDITS = env_int("FREE_MODEL_RPD_WITH_CREDITS", 1000)
FREE_MODEL_CREDITS_THRESHOLD_USD = env_int("FREE_MODEL_CREDITS_THRESHOLD_USD", 10)

STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
STRIPE_PUBLISHABLE_KEY = env_str("STRIPE_PUBLISHABLE_KEY")

CRYPTO_XPUB = env_str("CRYPTO_XPUB")
# Blocks a USDC transfer must be buried under before it is credited (reorg safety), per chain.
CRYPTO_CONFIRMATIONS = {
    1: env_int("ETHEREUM_CONFIRMATIONS", 64),
    137: env_int("POLYGON_CONFIRMATIONS", 128),
    8453: env_int("BASE_CONFIRMATIONS", 300),
}
CRYPTO_MIN_DEPOSIT_USD = env_int("CRYPTO_MIN_DEPOSIT_USD", 1)
CRYPTO_MAX_BLOCK_RANGE = env_int("CRYPTO_MAX_BLOCK_RANGE", 2000)
CRYPTO_RPC_URLS = {
    1: env_str("ETHEREUM_RPC_URL"),
    137: env_str("POLYGON_RPC_URL"),
    8453: env_str("BASE_RPC_URL"),
}

"""Settings for tutor. Everything that differs between a laptop and production comes from the environment.

Embedded default (no server installed): SQLite, in-memory channel layer, eager Celery, `authored` backend.
At scale: DATABASE_URL=postgres://..., REDIS_URL=redis://... (channel layer + Celery broker), TUTOR_LLM=openai
with TUTOR_LLM_URL pointing at a vLLM server.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from tutor.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and env_bool("TUTOR_PRODUCTION", False):
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when TUTOR_PRODUCTION=1")
    SECRET_KEY = "insecure-development-key-set-DJANGO_SECRET_KEY-in-production"
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "courses",
    "tutor",
    "tutor.lti",
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
    # after XFrameOptionsMiddleware: LMS launches may be framed by registered platforms only, the rest is DENY
    "tutor.lti.middleware.LtiFrameMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "tutor.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "tutor.urls"
ASGI_APPLICATION = "tutor.asgi.application"

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

_DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {
    "default": dj_database_url.parse(
        _DATABASE_URL,
        # Keep server connections open between requests: opening one per request costs a backend fork each time.
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0 if _DATABASE_URL.startswith("sqlite") else 60),
        # Off: a health check is a `SELECT 1` round trip on the first use of a connection after every
        # `close_old_connections()`, and Channels calls that before and after each `database_sync_to_async` call,
        # so it would cost one round trip per socket action. Without it, a kept
        # connection that died with a database restart is still replaced: its first use fails (the socket answers
        # with a "try again" notice; an answer's Celery task retries), Django marks it errored, and the
        # `close_old_connections()` after that call closes it; the next call connects afresh. So after a restart
        # each kept connection fails once (one per socket database thread per process, one per Celery worker)
        # where the check would have replaced it unseen. The same holds with the pool below (a pooled connection
        # is checked when taken only with health checks on). DATABASE_CONN_HEALTH_CHECKS=1 buys that back for the
        # round trip.
        conn_health_checks=env_bool("DATABASE_CONN_HEALTH_CHECKS", False),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let the ASGI server and a Celery worker share the file without "database is locked".
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;",
                                       # take the write lock when a transaction starts: one that read first and
                                       # then wrote fails at once ("database is locked") if another wrote between
                                       "transaction_mode": "IMMEDIATE"}
    # A file, not memory: the browser tests' in-process server shares it with the test thread. One per test
    # process, so that two suites running side by side never share (and corrupt) one file.
    (BASE_DIR / "var").mkdir(exist_ok=True)
    DATABASES["default"]["TEST"] = {"NAME": BASE_DIR / "var" / f"test-{os.getpid()}.sqlite3"}
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}
    if env_bool("DATABASE_POOL", True):
        # A pool per process (psycopg_pool, Django's own support), as Django advises under ASGI: each HTTP request
        # runs on a thread of its own, so a kept connection served one request and a new one was opened for the
        # next (PostgreSQL forking a backend and planning on cold caches: ~10 a second under load, 1 in 3 of
        # its planning time). Connections go back to the pool when Django closes them, so CONN_MAX_AGE is 0.
        # DATABASE_POOL=0 brings back one kept connection per thread (DATABASE_CONN_MAX_AGE).
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 2, "max_size": env_int("DATABASE_POOL_MAX_SIZE", 16), "timeout": 10}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("TUTOR_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # collectstatic's target; whitenoise warns at every start without it
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True  # serve straight from the app folders in development and tests
MEDIA_ROOT = Path(env_str("TUTOR_MEDIA_ROOT", str(BASE_DIR / "media")))
MEDIA_URL = "media/"

# --- Channels and Celery: Redis when REDIS_URL is set, in-process otherwise ------------------------
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = False
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CELERY_BROKER_URL = "memory://"
    CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
# The cache backs the rate limiter (tutor/ratelimit.py): shared by every process through Redis when there is one.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                "KEY_PREFIX": "tutor"}
    if REDIS_URL else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
CELERY_TASK_ACKS_LATE = True  # a worker killed mid-task leaves the message for another worker
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis redelivers an unacknowledged task after this many seconds; longer than our longest task (a course import).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600),
    # A worker SIGKILLed while restoring unacknowledged messages leaves kombu's restore lock behind; by default
    # nobody restores for 300 s after that. Short, so a dead worker's answers come back within a minute.
    "unacked_mutex_expire": env_int("CELERY_UNACKED_MUTEX_EXPIRE", 20),
}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_BACKEND = None

# --- Inference ---------------------------------------------------------------------------------------
TUTOR_LLM = env_str("TUTOR_LLM", "authored")
TUTOR_LLM_URL = env_str("TUTOR_LLM_URL", "")  # OpenAI-compatible base URL, e.g. http://vllm:8000/v1
TUTOR_LLM_MODEL = env_str("TUTOR_LLM_MODEL", "")
TUTOR_LLM_PATH = env_str("TUTOR_LLM_PATH", "")  # transformers model directory or GGUF file
TUTOR_LLM_TTFT_LIMIT_S = env_float("TUTOR_LLM_TTFT_LIMIT_S", 5.0)
TUTOR_TA_WARMUP = env_bool("TUTOR_TA_WARMUP", True)  # load the TA's model + index in the background on first visit
# Load the TA's embedding model when an ASGI process starts, before it serves anyone (tutor/asgi.py): loaded on the
# first visit instead, the load (imports holding the interpreter lock) stalled every student's socket in the process.
TUTOR_TA_PRELOAD = env_bool("TUTOR_TA_PRELOAD", env_bool("TUTOR_PRODUCTION", False))
# Built models kept between processes (the scorer's int8 graph: seconds to build, read in milliseconds).
TUTOR_CACHE_DIR = Path(env_str("TUTOR_CACHE_DIR", str(BASE_DIR / "var" / "cache")))
# The teach-back scorer's int8 model (built from MiniLM's weights by a child process, inference/int8_encoder.py):
# loaded when an ASGI process starts, like the TA's; otherwise in the background when a student starts an explanation.
TUTOR_TEACHBACK_PRELOAD = env_bool("TUTOR_TEACHBACK_PRELOAD", env_bool("TUTOR_PRODUCTION", False))
TUTOR_TEACHBACK_WARMUP = env_bool("TUTOR_TEACHBACK_WARMUP", True)
# With a language model configured, ask it whether each key idea was stated (one yes/no per idea, sent together) and
# take its word over the scorer's. Off by default: measure your model first (`benchmarks/teachback_ideas.py --llm URL
# --model NAME`); SmolLM2-135M answers at chance (balanced accuracy 0.50 against the scorer's 0.87 on the dev set).
TUTOR_TEACHBACK_IDEA_CHECK = env_bool("TUTOR_TEACHBACK_IDEA_CHECK", False)
# Start the answer checker's sandbox (its forkserver and a first worker) when an ASGI process starts, so the first
# answers do not wait for it (inference/sandbox.py).
TUTOR_SANDBOX_WARM = env_bool("TUTOR_SANDBOX_WARM", env_bool("TUTOR_PRODUCTION", False))
# A TA question waits at most this long for the embedding model to load, then is answered by BM25 alone meanwhile.
TUTOR_TA_EMBED_WAIT_S = env_float("TUTOR_TA_EMBED_WAIT_S", 0.0)
TUTOR_STREAM_THREADS = env_int("TUTOR_STREAM_THREADS", 128)  # concurrent generation streams per ASGI process
# Database threads per ASGI process for the session socket's service calls, each with its own connection (so at most
# this many PostgreSQL connections per process from sockets). SQLite takes one writer at a time: one thread there.
TUTOR_DB_THREADS = env_int("TUTOR_DB_THREADS", 1 if DATABASES["default"]["ENGINE"].endswith("sqlite3") else 4)
TUTOR_STREAM_DELAY_S = env_float("TUTOR_STREAM_DELAY_S", 0.02)  # authored text: pace per word, for readability
# Least seconds between two frames of a streamed explanation or TA reply: what arrives meanwhile goes in one frame.
# Ten updates a second read as continuous; each frame costs the server a send and the browser a swap.
TUTOR_STREAM_FLUSH_S = env_float("TUTOR_STREAM_FLUSH_S", 0.1)
# Without a Celery worker, background jobs (imports, reindexing) run on a thread of the process that started them;
# set, they run before the call that started them returns (tests, management commands): courses/background.py.
TUTOR_BACKGROUND_INLINE = env_bool("TUTOR_BACKGROUND_INLINE", False)

# --- Tutoring ----------------------------------------------------------------------------------------
TUTOR_DEMO_COURSE = BASE_DIR / "courses" / "demo" / "derivatives"
TUTOR_ATTEMPT_RETENTION_DAYS = env_int("TUTOR_ATTEMPT_RETENTION_DAYS", 0)  # 0 = keep forever
TUTOR_TA_RETENTION_DAYS = env_int("TUTOR_TA_RETENTION_DAYS", 0)  # TA-bot conversations; 0 = keep forever

# --- Rate limits (per user, or per client address before login; 0 = off) --------------------------------
TUTOR_RATELIMIT_ANSWERS = env_int("TUTOR_RATELIMIT_ANSWERS", 60)  # answers per minute, websocket and API together
TUTOR_RATELIMIT_GENERATIONS = env_int("TUTOR_RATELIMIT_GENERATIONS", 20)  # generated explanations per minute
TUTOR_RATELIMIT_TA_QUESTIONS = env_int("TUTOR_RATELIMIT_TA_QUESTIONS", 10)  # TA-bot questions per minute
TUTOR_RATELIMIT_LOGIN_FAILURES = env_int("TUTOR_RATELIMIT_LOGIN_FAILURES", 10)  # failed logins per 15 minutes
TUTOR_RATELIMIT_ITEM_GENERATIONS = env_int("TUTOR_RATELIMIT_ITEM_GENERATIONS", 10)  # item-generation jobs per hour
TUTOR_RATELIMIT_UNCHECKED = env_int("TUTOR_RATELIMIT_UNCHECKED", 5)  # answers too large to check, per minute

# --- Production hardening (applies when TUTOR_PRODUCTION=1; see README "Production") ---------------
if env_bool("TUTOR_PRODUCTION", False):
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # LTI: the tool runs in the LMS's iframe (another site), where the browser sends only SameSite=None cookies.
    # CSRF stays on: forms carry the token, and the CSRF middleware still checks the Origin of every POST.
    SESSION_COOKIE_SAMESITE = "None"
    CSRF_COOKIE_SAMESITE = "None"
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("TUTOR_LOG_LEVEL", "INFO")},
}

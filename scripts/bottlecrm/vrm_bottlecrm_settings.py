"""Django settings for running BottleCRM (PyPI ``django-crm``) offline on
loopback, for the connector's integration tests.

BottleCRM's own settings assume PostgreSQL and Redis. This module keeps the
rest of them and swaps those two for a SQLite file and Celery's in-memory
transports, so the server starts with no other service running.

Environment:
  BOTTLECRM_DB      path of the SQLite database (required)
  BOTTLECRM_LOGS    directory for the log files and uploads (default: the
                    working directory)
  BOTTLECRM_SECRET  SECRET_KEY, at least 32 bytes (default: a fixed key; the
                    server holds throwaway data and listens on 127.0.0.1 only)
  BOTTLECRM_DEBUG   "true" turns DEBUG on while investigating
"""

import os

# crm.settings reads these while it is imported: it refuses a SECRET_KEY under
# 32 bytes, and ENV_TYPE=prod would pull in an operator's server_settings.py.
os.environ["SECRET_KEY"] = os.environ.get(
    "BOTTLECRM_SECRET", "vrm-bottlecrm-loopback-only-test-key-0123456789abcdef"
)
os.environ["ENV_TYPE"] = "dev"
os.environ["CELERY_BROKER_URL"] = "memory://"
os.environ["CELERY_RESULT_BACKEND"] = "cache+memory://"

from crm.settings import *  # noqa: F403
from crm.settings import LOGGING, MIDDLEWARE

SECRET_KEY = os.environ["SECRET_KEY"]
if len(SECRET_KEY.encode()) < 32:
    raise ValueError("BOTTLECRM_SECRET must be at least 32 bytes (it is the HS256 JWT key)")

DEBUG = os.environ.get("BOTTLECRM_DEBUG", "").lower() == "true"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["BOTTLECRM_DB"],
        # runserver serves each request in its own thread; a write waits for
        # the file lock rather than failing with "database is locked".
        "OPTIONS": {"timeout": 20},
    }
}

# No Redis: tasks run inline in the request that queues them.
CELERY_BROKER_URL = "memory://"
CELERY_RESULT_BACKEND = "cache+memory://"
CELERY_TASK_ALWAYS_EAGER = True
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Mail stays in memory (upstream's default prints every message to stdout).
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}

# Upstream's file handlers write server.log and security_audit.log into the
# working directory; keep them, and any upload, beside the test's files.
_files = os.environ.get("BOTTLECRM_LOGS", os.getcwd())
_handlers = LOGGING["handlers"]
LOGGING = {
    **LOGGING,
    "handlers": {
        **_handlers,
        "logfile": {**_handlers["logfile"], "filename": os.path.join(_files, "server.log")},
        "security_audit": {
            **_handlers["security_audit"],
            "filename": os.path.join(_files, "security_audit.log"),
        },
    },
}
MEDIA_ROOT = os.path.join(_files, "media")

# Whitenoise serves collected static files, which an installed wheel has none
# of: it only warns about the missing directory on every start.
MIDDLEWARE = [m for m in MIDDLEWARE if not m.startswith("whitenoise.")]

# Test users have no password; the cheap hasher keeps user creation fast.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

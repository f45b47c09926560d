"""Test settings: fast hashing, django-q2 in sync mode (its Conf is read at import, so it must be
set here, not with override_settings), fixed encryption key."""

import os
import tempfile

os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdefghij")
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "nUjM0pSgWXwq2zuqV5nC1U3Jz7dF8s1Qh0tFfDeIpfY=")
os.environ.setdefault("BRAZE_EXTRA_ENDPOINTS", "http://127.0.0.1:,http://localhost:")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("Q_SYNC", "true")
# Every webhook signals at once, so delivery runs never linger (tests call them directly); the
# coalescing itself is tested with the setting overridden.
os.environ.setdefault("WEBHOOK_COALESCE_SECONDS", "0")
# Each test session counts its metrics apart (its subprocesses inherit the directory).
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="portal-metrics-"))

from portal.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SECURE_HSTS_SECONDS = 0
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
# Pages render without a collectstatic run (the production storage needs its manifest); WhiteNoise
# serves the app directories as in DEBUG.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

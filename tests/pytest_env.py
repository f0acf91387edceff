"""Loaded with `-p tests.pytest_env` before Django reads its settings: a throwaway key and data directory.

Production settings require a secret key; the suite makes a random one per run rather than keep one in code.
"""

import os
import secrets
import tempfile

os.environ.setdefault("REFLOOP_SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("REFLOOP_DATA_DIR", tempfile.mkdtemp(prefix="refloop-test-"))
os.environ.setdefault("REFLOOP_SECURE_COOKIES", "0")
os.environ.pop("REFLOOP_DEBUG", None)

"""Settings for the test suite: the project's settings, never a developer's .env.

`make run` writes a local .env for a trial (its own SECRET_KEY, proxy and
cookie settings); the suite must behave the same whether or not it exists,
so the .env is switched off before the real settings module reads it.
"""

import os

os.environ["SIGFOXSITE_READ_DOT_ENV"] = "false"

from sigfoxsite.settings import *  # noqa: E402,F403

# Hashing passwords with PBKDF2 makes every admin_client login cost a tenth
# of a second; the tests check what is done with a password, not its hash.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The real Sigfox API is never called from the suite, whatever the shell
# exports: tests that use the API point these at the local stand-in.
SIGFOX_API_URL = "http://127.0.0.1:9/v2"
SIGFOX_API_LOGIN = ""
SIGFOX_API_PASSWORD = ""

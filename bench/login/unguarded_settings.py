"""The project's settings without the login lockout: what it did before django-axes."""

from sigfoxsite.settings import *  # noqa: F403

AXES_ENABLED = False

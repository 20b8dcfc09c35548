"""The project's settings, with the collected static files kept apart (bench/out/fleet/static).

Only STATIC_ROOT differs: with DEBUG off, pages name their static files
through collectstatic's manifest, and the benchmark collects its own copy
instead of rewriting the shared staticfiles/ of the working tree.
"""

from pathlib import Path

from sigfoxsite.settings import *  # noqa: F403

STATIC_ROOT = Path(__file__).resolve().parent.parent / "out" / "fleet" / "static"

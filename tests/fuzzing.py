"""What the fuzz tests share: how many cases to run, and the mix of answers they got.

A run takes as many cases per test as the hypothesis profile says (50 by hand,
200 in CI: tests/conftest.py), a few seconds; FUZZ_EXAMPLES=N runs N per test,
for a long run by hand:

    FUZZ_EXAMPLES=100000 .venv/bin/python -m pytest -m fuzz tests/readings/callbacks/test_fuzz.py

send() delivers a callback in any of its encodings, lone surrogates and all.
"""

import json
import os
from collections import Counter
from urllib.parse import urlencode

from hypothesis import HealthCheck, settings

# The profile is loaded by tests/conftest.py before this module is imported.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES") or settings.default.max_examples)
# Per operation of the read API, a fifth of that (10 by hand, 40 in CI):
# schemathesis adds its own cases from the schema.
SCHEMA_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES") or settings.default.max_examples // 5)

settings.register_profile(
    "fuzz",
    max_examples=EXAMPLES,
    deadline=None,
    # The Django test client and the database are fixtures of the test, shared by its cases.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large, HealthCheck.filter_too_much],
    # A long run by hand is a search for failures: keep no example database behind.
    database=None if "FUZZ_EXAMPLES" in os.environ else settings.default.database,
)
FUZZ = settings.get_profile("fuzz")


class Answers:
    """Status codes a fuzz test got, by kind of input, shown after the run:
    a fuzzer whose inputs are all refused early proves little."""

    def __init__(self, title: str):
        self.title = title
        self.counts: dict[str, Counter] = {}

    def add(self, kind: str, status: int) -> None:
        self.counts.setdefault(kind, Counter())[status] += 1

    def total(self, low: int, high: int) -> int:
        return sum(n for c in self.counts.values() for code, n in c.items() if low <= code < high)

    def lines(self) -> list[str]:
        lines = []
        for kind, statuses in sorted(self.counts.items()):
            mix = ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items()))
            lines.append(f"{self.title} {kind}: {mix} ({sum(statuses.values())} cases)")
        return lines

    def show(self, config) -> None:
        """Print to the terminal, past pytest's capture (pytest -s not needed)."""
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        capture = config.pluginmanager.get_plugin("capturemanager")
        if reporter is None or capture is None:
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            for line in self.lines():
                reporter.write_line(line)


def as_text(value) -> str:
    """A value as the backend writes it into a form or a query string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def send(client, encoding: str, path: str, variables: dict):
    """The callback in one encoding. Text that is no UTF-8 (a lone surrogate
    outside JSON's escapes) goes as the bytes a client would send for it."""
    # surrogatepass: "\ud800" in a form becomes the bytes ED A0 80, not an error here.
    form = urlencode({k: as_text(v) for k, v in variables.items()}, errors="surrogatepass")
    if encoding == "get":
        return client.get(f"{path}?{form}")
    method, kind = ("PUT", encoding[4:]) if encoding.startswith("put-") else ("POST", encoding)
    if kind in ("json", "text-json"):
        body = json.dumps(variables)
    elif kind == "json-strings":
        body = json.dumps({k: v if isinstance(v, list | dict) else as_text(v)
                           for k, v in variables.items()})
    else:
        body = form
    content_type = {"json": "application/json", "json-strings": "application/json",
                    "form": "application/x-www-form-urlencoded"}.get(kind, "text/plain")
    return client.generic(method, path, body, content_type=content_type)

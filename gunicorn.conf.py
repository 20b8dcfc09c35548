"""gunicorn settings for sigfoxsite, read by `gunicorn` started from this
directory (`make run` and the tests also pass it as --config).

Only the logger is set here: the command line carries the rest. Its access
log masks the callback token of ?token= (request line, query string,
referer) and never writes an Authorization or Cookie header, whatever
--access-logformat asks for; its error log masks ?token= too.
"""

import sys
from pathlib import Path

from gunicorn.glogging import Logger

# The project's modules, whichever directory gunicorn was started from.
ROOT = str(Path(__file__).resolve().parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from sigfoxsite.redact import RedactSecrets, redact_atoms  # noqa: E402

_redact_secrets = RedactSecrets()


class RedactingLogger(Logger):
    def setup(self, cfg):
        super().setup(cfg)
        # Error handling request /data/1?token=...: the error log names the URL.
        self.error_log.addFilter(_redact_secrets)

    def atoms(self, resp, req, environ, request_time):
        return redact_atoms(super().atoms(resp, req, environ, request_time))


logger_class = RedactingLogger

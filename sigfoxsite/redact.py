"""Secrets out of logs: the callback token of a ?token= query, credentials in headers.

No Django import: gunicorn's access and error logs (gunicorn.conf.py) use it
as well as Django's logging (settings.LOGGING).
"""

import logging
import re
from urllib.parse import unquote_plus

MASK = "***"
# Query parameters whose value is a secret: the callback token (readings/auth.py).
SECRET_PARAMETERS = frozenset({"token"})
# Headers that are never logged, as request headers ({authorization}i), response
# headers ({set-cookie}o) or WSGI environ entries ({http_authorization}e).
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})

# A name=value pair as a query string has it. The value runs to the next & or
# blank, as far as Django's QueryDict reads it, so that nothing of it is left
# behind; a name is matched after percent-decoding (%74oken is token too).
_PAIR = re.compile(r"(?<![\w.%+\-])(?P<name>[\w.%+\-]+)=(?P<value>[^&\s]*)")


# The same parameter in a dict, a QueryDict or JSON: 'token': 'x', "token": ["x"].
_ITEM = re.compile(
    r"""(?P<key>(?P<q>['"])(?P<name>[\w.%+\-]{1,64})(?P=q)\s*:\s*\[?\s*)"""
    r"""(?P<vq>['"])(?P<value>(?:\\.|(?!(?P=vq)).)*)(?P=vq)"""
)


def _mask_item(match: re.Match) -> str:
    if unquote_plus(match["name"]).strip().lower() in SECRET_PARAMETERS:
        return f"{match['key']}{match['vq']}{MASK}{match['vq']}"
    return match[0]


def _mask_pair(match: re.Match) -> str:
    if unquote_plus(match["name"]).strip().lower() in SECRET_PARAMETERS:
        return f"{match['name']}={MASK}"
    # Another pair's value can hold one too: a=1;token=... or next=/x?token=...
    return f"{match['name']}={redact(match['value'])}"


def redact(text: str) -> str:
    """`text` with the value of every token= query parameter replaced by ***,
    and of a token key in a printed dict or JSON."""
    if "token" in text.lower() or "%" in text:
        text = _ITEM.sub(_mask_item, text)
    if "=" not in text:
        return text
    return _PAIR.sub(_mask_pair, text)


def _is_secret_header(atom: str) -> bool:
    """{authorization}i, {set-cookie}o, {http_authorization}e, ..."""
    if not (atom.startswith("{") and atom[-2:] in ("}i", "}o", "}e")):
        return False
    name = atom[1:-2].lower().replace("_", "-").removeprefix("http-")
    return name in SECRET_HEADERS


def redact_atoms(atoms: dict) -> dict:
    """gunicorn's access-log atoms (request line, query, referer, headers,
    environ) with secrets masked."""
    safe = {}
    for key, value in atoms.items():
        if _is_secret_header(key):
            safe[key] = MASK
        elif isinstance(value, str):
            safe[key] = redact(value)
        else:
            safe[key] = value
    return safe


class RedactSecrets(logging.Filter):
    """Masks secrets in a record's message and traceback; drops nothing.

    Attached to a handler, it sees every record that handler writes, whichever
    logger it came from. The record is changed in place, so every later
    handler writes the masked text too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True  # a broken format: the handler reports it as usual
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True

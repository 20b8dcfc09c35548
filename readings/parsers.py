"""Body parsers for Sigfox callbacks: JSON, form-encoded, and text/plain holding either.

Each returns a plain dict of strings and JSON values, so that the serializer
sees one shape whatever the encoding. The size limit is Django's
DATA_UPLOAD_MAX_MEMORY_SIZE (SIGFOX_MAX_BODY_BYTES), enforced when the
callback view reads the body, before any parser runs.
"""

import json
from urllib.parse import parse_qsl

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

# Deeper JSON than this is no callback template; refuse it before recursing.
MAX_JSON_DEPTH = 32
MAX_FIELDS = 200


def read_body(stream) -> bytes:
    return b"" if stream is None else stream.read()


def decode_text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("Request body is not valid UTF-8.") from None


def _check_depth(text: str) -> None:
    """Refuse deeply nested JSON cheaply, before json.loads recurses into it."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise ParseError(f"JSON is nested deeper than {MAX_JSON_DEPTH} levels.")
        elif char in "]}":
            depth -= 1


def _parse_int(digits: str) -> int | float:
    """An integer as Python reads it, or, past the digits Python converts
    (4,300), the float it is (an infinity): the field holding it is left
    out, and the frame is stored with its other values."""
    if len(digits) > 4000:
        return float(digits)
    return int(digits)


def parse_json_text(text: str):
    if "[" in text[1:] or "{" in text[1:]:
        _check_depth(text)
    try:
        # NaN and Infinity are read (as floats): the field they are in is
        # left out, and the frame is stored with its other values.
        data = json.loads(text, parse_int=_parse_int)
    except ValueError as exc:
        raise ParseError(f"Could not parse JSON body: {exc}") from None
    if not isinstance(data, dict):
        raise ParseError("Expected a JSON object of callback variables.")
    if len(data) > MAX_FIELDS:
        raise ParseError(f"Too many fields (more than {MAX_FIELDS}).")
    return data


def parse_form_text(text: str) -> dict[str, str]:
    # An empty pair ("a=1&&b=2", a template's trailing "&") carries nothing.
    text = "&".join(part for part in text.split("&") if part)
    try:
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=MAX_FIELDS
        )
    except ValueError as exc:
        raise ParseError(f"Could not parse form body: {exc}") from None
    # The last value wins, as in a QueryDict.
    return dict(pairs)


class CallbackJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        return parse_json_text(decode_text(read_body(stream)))


def parse_template_text(text: str):
    """A body as the backend sends the template the user typed: JSON or form fields.

    The backend's default content type is form-urlencoded, whatever the
    template holds, so a body that starts with "{" is JSON in any encoding.
    """
    if text.lstrip().startswith("{"):
        return parse_json_text(text)
    return parse_form_text(text.strip())


def parse_callback_body(text: str, content_type: str) -> dict:
    """A callback body as the parser of its content type reads it (the view's
    parsers, for a body that did not come over HTTP: a failed callback's
    request read back through the Sigfox API). Raises ParseError."""
    if content_type.split(";")[0].strip().lower() == CallbackJSONParser.media_type:
        return parse_json_text(text)
    return parse_template_text(text)


class CallbackFormParser(BaseParser):
    media_type = "application/x-www-form-urlencoded"

    def parse(self, stream, media_type=None, parser_context=None):
        return parse_template_text(decode_text(read_body(stream)))


class CallbackTextParser(BaseParser):
    """text/plain: the backend sends the template as typed, JSON or form-encoded."""

    media_type = "text/plain"

    def parse(self, stream, media_type=None, parser_context=None):
        return parse_template_text(decode_text(read_body(stream)))

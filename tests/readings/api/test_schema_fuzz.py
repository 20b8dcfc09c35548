"""The read API against its own OpenAPI schema, fuzzed by schemathesis: valid and
invalid parameters alike, never a 500, and every answer as the schema says.

Every check runs, response-schema conformance included. Left out:

- The Sigfox callbacks (/data/<sensor>, /sigfox/acknowledge): they take any
  field (each becomes a reading, or is named in field_errors and the frame is
  stored anyway), in four encodings, so an object body has no "invalid"
  shape for the negative-data check to send. tests/readings/callbacks/test_fuzz.py fuzzes them
  in every encoding.
- The writes of /api/quantity-settings/: whether a body is accepted depends
  on what is stored (an unknown device, a second setting of one quantity, a
  device or a device type but not both), which a schema cannot say.

Each operation gets SCHEMA_EXAMPLES generated cases (more in CI), besides the
cases schemathesis derives from the schema (examples, boundaries, each
constraint broken in turn); FUZZ_EXAMPLES=N asks for N (tests/fuzzing.py).
"""

import json

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from django.test import override_settings
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import settings
from rest_framework.authtoken.models import Token

from readings.models import DeviceType, QuantitySetting
from tests.fuzzing import FUZZ, SCHEMA_EXAMPLES, Answers
from tests.helpers import minutes, store

pytestmark = [pytest.mark.django_db, pytest.mark.fuzz]


def _schema():
    document = SchemaGenerator().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(json.loads(OpenApiJsonRenderer().render(document)))
    # In process, through WSGI. Middleware reads its settings once, when built:
    # the test client's plain HTTP must not be redirected to HTTPS.
    with override_settings(SECURE_SSL_REDIRECT=False):
        loaded.app = WSGIHandler()
    return loaded


schema = _schema().include(path_regex=r"^/api/", method="GET")

# The one rule the schema cannot carry: until must be later than since.
UNTIL_NOT_AFTER_SINCE = {"until": ["Must be later than since."]}


ANSWERS = Answers("schema fuzz")


@pytest.fixture
def token(django_user_model):
    """A reader's token, and data for the answers to hold: a device with a
    type and one without, readings, a unit setting."""
    kind = DeviceType.objects.create(sigfox_id="ABC1")
    device = store("1A2B3C", minutes(5, values=lambda i: -3.5 + i), rssi=-120.5, snr=None)
    device.device_type = kind
    device.save()
    store("0", minutes(3), sensor="2", quantity="vbat_mv", first_seq=4090)
    QuantitySetting.objects.create(device_type=kind, quantity="temp", unit="K", label="T")
    user = django_user_model.objects.create_user("reader", password="not-used-here")
    return Token.objects.create(user=user).key


@pytest.fixture(autouse=True)
def _connection_kept():
    """As Django's test client does: a request must not close the database
    connection that holds the test's transaction (PostgreSQL would lose it)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture(scope="module", autouse=True)
def _answers(request):
    yield
    ANSWERS.show(request.config)
    # A fuzzer whose cases are all refused at the door proves little.
    assert ANSWERS.total(200, 300) and ANSWERS.total(400, 500), ANSWERS.lines()


@schema.parametrize()
@settings(FUZZ, max_examples=SCHEMA_EXAMPLES)
def test_it_answers_as_its_schema_says(case, token):
    headers = {"Authorization": f"Token {token}"}
    response = case.call(headers=headers)
    ANSWERS.add(case.operation.label, response.status_code)
    if response.status_code == 400 and response.json() == UNTIL_NOT_AFTER_SINCE:
        return
    case.validate_response(response, headers=headers)

"""manage.py runworker: one pass with --once, its summary, its options."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from alerts.models import DeviceHealth, Rule
from tests.alerts.test_worker import history

pytestmark = pytest.mark.django_db(transaction=True)  # runworker closes its connection


def test_once_makes_one_pass_and_says_what_it_did():
    history("1A2B3C")
    Rule.objects.create(kind="above", quantity="temp", threshold=20)
    out = StringIO()
    call_command("runworker", "--once", stdout=out)
    line = out.getvalue().strip()
    assert line.startswith("worker ") and ": 1 devices learned, 1 changes: 1A2B3C new→down" in line
    assert "1 rule breaches opened, 0 closed, 0 notifications sent, 0 failed" in line
    assert DeviceHealth.objects.get().state == "down"  # its history ended in March


@pytest.mark.parametrize("value, message", [
    ("soon", "argument --interval: expected a number of seconds, got 'soon'"),
    ("0", "argument --interval: expected 0.1 to 86400 seconds, got 0"),
])
def test_it_names_a_bad_interval(value, message):
    with pytest.raises(CommandError, match=message):
        call_command("runworker", "--interval", value, stdout=StringIO())

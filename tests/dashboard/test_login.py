"""/accounts/login/ and /accounts/logout/: readers log in to read; failed logins
are locked out per account and per address (django-axes), the admin's too."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.hashers import MD5PasswordHasher
from django.contrib.auth.models import User

pytestmark = pytest.mark.django_db

PASSWORD = "a-reader's-password"


class CountingHasher(MD5PasswordHasher):
    """The test settings' hasher, counting the passwords it hashes."""

    hashed = 0

    def encode(self, password, salt):
        type(self).hashed += 1
        return super().encode(password, salt)


@pytest.fixture
def reader():
    return User.objects.create_user("reader", password=PASSWORD)


@pytest.fixture
def staff():
    return User.objects.create_user("staff", password=PASSWORD, is_staff=True, is_superuser=True)


@pytest.fixture
def hashes(settings):
    from django.contrib.auth.hashers import get_hashers

    settings.PASSWORD_HASHERS = [f"{CountingHasher.__module__}.CountingHasher"]
    # The class Django loaded, which may be another import of this module than pytest's.
    counting = type(get_hashers()[0])
    counting.hashed = 0
    return lambda: counting.hashed


def log_in(client, username="reader", password=PASSWORD, *, path="/accounts/login/",
           address="127.0.0.1", **data):
    return client.post(path, {"username": username, "password": password, **data},
                       REMOTE_ADDR=address)


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_it_shows_the_login_page_in_the_sites_layout(client):
    response = client.get("/accounts/login/?next=/graph")
    content = response.content.decode()
    assert response.status_code == 200
    assert 'class="site-header"' in content and "/static/dashboard/site." in content
    assert 'name="password"' in content
    assert 'name="next" value="/graph"' in content


def test_it_sends_the_chart_pages_to_the_site_login(client):
    assert client.get("/graph")["Location"] == "/accounts/login/?next=/graph"
    assert client.get("/devices/1A2B3C")["Location"] == "/accounts/login/?next=/devices/1A2B3C"


def test_it_logs_a_reader_in_and_back_to_the_page_asked_for(client, reader):
    response = log_in(client, next="/devices/1A2B3C")
    assert (response.status_code, response["Location"]) == (302, "/devices/1A2B3C")
    assert logged_in(client)


def test_it_goes_to_the_overview_after_a_login_without_next(client, reader):
    assert log_in(client)["Location"] == "/"


def test_it_never_redirects_to_another_site_after_login(client, reader):
    assert log_in(client, next="https://evil.example/")["Location"] == "/"


def test_it_refuses_a_wrong_password_with_the_form_again(client, reader):
    response = log_in(client, password="wrong")
    assert response.status_code == 200
    assert 'id="login-error"' in response.content.decode()
    assert not logged_in(client)


def test_it_lets_a_reader_read_the_pages_and_the_api(client, reader):
    log_in(client)
    assert client.get("/graph").status_code == 200
    assert client.get("/api/devices/").status_code == 200
    assert client.get("/api/readings/").status_code == 200


def test_it_keeps_a_reader_out_of_the_admin(client, reader):
    log_in(client)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert client.get("/admin/readings/device/").status_code == 302


def test_it_lets_staff_into_the_admin_through_the_site_login(client, staff):
    log_in(client, "staff", next="/admin/")
    assert client.get("/admin/").status_code == 200


def test_it_shows_log_in_and_log_out_in_the_header(client, reader):
    anonymous = client.get("/accounts/logout/")  # GET is refused, and shows the header
    assert anonymous.status_code == 405
    client.get("/graph")
    page = client.get("/accounts/login/").content.decode()
    assert ">Log in<" in page  # the form's title and button; the header has no link to itself
    assert 'href="/accounts/login/?next=' not in page
    log_in(client)
    page = client.get("/graph").content.decode()
    assert 'action="/accounts/logout/"' in page and "Log out" in page
    assert 'id="logged-in-as">reader<' in page
    assert ">Admin<" not in page


def test_it_offers_a_log_in_link_on_public_pages(client, settings):
    settings.PUBLIC_DASHBOARD = True
    assert 'href="/accounts/login/?next=/graph"' in client.get("/graph").content.decode()


def test_it_logs_out(client, reader):
    log_in(client)
    response = client.post("/accounts/logout/")
    assert response.status_code == 200
    assert "You are logged out" in response.content.decode()
    assert not logged_in(client)
    assert client.get("/graph").status_code == 302


def test_it_locks_an_account_out_after_five_failures(client, reader):
    answers = [log_in(client, password=f"guess-{n}", address=f"198.51.100.{n}").status_code
               for n in range(5)]
    assert answers == [200, 200, 200, 200, 429]
    # The right password, from an address that never failed: still refused.
    response = log_in(client, address="203.0.113.50")
    assert response.status_code == 429
    assert not logged_in(client)


def test_it_locks_an_address_out_after_five_failures(client, reader):
    answers = [log_in(client, f"someone-{n}", "guess", address="198.51.100.7").status_code
               for n in range(5)]
    assert answers == [200, 200, 200, 200, 429]
    assert log_in(client, address="198.51.100.7").status_code == 429
    assert not logged_in(client)
    # The account itself is not locked: from elsewhere its owner gets in.
    assert log_in(client, address="203.0.113.50").status_code == 302
    assert logged_in(client)


def test_it_answers_a_lockout_with_a_page_and_retry_after(client, reader):
    for n in range(5):
        log_in(client, password=f"guess-{n}")
    response = log_in(client)
    content = response.content.decode()
    assert response.status_code == 429
    assert response["Retry-After"] == str(15 * 60)
    assert "Too many failed logins" in content
    assert "after 5 failed attempts, for 15 minutes" in content
    assert 'class="site-header"' in content


def test_it_locks_the_admin_login_too(client, staff):
    answers = [log_in(client, "staff", f"guess-{n}", path="/admin/login/").status_code
               for n in range(5)]
    assert answers == [200, 200, 200, 200, 429]
    assert log_in(client, "staff", path="/admin/login/").status_code == 429
    assert client.get("/admin/").status_code == 302
    # The two logins share the count: the site login is locked as well.
    assert log_in(client, "staff").status_code == 429


def test_it_lets_the_account_in_again_after_the_cool_off(client, reader):
    for n in range(5):
        log_in(client, password=f"guess-{n}")
    assert log_in(client).status_code == 429
    for attempt in AccessAttempt.objects.all():
        attempt.attempt_time -= timedelta(minutes=16)
        attempt.save()
    assert log_in(client).status_code == 302
    assert logged_in(client)


def test_it_does_not_extend_the_lockout_with_each_refused_try(client, reader):
    for n in range(5):
        log_in(client, password=f"guess-{n}")
    locked_at = list(AccessAttempt.objects.values_list("attempt_time", "failures_since_start"))
    for n in range(20):
        assert log_in(client, password=f"more-{n}").status_code == 429
    assert list(AccessAttempt.objects.values_list("attempt_time", "failures_since_start")) == locked_at


def test_it_hashes_no_password_while_locked(client, reader, hashes):
    for n in range(5):
        log_in(client, password=f"guess-{n}")
    before = hashes()
    assert before >= 5
    for n in range(20):
        log_in(client, password=f"more-{n}")
    log_in(client, "nobody", "guess")  # an unknown account from the locked address
    assert hashes() == before


def test_it_takes_the_lockout_for_the_address_behind_a_trusted_proxy(client, reader, settings):
    settings.SIGFOX_TRUSTED_PROXIES = ["127.0.0.1"]
    for n in range(5):
        client.post("/accounts/login/", {"username": f"someone-{n}", "password": "guess"},
                    REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert AccessAttempt.objects.filter(ip_address="198.51.100.7").count() == 5
    # Another client behind the same proxy is not locked out.
    response = client.post("/accounts/login/", {"username": "reader", "password": PASSWORD},
                           REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.50")
    assert response.status_code == 302


def test_it_cannot_escape_the_lockout_with_a_forged_header(client, reader):
    answers = [client.post("/accounts/login/", {"username": f"someone-{n}", "password": "guess"},
                           REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code
               for n in range(6)]
    assert answers == [200, 200, 200, 200, 429, 429]
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.9"}

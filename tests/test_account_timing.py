"""Login and password reset take about as long for an unknown email as for a registered one.

The only timing assertions of the suite: medians of repeated calls, compared loosely (a
factor of 3, or 50 ms apart), so that noise cannot fail them but a skipped hash or a mail
sent only for real accounts would show.
"""

import statistics
import time

import pytest

from conftest import PASSWORD, register

AUTH = "/api/v1/auth"
ROUNDS = 15


def median_ms(call) -> float:
    call()  # warm-up: caches, the connection pool
    durations = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        call()
        durations.append((time.perf_counter() - started) * 1000)
    return statistics.median(durations)


def assert_close(label: str, known: float, unknown: float) -> None:
    print(f"{label}: known email {known:.1f} ms, unknown email {unknown:.1f} ms (medians of {ROUNDS})")
    assert abs(known - unknown) <= 50 or max(known, unknown) <= 3 * min(known, unknown)


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("login", {"password": "a wrong password"}),
        ("password-reset", {}),
    ],
)
def test_known_and_unknown_emails_take_about_as_long(client, route, body):
    register(client)

    def call(email: str):
        def post():
            response = client.post(f"{AUTH}/{route}", json={"email": email, **body})
            assert response.status_code in (401, 202)

        return post

    known = median_ms(call("ada@example.com"))
    unknown = median_ms(call("nobody@example.com"))
    assert_close(route, known, unknown)


def test_login_of_a_known_email_with_its_password_is_not_measured_here(client):
    # A right password opens a session (an INSERT): that answer differs anyway, by design.
    register(client)
    response = client.post(f"{AUTH}/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert response.status_code == 200

"""The Auth section of the contract: register, login, refresh, logout, sessions, me."""

import pytest

from app import create_app
from config import TestConfig

from conftest import PASSWORD, bearer, login, register

AUTH = "/api/v1/auth"


def test_register_answers_the_user_without_secrets(client):
    response = client.post(
        f"{AUTH}/register",
        json={
            "email": "  Ada@Example.COM ",
            "password": PASSWORD,
            "first_name": "Ada",
            "timezone": "Europe/Berlin",
        },
    )
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"id", "email", "first_name", "last_name", "timezone", "created_at"}
    assert body["email"] == "ada@example.com"
    assert (body["first_name"], body["last_name"], body["timezone"]) == ("Ada", "", "Europe/Berlin")
    assert body["created_at"].endswith(("Z", "+00:00"))


def test_register_defaults(client):
    body = register(client)
    assert (body["first_name"], body["last_name"], body["timezone"]) == ("", "", "UTC")


def test_register_taken_email_ignoring_case_is_409(client):
    register(client, email="ada@example.com")
    response = client.post(f"{AUTH}/register", json={"email": "ADA@example.com", "password": PASSWORD})
    assert response.status_code == 409
    assert response.content_type == "application/problem+json"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": PASSWORD}, "email"),
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": "a" * 250 + "@example.com", "password": PASSWORD}, "email"),
        ({"email": "ada@example.com"}, "password"),
        ({"email": "ada@example.com", "password": "short"}, "password"),
        ({"email": "ada@example.com", "password": "x" * 129}, "password"),
        ({"email": "ada@example.com", "password": PASSWORD, "first_name": "x" * 101}, "first_name"),
        ({"email": "ada@example.com", "password": PASSWORD, "timezone": "Mars/Olympus"}, "timezone"),
        ({"email": "ada@example.com", "password": PASSWORD, "is_admin": True}, "is_admin"),
        ({"email": 42, "password": PASSWORD}, "email"),
    ],
)
def test_register_validation_names_the_field(client, body, field):
    response = client.post(f"{AUTH}/register", json=body)
    assert response.status_code == 422
    problem = response.get_json()
    assert response.content_type == "application/problem+json"
    assert {"type", "title", "status", "detail"} <= set(problem)
    assert field in problem["errors"]


def test_login_returns_tokens(client):
    register(client)
    body = login(client, email=" ADA@example.com")
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["access_token"] and body["refresh_token"]


def test_login_failures_answer_the_same(client):
    register(client)
    unknown = client.post(f"{AUTH}/login", json={"email": "nobody@example.com", "password": PASSWORD})
    wrong = client.post(f"{AUTH}/login", json={"email": "ada@example.com", "password": "wrong password"})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.get_json() == wrong.get_json()


def test_me_needs_a_token(client):
    response = client.get(f"{AUTH}/me")
    assert response.status_code == 401
    assert response.content_type == "application/problem+json"


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."])
def test_malformed_tokens_are_401(client, token):
    assert client.get(f"{AUTH}/me", headers=bearer(token)).status_code == 401


def test_me_and_patch_me(client, user):
    assert client.get(f"{AUTH}/me", headers=user["headers"]).get_json()["email"] == user["email"]
    response = client.patch(
        f"{AUTH}/me", headers=user["headers"], json={"first_name": "Ada", "timezone": "Asia/Tokyo"}
    )
    assert response.status_code == 200
    assert (response.get_json()["first_name"], response.get_json()["timezone"]) == ("Ada", "Asia/Tokyo")
    assert client.get(f"{AUTH}/me", headers=user["headers"]).get_json()["timezone"] == "Asia/Tokyo"


@pytest.mark.parametrize("body", [{"email": "new@example.com"}, {"timezone": "Nowhere"}, {"last_name": 5}])
def test_patch_me_rejects_bad_fields(client, user, body):
    response = client.patch(f"{AUTH}/me", headers=user["headers"], json=body)
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == set(body)


def test_bad_token_wins_over_bad_body(client, user):
    response = client.patch(f"{AUTH}/me", headers=bearer("garbage"), json={"timezone": "Nowhere"})
    assert response.status_code == 401


def test_refresh_rotates_and_detects_reuse(client, user):
    refresh_token = user["tokens"]["refresh_token"]
    first = client.post(f"{AUTH}/refresh", headers=bearer(refresh_token))
    assert first.status_code == 200
    new_tokens = first.get_json()
    assert set(new_tokens) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert client.get(f"{AUTH}/me", headers=bearer(new_tokens["access_token"])).status_code == 200

    # The spent token comes back: 401, and the whole session dies with it.
    assert client.post(f"{AUTH}/refresh", headers=bearer(refresh_token)).status_code == 401
    assert client.post(f"{AUTH}/refresh", headers=bearer(new_tokens["refresh_token"])).status_code == 401
    assert client.get(f"{AUTH}/me", headers=bearer(new_tokens["access_token"])).status_code == 401
    assert client.get(f"{AUTH}/me", headers=user["headers"]).status_code == 401


def test_wrong_token_type_is_401(client, user):
    assert client.post(f"{AUTH}/refresh", headers=user["headers"]).status_code == 401
    assert client.get(f"{AUTH}/me", headers=bearer(user["tokens"]["refresh_token"])).status_code == 401


def test_logout_revokes_the_session(client, user):
    other_session = login(client)
    assert client.post(f"{AUTH}/logout", headers=user["headers"]).status_code == 204
    assert client.get(f"{AUTH}/me", headers=user["headers"]).status_code == 401
    assert client.post(f"{AUTH}/refresh", headers=bearer(user["tokens"]["refresh_token"])).status_code == 401
    # Only the caller's session ends.
    assert client.get(f"{AUTH}/me", headers=bearer(other_session["access_token"])).status_code == 200


def test_sessions_list_and_revoke(client, user, other_user):
    second = login(client)
    listed = client.get(f"{AUTH}/sessions", headers=user["headers"])
    assert listed.status_code == 200
    items = listed.get_json()["items"]
    assert len(items) == 2
    assert [item["current"] for item in items] == [False, True]  # newest first
    assert set(items[0]) == {"id", "created_at", "last_used_at", "user_agent", "current"}

    others = client.get(f"{AUTH}/sessions", headers=other_user["headers"]).get_json()["items"]
    assert client.delete(f"{AUTH}/sessions/{others[0]['id']}", headers=user["headers"]).status_code == 404

    assert client.delete(f"{AUTH}/sessions/{items[0]['id']}", headers=user["headers"]).status_code == 204
    assert client.get(f"{AUTH}/me", headers=bearer(second["access_token"])).status_code == 401
    assert client.get(f"{AUTH}/me", headers=user["headers"]).status_code == 200


@pytest.mark.parametrize("session_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "123"])
def test_unknown_session_id_is_404(client, user, session_id):
    assert client.delete(f"{AUTH}/sessions/{session_id}", headers=user["headers"]).status_code == 404


def test_expired_access_token_is_401(client, monkeypatch, database_url):
    monkeypatch.setenv("JWT_ACCESS_TTL", "1")
    monkeypatch.setenv("JWT_LEEWAY", "0")  # the default leeway would keep it valid 10 s longer
    short_lived = create_app(TestConfig).test_client()
    register(short_lived)
    token = login(short_lived)["access_token"]
    import time

    time.sleep(2)
    response = short_lived.get(f"{AUTH}/me", headers=bearer(token))
    assert response.status_code == 401
    assert "expired" in response.get_json()["detail"]


def test_registration_survives_a_restart(client, database_url):
    """The persistence story: register, then a brand-new app (as after a restart) logs in."""
    register(client, email="persist@example.com")
    restarted = create_app(TestConfig).test_client()
    assert login(restarted, email="persist@example.com")["access_token"]

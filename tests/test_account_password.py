"""Account changes that need the password: change-password and DELETE /me; and forged tokens."""

import base64
import json
import time
import uuid

import jwt as pyjwt
import pytest
from sqlalchemy import text

from app.extensions import db

from conftest import PASSWORD, bearer, login, register

AUTH = "/api/v1/auth"
NEW_PASSWORD = "a brand new passphrase"


def test_change_password_revokes_every_session_and_swaps_the_password(client, user):
    other_session = login(client)
    response = client.post(
        f"{AUTH}/change-password",
        headers=user["headers"],
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 204
    for tokens in (user["tokens"], other_session):
        assert client.get(f"{AUTH}/me", headers=bearer(tokens["access_token"])).status_code == 401
        assert client.post(f"{AUTH}/refresh", headers=bearer(tokens["refresh_token"])).status_code == 401
    old = client.post(f"{AUTH}/login", json={"email": user["email"], "password": PASSWORD})
    assert old.status_code == 401
    login(client, password=NEW_PASSWORD)


def test_change_password_with_a_wrong_current_password_is_400_and_changes_nothing(client, user):
    response = client.post(
        f"{AUTH}/change-password",
        headers=user["headers"],
        json={"current_password": "not my password", "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"
    assert client.get(f"{AUTH}/me", headers=user["headers"]).status_code == 200
    login(client)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"new_password": NEW_PASSWORD}, "current_password"),
        ({"current_password": PASSWORD}, "new_password"),
        ({"current_password": PASSWORD, "new_password": "short"}, "new_password"),
        ({"current_password": PASSWORD, "new_password": "x" * 129}, "new_password"),
        ({"current_password": PASSWORD, "new_password": NEW_PASSWORD, "x": 1}, "x"),
    ],
)
def test_change_password_validation_is_422(client, user, body, field):
    response = client.post(f"{AUTH}/change-password", headers=user["headers"], json=body)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_change_password_needs_a_token_before_the_body(client):
    response = client.post(f"{AUTH}/change-password", json={"new_password": "short"})
    assert response.status_code == 401


def test_delete_me_removes_the_user_and_all_their_data(client, app, user, other_user):
    with app.app_context():
        user_id = db.session.scalar(text("SELECT id FROM users WHERE email = :e"), {"e": user["email"]})
        db.session.execute(text("INSERT INTO tags (user_id, name) VALUES (:u, 'home')"), {"u": user_id})
        db.session.execute(text("INSERT INTO tasks (user_id, title) VALUES (:u, 'call mum')"), {"u": user_id})
        db.session.commit()
    response = client.delete(f"{AUTH}/me", headers=user["headers"], json={"password": PASSWORD})
    assert response.status_code == 204
    assert client.get(f"{AUTH}/me", headers=user["headers"]).status_code == 401
    assert client.post(f"{AUTH}/refresh", headers=bearer(user["tokens"]["refresh_token"])).status_code == 401
    relogin = client.post(f"{AUTH}/login", json={"email": user["email"], "password": PASSWORD})
    assert relogin.status_code == 401
    with app.app_context():
        left = db.session.execute(
            text(
                "SELECT (SELECT count(*) FROM users WHERE id = :u),"
                " (SELECT count(*) FROM sessions WHERE user_id = :u),"
                " (SELECT count(*) FROM tags WHERE user_id = :u),"
                " (SELECT count(*) FROM tasks WHERE user_id = :u)"
            ),
            {"u": user_id},
        ).one()
    assert tuple(left) == (0, 0, 0, 0)
    # The other user is untouched, and the email is free again.
    assert client.get(f"{AUTH}/me", headers=other_user["headers"]).status_code == 200
    register(client)


def test_delete_me_with_a_wrong_password_is_400_and_keeps_the_account(client, user):
    response = client.delete(f"{AUTH}/me", headers=user["headers"], json={"password": "not my password"})
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"
    assert client.get(f"{AUTH}/me", headers=user["headers"]).status_code == 200


@pytest.mark.parametrize("body", [{}, {"password": 12345678}, {"password": PASSWORD, "really": True}])
def test_delete_me_validation_is_422(client, user, body):
    response = client.delete(f"{AUTH}/me", headers=user["headers"], json=body)
    assert response.status_code == 422


def test_delete_me_needs_a_token(client, user):
    assert client.delete(f"{AUTH}/me", json={"password": PASSWORD}).status_code == 401
    assert client.get(f"{AUTH}/me", headers=user["headers"]).status_code == 200


# --- Forged and altered tokens ---


def _segments(token: str) -> list[str]:
    return token.split(".")


def _claims(app, token: str) -> dict:
    return pyjwt.decode(token, app.config["JWT_SECRET_KEY"], algorithms=["HS256"])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_changed_payload_with_the_original_signature_is_401(client, app, user, other_user):
    token = user["tokens"]["access_token"]
    header, _payload, signature = _segments(token)
    claims = _claims(app, token)
    other_claims = _claims(app, other_user["tokens"]["access_token"])
    forged_claims = {**claims, "sub": other_claims["sub"], "sid": other_claims["sid"]}
    forged = ".".join([header, _b64(json.dumps(forged_claims).encode()), signature])
    assert client.get(f"{AUTH}/me", headers=bearer(forged)).status_code == 401


def test_an_unsigned_alg_none_token_is_401(client, app, user):
    claims = _claims(app, user["tokens"]["access_token"])
    unsigned = pyjwt.encode(claims, key=None, algorithm="none")
    assert client.get(f"{AUTH}/me", headers=bearer(unsigned)).status_code == 401


def test_a_token_signed_with_another_key_is_401(client, app, user):
    claims = _claims(app, user["tokens"]["access_token"])
    forged = pyjwt.encode(claims, "another key that is long enough for hs256!", algorithm="HS256")
    assert client.get(f"{AUTH}/me", headers=bearer(forged)).status_code == 401


def test_an_expired_token_with_a_live_session_is_401(client, app, user):
    claims = _claims(app, user["tokens"]["access_token"])
    now = int(time.time())
    expired = pyjwt.encode(
        {**claims, "iat": now - 120, "nbf": now - 120, "exp": now - 60, "jti": str(uuid.uuid4())},
        app.config["JWT_SECRET_KEY"],
        algorithm="HS256",
    )
    response = client.get(f"{AUTH}/me", headers=bearer(expired))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"

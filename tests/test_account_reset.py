"""Password reset by mail: the request, the mail, and every state a reset token can be in."""

import hashlib
import logging
import re
import threading
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from sqlalchemy import select, text

from app import create_app
from app.extensions import db
from app.models import PasswordResetToken
from config import TestConfig

from conftest import PASSWORD, assert_problem, bearer, login, register

AUTH = "/api/v1/auth"
NEW_PASSWORD = "a brand new passphrase"
TOKEN_IN_URL = re.compile(r"http://localhost:8000/reset-password\?token=([A-Za-z0-9_-]+)")


@pytest.fixture
def mail_app(database_url, tmp_path, monkeypatch):
    """An app whose mail lands as .eml files in tmp_path/outbox."""
    monkeypatch.setenv("MAIL_BACKEND", "file")
    monkeypatch.setenv("MAIL_OUTBOX_DIR", str(tmp_path / "outbox"))
    app = create_app(TestConfig)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def mail_client(mail_app):
    return mail_app.test_client()


def outbox(app) -> list:
    """The messages in the outbox, oldest first, parsed as RFC 5322."""
    files = sorted(Path(app.config["MAIL_OUTBOX_DIR"]).glob("*.eml"))
    return [BytesParser(policy=policy.default).parsebytes(f.read_bytes()) for f in files]


def request_reset(client, email: str) -> None:
    response = client.post(f"{AUTH}/password-reset", json={"email": email})
    assert response.status_code == 202, response.get_json()


def reset_token(client, app, email: str) -> str:
    """Ask for a reset of `email` and return the token from the mail it gets."""
    request_reset(client, email)
    message = outbox(app)[-1]
    assert message["To"] == email
    return TOKEN_IN_URL.search(message.get_content()).group(1)


def confirm(client, token, new_password: str = NEW_PASSWORD):
    return client.post(f"{AUTH}/password-reset/confirm", json={"token": token, "new_password": new_password})


def test_request_answers_the_same_for_unknown_emails_and_mails_only_accounts(mail_client, mail_app):
    register(mail_client)
    known = mail_client.post(f"{AUTH}/password-reset", json={"email": " ADA@example.com"})
    unknown = mail_client.post(f"{AUTH}/password-reset", json={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.get_json() == unknown.get_json()
    assert known.content_type == "application/json"
    messages = outbox(mail_app)
    assert [m["To"] for m in messages] == ["ada@example.com"]


def test_mail_is_rfc_5322_with_the_reset_url(mail_client, mail_app):
    register(mail_client)
    request_reset(mail_client, "ada@example.com")
    (message,) = outbox(mail_app)
    assert message["From"] == mail_app.config["MAIL_FROM"]
    assert message["Subject"] and message["Date"] and message["Message-ID"]
    assert message.get_content_type() == "text/plain"
    token = TOKEN_IN_URL.search(message.get_content()).group(1)
    assert len(token) >= 43  # 32 random bytes, URL-safe base64
    outbox_dir = Path(mail_app.config["MAIL_OUTBOX_DIR"])
    assert not [p for p in outbox_dir.iterdir() if p.suffix != ".eml"]  # no temporary files left


def test_only_the_tokens_hash_is_stored(mail_client, mail_app):
    register(mail_client)
    token = reset_token(mail_client, mail_app, "ada@example.com")
    with mail_app.app_context():
        (row,) = db.session.scalars(select(PasswordResetToken)).all()
        dump = str(db.session.execute(text("SELECT t::text FROM password_reset_tokens t")).scalar())
    assert bytes(row.token_hash) == hashlib.sha256(token.encode()).digest()
    assert token not in dump


def test_confirm_sets_the_password_and_revokes_every_session(mail_client, mail_app):
    register(mail_client)
    first, second = login(mail_client), login(mail_client)
    token = reset_token(mail_client, mail_app, "ada@example.com")
    response = confirm(mail_client, token)
    assert response.status_code == 204
    for tokens in (first, second):
        assert mail_client.get(f"{AUTH}/me", headers=bearer(tokens["access_token"])).status_code == 401
        assert mail_client.post(f"{AUTH}/refresh", headers=bearer(tokens["refresh_token"])).status_code == 401
    old = mail_client.post(f"{AUTH}/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert old.status_code == 401
    login(mail_client, password=NEW_PASSWORD)


def test_a_token_works_once(mail_client, mail_app):
    register(mail_client)
    token = reset_token(mail_client, mail_app, "ada@example.com")
    assert confirm(mail_client, token).status_code == 204
    again = confirm(mail_client, token, "yet another passphrase")
    assert again.status_code == 400
    assert again.content_type == "application/problem+json"
    login(mail_client, password=NEW_PASSWORD)


def test_an_expired_token_is_400(mail_client, mail_app):
    register(mail_client)
    token = reset_token(mail_client, mail_app, "ada@example.com")
    with mail_app.app_context():
        db.session.execute(text("UPDATE password_reset_tokens SET expires_at = now() - interval '1 second'"))
        db.session.commit()
    assert confirm(mail_client, token).status_code == 400
    login(mail_client)  # the old password still works


def test_the_token_lives_password_reset_ttl_seconds(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("MAIL_BACKEND", "file")
    monkeypatch.setenv("MAIL_OUTBOX_DIR", str(tmp_path))
    monkeypatch.setenv("PASSWORD_RESET_TTL", "60")
    app = create_app(TestConfig)
    client = app.test_client()
    register(client)
    reset_token(client, app, "ada@example.com")
    with app.app_context():
        lifetime = db.session.scalar(text("SELECT expires_at - created_at FROM password_reset_tokens"))
        db.engine.dispose()
    assert lifetime.total_seconds() == pytest.approx(60, abs=1)


def test_a_newer_request_voids_older_tokens(mail_client, mail_app):
    register(mail_client)
    older = reset_token(mail_client, mail_app, "ada@example.com")
    newer = reset_token(mail_client, mail_app, "ada@example.com")
    assert older != newer
    assert confirm(mail_client, older).status_code == 400
    assert confirm(mail_client, newer).status_code == 204


def test_a_token_resets_only_its_own_user(mail_client, mail_app):
    register(mail_client)
    register(mail_client, email="grace@example.com")
    ada = login(mail_client)
    ada_token = reset_token(mail_client, mail_app, "ada@example.com")
    grace_token = reset_token(mail_client, mail_app, "grace@example.com")
    assert confirm(mail_client, grace_token).status_code == 204
    login(mail_client, email="grace@example.com", password=NEW_PASSWORD)
    login(mail_client)  # Ada keeps her password, her session and her own live token
    assert mail_client.get(f"{AUTH}/me", headers=bearer(ada["access_token"])).status_code == 200
    assert confirm(mail_client, ada_token, "adas own new passphrase").status_code == 204


@pytest.mark.parametrize(
    "token",
    [
        "",
        "short",
        "not a token!",
        "x" * 1000,
        "ÄÖÜ" * 15,
        "../../etc/passwd",
        "A" * 43,
        "A" * 20 + "\x00" + "A" * 22,  # PostgreSQL's text cannot hold a NUL
        "\x00",
        "A" * 20 + "\ud800" + "A" * 22,  # a lone surrogate, valid in JSON, not in UTF-8
        "A" * 20 + "%" + "A" * 22,  # not URL-safe
        "A" * 20 + "=" + "A" * 22,
        "A" * 43 + "\n",
        42,
        4.2,
        True,
        None,
        ["A" * 43],
        {"token": "A" * 43},
    ],
)
def test_unknown_or_malformed_tokens_are_400(client, user, token):
    """Whatever makes a present token malformed, the answer is the contract's 400, never 422."""
    response = confirm(client, token)
    body = assert_problem(response, 400)
    assert "errors" not in body
    login(client)  # the password did not change


def test_a_malformed_token_does_not_hide_an_invalid_new_password(client):
    response = confirm(client, "A\x00", new_password="short")
    assert_problem(response, 422)
    assert set(response.get_json()["errors"]) == {"new_password"}


def test_a_nul_in_new_password_is_still_422(client):
    response = confirm(client, "A" * 43, new_password="long enough\x00password")
    assert set(assert_problem(response, 422)["errors"]) == {"new_password"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"new_password": NEW_PASSWORD}, "token"),
        ({"token": "A" * 43}, "new_password"),
        ({"token": "A" * 43, "new_password": "short"}, "new_password"),
        ({"token": "A" * 43, "new_password": "x" * 129}, "new_password"),
        ({"token": "A" * 43, "new_password": NEW_PASSWORD, "email": "a@b.c"}, "email"),
    ],
)
def test_confirm_validation_is_422(client, body, field):
    response = client.post(f"{AUTH}/password-reset/confirm", json=body)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


@pytest.mark.parametrize(("body", "field"), [({}, "email"), ({"email": "not-an-email"}, "email")])
def test_request_validation_is_422(client, body, field):
    response = client.post(f"{AUTH}/password-reset", json=body)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_concurrent_confirms_of_one_token_let_exactly_one_win(mail_client, mail_app):
    register(mail_client)
    token = reset_token(mail_client, mail_app, "ada@example.com")
    attempts = 8
    barrier = threading.Barrier(attempts)
    statuses = []

    def attempt(n: int) -> None:
        client = mail_app.test_client()
        barrier.wait(timeout=10)
        statuses.append(confirm(client, token, f"passphrase number {n}").status_code)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [204] + [400] * (attempts - 1)


def test_no_password_token_or_hash_reaches_the_logs(mail_client, mail_app, caplog):
    app_logger = logging.getLogger("app")
    app_logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)
    try:
        register(mail_client)
        tokens = login(mail_client)
        token = reset_token(mail_client, mail_app, "ada@example.com")
        assert confirm(mail_client, token).status_code == 204
        assert confirm(mail_client, token).status_code == 400
        tokens = login(mail_client, password=NEW_PASSWORD)
        mail_client.post(f"{AUTH}/refresh", headers=bearer(tokens["refresh_token"]))
        mail_client.post(
            f"{AUTH}/change-password",
            headers=bearer(tokens["access_token"]),
            json={"current_password": NEW_PASSWORD, "new_password": "the final passphrase"},
        )
    finally:
        app_logger.removeHandler(caplog.handler)
    with mail_app.app_context():
        password_hash = db.session.scalar(text("SELECT password_hash FROM users"))
    logged = caplog.text
    assert "password-reset/confirm 204" in logged  # the capture did see the app's request log
    secrets_ = [PASSWORD, NEW_PASSWORD, "the final passphrase", token, password_hash]
    secrets_ += [hashlib.sha256(token.encode()).hexdigest(), tokens["access_token"], tokens["refresh_token"]]
    for secret in secrets_:
        assert secret not in logged

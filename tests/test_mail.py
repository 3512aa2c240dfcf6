"""The mail backends: console, file (.eml) and SMTP against a real aiosmtpd server on 127.0.0.1."""

import logging
import re
import socket
from email import message_from_bytes, policy
from email.parser import BytesParser

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from app import create_app
from app.extensions import db
from app.mail import send_mail
from config import TestConfig

from conftest import register

RESET = "/api/v1/auth/password-reset"
TOKEN_IN_URL = re.compile(r"https://todo\.example/reset\?token=([A-Za-z0-9_-]{43,})")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    """An aiosmtpd handler that keeps every message it receives, and the logins it saw."""

    def __init__(self) -> None:
        self.messages = []
        self.logins = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        self.logins.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=auth_data.password == b"s3cret-smtp-password")


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=inbox.authenticate,
        auth_require_tls=False,
        ready_timeout=5,
    )
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


def make_app(monkeypatch, **env):
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    return create_app(TestConfig)


@pytest.fixture
def dispose():
    apps = []
    yield apps.append
    for app in apps:
        with app.app_context():
            db.engine.dispose()


def test_console_backend_logs_the_message(monkeypatch, caplog, database_url):
    app = make_app(monkeypatch, MAIL_BACKEND="console")
    logger = logging.getLogger("app")  # does not propagate: listen on it directly
    logger.addHandler(caplog.handler)
    try:
        with app.app_context():
            send_mail("ada@example.com", "Hello", "The body line.")
    finally:
        logger.removeHandler(caplog.handler)
    assert "To: ada@example.com" in caplog.text
    assert "The body line." in caplog.text


def test_file_backend_writes_one_eml_per_message(monkeypatch, tmp_path, database_url):
    app = make_app(monkeypatch, MAIL_BACKEND="file", MAIL_OUTBOX_DIR=tmp_path / "new" / "outbox")
    with app.app_context():
        send_mail("ada@example.com", "First", "one")
        send_mail("grace@example.com", "Second", "two")
    files = sorted((tmp_path / "new" / "outbox").iterdir())
    assert [f.suffix for f in files] == [".eml", ".eml"]
    raw = files[0].read_bytes()
    assert b"\r\n" in raw  # RFC 5322 line endings
    messages = [BytesParser(policy=policy.default).parsebytes(f.read_bytes()) for f in files]
    assert [(m["To"], m["Subject"], m.get_content().strip()) for m in messages] == [
        ("ada@example.com", "First", "one"),
        ("grace@example.com", "Second", "two"),
    ]


def test_smtp_backend_delivers_the_reset_mail(monkeypatch, smtp_server, database_url, dispose):
    controller, inbox = smtp_server
    app = make_app(
        monkeypatch,
        MAIL_BACKEND="smtp",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=controller.port,
        SMTP_USERNAME="mailer",
        SMTP_PASSWORD="s3cret-smtp-password",
        SMTP_STARTTLS="false",
        MAIL_FROM="Todo <no-reply@todo.example>",
        PASSWORD_RESET_URL="https://todo.example/reset?token={token}",
    )
    dispose(app)
    client = app.test_client()
    register(client)
    # buffered: the test client then closes the answer, which is when an SMTP mail goes out.
    response = client.post(RESET, json={"email": "ada@example.com"}, buffered=True)
    assert response.status_code == 202
    assert inbox.logins == [("mailer", "s3cret-smtp-password")]
    (message,) = inbox.messages
    assert (message["To"], message["From"]) == ("ada@example.com", "Todo <no-reply@todo.example>")
    token = TOKEN_IN_URL.search(message.get_content()).group(1)
    confirm = client.post(f"{RESET}/confirm", json={"token": token, "new_password": "a new passphrase"})
    assert confirm.status_code == 204


def test_unknown_email_sends_no_mail(monkeypatch, smtp_server, database_url, dispose):
    controller, inbox = smtp_server
    app = make_app(monkeypatch, MAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=controller.port)
    dispose(app)
    response = app.test_client().post(RESET, json={"email": "nobody@example.com"}, buffered=True)
    assert response.status_code == 202
    assert inbox.messages == []


def test_a_failing_mail_server_is_logged_and_the_answer_stays_202(monkeypatch, database_url, dispose, caplog):
    app = make_app(
        monkeypatch, MAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=free_port(), SMTP_TIMEOUT=2
    )
    dispose(app)
    client = app.test_client()
    register(client)
    logger = logging.getLogger("app")
    logger.addHandler(caplog.handler)
    try:
        response = client.post(RESET, json={"email": "ada@example.com"}, buffered=True)
    finally:
        logger.removeHandler(caplog.handler)
    assert response.status_code == 202
    assert "password reset mail could not be sent: ConnectionRefusedError" in caplog.text
    assert "token=" not in caplog.text

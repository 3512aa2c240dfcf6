"""Outgoing mail: `send_mail()` hands a plain-text message to the backend `MAIL_BACKEND` names."""

import logging
import os
import smtplib
import ssl
import tempfile
import uuid
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from flask import current_app

log = logging.getLogger(__name__)


def send_mail(to: str, subject: str, body: str) -> None:
    """Deliver one message; raises OSError or smtplib.SMTPException when delivery fails."""
    message = _build(to, subject, body)
    backend = current_app.config["MAIL_BACKEND"]
    {"console": _log_message, "file": _write_eml, "smtp": _send_smtp}[backend](message)


def _build(to: str, subject: str, body: str) -> EmailMessage:
    sender = current_app.config["MAIL_FROM"]
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip(">") or None)
    message.set_content(body)
    return message


def _log_message(message: EmailMessage) -> None:
    # Development only: this is the one log line allowed to hold a reset link.
    log.info("mail not sent (MAIL_BACKEND=console):\n%s", message.as_string())


def _write_eml(message: EmailMessage) -> None:
    """Write one RFC 5322 file; a reader of the outbox never sees a half-written one."""
    outbox = Path(current_app.config["MAIL_OUTBOX_DIR"])
    outbox.mkdir(parents=True, exist_ok=True)
    name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}.eml"
    fd, temporary = tempfile.mkstemp(dir=outbox, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(message.as_bytes(policy=policy.SMTP))
        os.replace(temporary, outbox / name)
    except BaseException:
        os.unlink(temporary)
        raise
    log.info("mail written to %s", outbox / name)


def _send_smtp(message: EmailMessage) -> None:
    config = current_app.config
    with smtplib.SMTP(config["SMTP_HOST"], config["SMTP_PORT"], timeout=config["SMTP_TIMEOUT"]) as smtp:
        if config["SMTP_STARTTLS"]:
            smtp.starttls(context=ssl.create_default_context())
        if config["SMTP_USERNAME"]:
            smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"] or "")
        smtp.send_message(message)
    log.info("mail sent through %s:%s", config["SMTP_HOST"], config["SMTP_PORT"])

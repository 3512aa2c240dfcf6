"""Operator commands: `flask seed`, `flask check-db`, `flask cleanup`."""

from datetime import timedelta

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import delete, func, or_
from sqlalchemy.dialects.postgresql import insert

from app.changes import prune_tombstones
from app.database import DatabaseNotReady, wait_for_database
from app.extensions import db
from app.models import AuthSession, IdempotencyKey, PasswordResetToken, Priority

PRIORITIES = [
    {"level": 1, "name": "low", "label": "Low"},
    {"level": 2, "name": "medium", "label": "Medium"},
    {"level": 3, "name": "high", "label": "High"},
    {"level": 4, "name": "urgent", "label": "Urgent"},
]


@click.command("seed")
def seed_command() -> None:
    """Insert the default priorities (idempotent)."""
    result = db.session.execute(insert(Priority).values(PRIORITIES).on_conflict_do_nothing())
    db.session.commit()
    click.echo(f"seeded {result.rowcount} priorities ({len(PRIORITIES) - result.rowcount} already present)")


@click.command("check-db")
def check_db_command() -> None:
    """Print the server version, round trip and migration state; exit 1 unless ready."""
    config = current_app.config
    try:
        state = wait_for_database(
            config["SQLALCHEMY_DATABASE_URI"], config["DB_CONNECT_TIMEOUT"], retry_seconds=0
        )
    except DatabaseNotReady as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"server version: PostgreSQL {state.server_version}")
    click.echo(f"round trip: {state.round_trip_ms:.1f} ms")
    click.echo(f"migration: {', '.join(state.current) or 'none'} (head {', '.join(state.head)})")
    if reason := state.problem():
        raise click.ClickException(reason)
    click.echo("ok: the schema is at the latest migration")


IDEMPOTENCY_KEY_LIFETIME = timedelta(hours=24)


@click.command("cleanup")
@with_appcontext
def cleanup_command() -> None:
    """Delete expired sessions, spent or expired reset tokens, idempotency keys over 24 h old and
    sync tombstones older than SYNC_RETENTION."""
    now = func.now()
    # Sessions past their expiry, revoked or not: their tokens are dead either way. Indexed.
    sessions = db.session.execute(delete(AuthSession).where(AuthSession.expires_at < now))
    # expires_at is indexed; used tokens are at most PASSWORD_RESET_TTL old, a small table.
    tokens = db.session.execute(
        delete(PasswordResetToken).where(
            or_(PasswordResetToken.expires_at < now, PasswordResetToken.used_at.is_not(None))
        )
    )
    keys = db.session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at < now - IDEMPOTENCY_KEY_LIFETIME)
    )
    tombstones = prune_tombstones(current_app.config["SYNC_RETENTION"])
    db.session.commit()
    click.echo(
        f"deleted {sessions.rowcount} sessions, {tokens.rowcount} password reset tokens, "
        f"{keys.rowcount} idempotency keys, {tombstones} sync tombstones"
    )


def register_commands(app: Flask) -> None:
    app.cli.add_command(seed_command)
    app.cli.add_command(check_db_command)
    app.cli.add_command(cleanup_command)

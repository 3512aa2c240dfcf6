"""Operator commands: `flask seed`, `flask check-db`."""

import click
from flask import Flask, current_app
from sqlalchemy.dialects.postgresql import insert

from app.database import DatabaseNotReady, wait_for_database
from app.extensions import db
from app.models import Priority

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


def register_commands(app: Flask) -> None:
    app.cli.add_command(seed_command)
    app.cli.add_command(check_db_command)

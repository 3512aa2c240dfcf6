"""The schema comes from the migrations: they match the models, and they go down and up again."""

import flask_migrate
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from app import create_app
from app.extensions import db
from config import TestConfig


def test_models_and_migrations_agree(app):
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []


def test_downgrade_to_base_then_upgrade_again(empty_database):
    app = create_app(TestConfig)
    with app.app_context():
        flask_migrate.upgrade()
        assert "tasks" in inspect(db.engine).get_table_names()
        flask_migrate.downgrade(revision="base")
        assert inspect(db.engine).get_table_names() == ["alembic_version"]
        flask_migrate.upgrade()
        tables = set(inspect(db.engine).get_table_names())
        db.engine.dispose()
    assert set(db.metadata.tables) <= tables


def test_priorities_exist_after_migrating(client, user):
    # The first migration inserts the reference data; `flask seed` only re-asserts it.
    with client.application.app_context():
        rows = db.session.execute(db.text("SELECT name, label, level FROM priorities ORDER BY level")).all()
    assert [tuple(r) for r in rows] == [
        ("low", "Low", 1),
        ("medium", "Medium", 2),
        ("high", "High", 3),
        ("urgent", "Urgent", 4),
    ]


def test_due_date_migration_keeps_the_table_and_validates_its_constraints(empty_database):
    """0003 on a table with tasks: no rewrite (same file on disk), the rows keep no due_date,
    both constraints end up validated and the due sorts' new indexes valid, the old ones gone."""
    app = create_app(TestConfig)
    with app.app_context():
        flask_migrate.upgrade(revision="0002")
        with db.engine.begin() as connection:
            user_id = connection.scalar(
                text("INSERT INTO users (email, password_hash) VALUES ('a@example.com', 'x') RETURNING id")
            )
            connection.execute(
                text(
                    "INSERT INTO tasks (user_id, title, due_at) SELECT :id, 'task ' || i, "
                    "CASE WHEN i % 2 = 0 THEN now() END FROM generate_series(1, 100) i"
                ),
                {"id": user_id},
            )
            file_before = connection.scalar(text("SELECT pg_relation_filenode('tasks')"))
        flask_migrate.upgrade()
        with db.engine.connect() as connection:
            assert connection.scalar(text("SELECT pg_relation_filenode('tasks')")) == file_before
            counts = connection.execute(
                text("SELECT count(*), count(due_at), count(due_date), count(due_date_start) FROM tasks")
            ).one()
            constraints = dict(
                connection.execute(
                    text(
                        "SELECT conname, convalidated FROM pg_constraint "
                        "WHERE conrelid = 'tasks'::regclass AND conname IN "
                        "('ck_tasks_one_due', 'ck_tasks_due_date_start_set')"
                    )
                ).all()
            )
            indexes = dict(
                connection.execute(
                    text(
                        "SELECT indexrelid::regclass::text, indisvalid FROM pg_index "
                        "WHERE indrelid = 'tasks'::regclass AND indexrelid::regclass::text LIKE '%due%last%'"
                    )
                ).all()
            )
        db.engine.dispose()
    assert tuple(counts) == (100, 50, 0, 0)
    assert constraints == {"ck_tasks_one_due": True, "ck_tasks_due_date_start_set": True}
    assert indexes == {"ix_tasks_user_id_due_last_asc_id": True, "ix_tasks_user_id_due_last_desc_id": True}


def test_0004_fills_original_occurs_at_from_occurs_at(empty_database):
    """Instances stored before migration 0004 keep their time as their rule slot, unskipped."""
    app = create_app(TestConfig)
    with app.app_context():
        flask_migrate.upgrade(revision="0002")
        with db.engine.begin() as connection:
            connection.execute(
                db.text(
                    "INSERT INTO users (email, password_hash) VALUES ('m@example.com', 'x');"
                    "INSERT INTO recurring_tasks (user_id, title, rrule, dtstart, timezone)"
                    " SELECT id, 't', 'FREQ=DAILY', '2027-03-01 09:00', 'UTC' FROM users;"
                    "INSERT INTO task_instances (recurring_task_id, occurs_at)"
                    " SELECT id, '2027-03-01 09:00+00' FROM recurring_tasks"
                )
            )
        flask_migrate.upgrade()
        with db.engine.connect() as connection:
            rows = connection.execute(
                db.text("SELECT occurs_at = original_occurs_at, skipped, detached FROM task_instances")
            ).all()
        db.engine.dispose()
    assert [tuple(row) for row in rows] == [(True, False, False)]

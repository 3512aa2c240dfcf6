"""A write is one transaction; a plain read needs none.

PostgreSQL runs at READ COMMITTED, where every statement takes its own snapshot whether or not
it is inside a transaction block, so a request that only reads sees the same data without one.
Such requests (GET and HEAD, except views marked `@locking_read`) run with psycopg2's autocommit
on: no BEGIN before the first statement, no ROLLBACK after the last, two round trips fewer on
every read. SQLAlchemy's own pre-ping switches autocommit the same way. The connection goes
back to the pool with it off, so every other request is one transaction, as before; an
unmarked read that tries to write is refused (a 500), never committed statement by statement.

The hottest reads, each one statement (a task, a page of tasks, the caller's account, a sync,
the health check), go further: `read_rows` runs their SQL on a pooled connection with
psycopg2 alone, without the ORM session, its transaction bookkeeping and SQLAlchemy's
execution context, which cost more Python time than PostgreSQL spends on the statement
(README, Performance). The pool's checkout, pre-ping included, is the same.
"""

import psycopg2
from flask import Flask, current_app, has_request_context, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.dialects.postgresql.psycopg2 import PGDialect_psycopg2
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import ClauseElement

from app.extensions import db

_DIALECT = PGDialect_psycopg2()

READ_METHODS = frozenset({"GET", "HEAD"})


def locking_read(view_class: type) -> type:
    """Mark a view whose GET locks rows or writes: it keeps its transaction."""
    view_class.locking_read = True
    return view_class


def _is_plain_read() -> bool:
    if not has_request_context() or request.method not in READ_METHODS:
        return False
    view = current_app.view_functions.get(request.endpoint)
    return not getattr(getattr(view, "view_class", None), "locking_read", False)


def _begin(connection) -> None:
    # Before the first statement, when psycopg2 would send BEGIN.
    if _is_plain_read():
        connection.connection.driver_connection.autocommit = True


def _refuse_writes(connection, _cursor, _statement, _parameters, context, _executemany) -> None:
    # Outside a transaction block each statement would commit on its own: a view that reads
    # under GET and writes must be marked, so that its writes stay one transaction.
    writes = context is not None and (context.isinsert or context.isupdate or context.isdelete)
    if writes and connection.connection.driver_connection.autocommit:
        raise RuntimeError(f"{request.endpoint} writes under {request.method}: mark it @locking_read")


def _checkin(dbapi_connection, _record) -> None:
    if dbapi_connection is not None and not dbapi_connection.closed and dbapi_connection.autocommit:
        dbapi_connection.autocommit = False


def init_transactions(app: Flask, db: SQLAlchemy) -> None:
    with app.app_context():
        engine = db.engine  # created by init_app; nothing connects here
    event.listen(engine, "begin", _begin)
    event.listen(engine, "before_cursor_execute", _refuse_writes)
    event.listen(engine, "checkin", _checkin)


def driver_sql(statement: ClauseElement) -> str:
    """`statement` as the SQL text psycopg2 takes (`%(name)s` parameters), for `read_rows`.
    Compile it once, at import or per shape: compiling costs more than running a small
    statement. Every parameter must be a named one, given at execution; a value compiled into
    the statement (SQLAlchemy makes one of every Python literal) would be lost: ValueError."""
    compiled = statement.compile(dialect=_DIALECT)
    if fixed := [name for name, bind in compiled.binds.items() if bind.value is not None or bind.callable]:
        raise ValueError(f"values compiled into a statement run by name: {fixed}")
    return str(compiled)


def read_rows(sql: str, params: dict) -> list[tuple]:
    """The rows of one read-only statement, `sql` from `driver_sql`, run with psycopg2 on a
    pooled connection in autocommit (one round trip after the pool's pre-ping), outside the
    ORM session. Raises as `run_in_one_round_trip`."""
    return run_in_one_round_trip(sql, params)


def run_in_one_round_trip(sql: str, params: dict) -> list[tuple]:
    """The rows of the last statement of `sql`, one statement or several separated by `;`,
    sent as one simple-query message on a pooled connection in autocommit. PostgreSQL runs
    the statements of such a message as ONE implicit transaction, all or nothing, each with
    its own snapshot at READ COMMITTED (PostgreSQL docs, Frontend/Backend Protocol, "Multiple
    Statements in a Simple Query"): a write of several statements in one round trip.

    Raises SQLAlchemy's DBAPIError (answered 503 or 500 by app.errors) for a database error; a
    connection lost on the way is invalidated, so the pool replaces it. Metrics count the
    checkout (pool events) and the lost connection like the session's."""
    metrics = current_app.extensions.get("metrics")
    if metrics is not None:
        metrics.asking_for_connection()
    try:
        connection = db.engine.raw_connection()  # the pool's checkout, pre-ping included
    except psycopg2.Error as error:  # no connection could be opened
        if metrics is not None:
            metrics.count_failure("connect")
        raise DBAPIError.instance(sql, params, error, psycopg2.Error) from error
    try:
        driver = connection.driver_connection
        driver.autocommit = True  # back off at checkin (`_checkin`)
        with driver.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    except psycopg2.Error as error:
        lost = db.engine.dialect.is_disconnect(error, connection.driver_connection, None)
        if lost:
            connection.invalidate(error)
            if metrics is not None:
                metrics.count_failure("lost")
        raise DBAPIError.instance(sql, params, error, psycopg2.Error, connection_invalidated=lost) from error
    finally:
        connection.close()  # back to the pool

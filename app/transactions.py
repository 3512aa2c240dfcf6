"""A write is one transaction; a plain read needs none.

PostgreSQL runs at READ COMMITTED, where every statement takes its own snapshot whether or not
it is inside a transaction block, so a request that only reads sees the same data without one.
Such requests (GET and HEAD, except views marked `@locking_read`) run with psycopg2's autocommit
on: no BEGIN before the first statement, no ROLLBACK after the last, two round trips fewer on
every read. SQLAlchemy's own pre-ping switches autocommit the same way. The connection goes
back to the pool with it off, so every other request is one transaction, as before; an
unmarked read that tries to write is refused (a 500), never committed statement by statement.
"""

from flask import Flask, current_app, has_request_context, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event

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

"""Blueprint "tasks": the caller's tasks, filtered, sorted and paged; each with a strong ETag."""

import hashlib
import json
from datetime import UTC, datetime
from functools import lru_cache

from flask import Response, g, request, url_for
from flask.views import MethodView
from flask_smorest import abort
from sqlalchemy import (
    Date,
    and_,
    bindparam,
    delete,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY

from app.api import Blueprint, json_response
from app.changes import change_seq, record_deleted
from app.extensions import db
from app.idempotency import IdempotencyKeySchema, commit_or_defer, idempotent
from app.models import (
    DUE_STANDS_AT,
    TAG_NAME_ORDER,
    TZ,
    AuthSession,
    Tag,
    Task,
    User,
    local_date,
    local_day_start,
)
from app.openapi import answer_links
from app.schemas.common import Priority, UTCDateTime
from app.schemas.tasks import TaskListSchema, TaskQueryArgsSchema, TaskSchema, make_cursor
from app.tags import resolve_tags
from app.tokens import (
    LIVE_SESSION,
    checked_user,
    current_user,
    require_live_session,
    session_params,
    token_required,
)
from app.transactions import driver_sql, read_rows, run_in_one_round_trip

blp = Blueprint("tasks", __name__, url_prefix="/api/v1/tasks", description="Tasks")

LOCATION = {"Location": {"description": "URL of the new task", "schema": {"type": "string"}}}
ETAG = {"ETag": {"description": "Strong validator of this representation", "schema": {"type": "string"}}}
# Sort name -> (columns whose first non-null is the key, stand-in for null when ascending,
# when descending): nulls sort last both ways as a value past every real one; migrations
# 0002 and 0003 index these expressions (COALESCE(*columns, stand-in)).
SORT_KEYS = {
    "created_at": ((Task.created_at,), None, None),
    "updated_at": ((Task.updated_at,), None, None),
    "due_at": (DUE_STANDS_AT, "'infinity'::timestamptz", "'-infinity'::timestamptz"),
    "priority": ((Task.priority_level,), "5::smallint", "0::smallint"),
}


def now() -> datetime:
    """The instant `overdue` is judged at (the app's clock; tests replace this function)."""
    return datetime.now(UTC)


def tag_names_json(tags: str) -> str:
    """SQL: the JSON array of the names in `tags` (a FROM clause naming its rows `tags`), sorted
    as TAG_NAME_ORDER sorts them; [] when there are none."""
    order = TAG_NAME_ORDER.compile(dialect=postgresql.dialect())
    return f"coalesce((SELECT json_agg(tags.name ORDER BY {order}) {tags}), '[]')"


def task_json(row: str, tags: str | None = None) -> str:
    """SQL: the Task representation of the row `row` (a table or CTE with the columns of tasks)
    as JSON text, one line per TaskSchema field (STYLE.md, "When a representation is built in
    SQL"); `tags`, SQL for its tag names' JSON array, defaults to the stored ones.
    tests/test_sql_representations.py proves it equals TaskSchema().dump of the same row."""
    stored = "FROM task_tags JOIN tags ON tags.id = task_tags.tag_id WHERE task_tags.task_id"
    tags = tags or tag_names_json(f"{stored} = {row}.id")
    return f"""json_build_object(
        'id', {row}.id,
        'title', {row}.title,
        'description', {row}.description,
        'completed', {row}.completed,
        'completed_at', {UTCDateTime.sql(f"{row}.completed_at")},
        'due_at', {UTCDateTime.sql(f"{row}.due_at")},
        'due_date', {row}.due_date,
        'priority', {Priority.sql(f"{row}.priority_level")},
        'tags', {tags},
        'created_at', {UTCDateTime.sql(f"{row}.created_at")},
        'updated_at', {UTCDateTime.sql(f"{row}.updated_at")}
    )::text"""


TASK_JSON = task_json("tasks")
# A read is one statement: the token's session row, and the caller's task if there is one. No
# row is a dead session (401); a row whose body is NULL, a missing or another user's task (404).
TASK_BY_ID = driver_sql(
    text(f"""
    SELECT task.body FROM sessions LEFT JOIN (
        SELECT {TASK_JSON} AS body FROM tasks WHERE tasks.id = :task_id AND tasks.user_id = :user_id
    ) AS task ON true
    WHERE {LIVE_SESSION}""")
)
# The task to change, locked, with whether the token's session is live and the database's clock.
LOCKED_TASK = select(
    Task,
    select(literal(1)).select_from(AuthSession).where(text(LIVE_SESSION)).exists().label("live"),
    func.statement_timestamp().label("now"),
).with_for_update(of=Task)
# A create is one statement after the change stamp: check the session, insert the tags not yet
# there (ignoring case; an existing tag keeps its spelling), the task and its links, and build
# the answer. Rows one CTE inserts are invisible to its siblings' reads, hence `tag_rows`, the
# union of the tags it inserted and those that were there. A tag another transaction commits
# after this statement's snapshot is in neither: the task is then not inserted (id NULL) and
# the caller falls back. The new task and tags carry the transaction's change stamp
# (app/changes.py), drawn by the statement before and read back from the users row. No row: the
# session is dead (401).
_CREATE_TASK_SQL = f"""
    WITH session AS (
        SELECT sessions.user_id, users.sync_seq
        FROM sessions JOIN users ON users.id = sessions.user_id WHERE {LIVE_SESSION}
    ), wanted AS (
        SELECT name FROM unnest(CAST(:tag_names AS text[])) AS name
    ), new_tags AS (
        INSERT INTO tags (user_id, name, sync_seq)
        SELECT session.user_id, wanted.name, session.sync_seq FROM session, wanted
        ON CONFLICT DO NOTHING
        RETURNING id, name
    ), tag_rows AS (
        SELECT id, name FROM new_tags
        UNION
        SELECT tags.id, tags.name FROM tags JOIN session ON tags.user_id = session.user_id
        WHERE lower(tags.name) IN (SELECT lower(name) FROM wanted)
    ), new_task AS (
        INSERT INTO tasks (user_id, title, description, completed, completed_at, due_at, due_date,
            due_date_start, priority_level, sync_seq)
        SELECT session.user_id, :title, :description, :completed,
            CASE WHEN :completed THEN statement_timestamp() END, :due_at, :due_date, :due_date_start,
            :priority_level, session.sync_seq
        FROM session
        WHERE (SELECT count(*) FROM tag_rows) = (SELECT count(DISTINCT lower(name)) FROM wanted)
        RETURNING id, title, description, completed, completed_at, due_at, due_date, priority_level,
            created_at, updated_at
    ), links AS (
        INSERT INTO task_tags (task_id, tag_id) SELECT new_task.id, tag_rows.id FROM new_task, tag_rows
    )
    SELECT new_task.id, {task_json("new_task", tags=tag_names_json("FROM tag_rows AS tags"))} AS body
    FROM session LEFT JOIN new_task ON true"""
# The change stamp of a create, drawn only for a live session (a dead one changes nothing).
STAMP_IF_LIVE = f"""
    UPDATE users SET sync_seq = users.sync_seq + 1
    WHERE users.id = :user_id AND EXISTS (SELECT FROM sessions WHERE {LIVE_SESSION})"""
# The stamp and the create in one round trip: two statements in one message, which PostgreSQL
# runs as one transaction, each statement with its own snapshot (app.transactions): the
# create's snapshot is still taken after the stamp's lock, as in the two-statement form.
STAMP_AND_CREATE = driver_sql(text(f"{STAMP_IF_LIVE};\n{_CREATE_TASK_SQL}"))
CREATE_TASK = text(_CREATE_TASK_SQL)


@blp.route("")
class Tasks(MethodView):
    decorators = [token_required(session_check_in_statement=("GET", "POST"))]

    @blp.arguments(TaskQueryArgsSchema, location="query")
    @blp.response(200, TaskListSchema)
    def get(self, args):
        """List the caller's tasks

        Filters combine with AND. Paging is keyset, not offset: `next_cursor` names the last
        row of the page, so tasks created or deleted meanwhile never shift a page. The cursor
        is signed and pinned to the sort and filters it was made with (another sort or filter
        is a 422 on `cursor`); `limit` may change between pages. `overdue=false` is every task
        that `overdue=true` leaves out, including those without `due_at`.
        """
        rows = read_rows(*_page(args))
        require_live_session(rows[0] if rows else None)
        tasks = [row for row in rows if row[2] is not None]  # (body, key, id)
        page = tasks[: args["limit"]]
        next_cursor = make_cursor(args, page[-1][1], page[-1][2]) if len(tasks) > len(page) else None
        items = ",".join(row[0] for row in page)
        return json_response(f'{{"items":[{items}],"next_cursor":{json.dumps(next_cursor)}}}')

    @blp.arguments(TaskSchema)
    @blp.arguments(IdempotencyKeySchema, location="headers", as_kwargs=True)
    @idempotent
    @blp.response(201, TaskSchema, headers=LOCATION)
    @blp.doc(**answer_links(201, "Task", "/api/v1/tasks/{task_id}", {"task_id": "$response.body#/id"}))
    @blp.problem_response(409, "A request with this Idempotency-Key is still in progress")
    def post(self, data):
        """Create a task

        With an `Idempotency-Key` header the same key and JSON body within 24 h replay the
        first 2xx answer (status, body, `Location`, plus `Idempotent-Replayed: true`) and create
        nothing; another body with the key is a 422; while the first request runs, a 409. The key
        is claimed in PostgreSQL before the task is created (a short transaction of its own,
        INSERT ... ON CONFLICT DO NOTHING); the task and the stored answer are then committed in
        one transaction. A failed request releases the key, so it can be retried. A claim left
        unanswered for 10 minutes is abandoned.
        """
        task_id, answer = _create(data)
        return answer, 201, {"Location": url_for("tasks.TaskById", task_id=task_id, _external=True)}


@blp.route("/<id:task_id>")
class TaskById(MethodView):
    decorators = [token_required(session_check_in_statement=("GET", "PATCH"))]

    @blp.response(200, TaskSchema, headers=ETAG)
    def get(self, task_id):
        """Get a task

        The `ETag` is a hash of the representation itself, so it changes with anything the
        answer shows, including a tag renamed elsewhere.
        """
        rows = read_rows(TASK_BY_ID, {**session_params(), "task_id": task_id})
        (body,) = require_live_session(rows[0] if rows else None)
        if body is None:
            abort(404, message="Task not found.")
        return json_response(body), {"ETag": _etag(json.loads(body))}

    @blp.arguments(TaskSchema(partial=True), required=False)
    @blp.response(200, TaskSchema, headers=ETAG)
    @blp.problem_response(412, "If-Match does not match the task's current ETag")
    def patch(self, data, task_id):
        """Change a task

        Partial: absent fields stay; `tags` replaces the set; null clears `due_at` and
        `priority`. `completed: true` on an open task stamps `completed_at`, on a completed
        one keeps it. `If-Match` (optional; strong comparison; `*` matches) is checked with
        the row locked (SELECT ... FOR UPDATE), so of two writers holding the same ETag one
        wins and the other gets 412.
        """
        seq = change_seq(current_user.id)  # first: the user's lock before any other row's
        zone = _timezone_for(data)
        task, now = _locked_task_or_404(task_id)
        if not _if_match(_etag(TaskSchema().dump(task))):
            abort(412, message="The task has changed since that ETag; fetch it again.")
        _apply(task, data, now, zone)
        task.updated_at, task.sync_seq = now, seq
        db.session.commit()
        return task, {"ETag": _etag(TaskSchema().dump(task))}

    @blp.response(204)
    def delete(self, task_id):
        """Delete a task"""
        change_seq(current_user.id)
        deleted = db.session.execute(
            delete(Task).where(Task.id == task_id, Task.user_id == current_user.id).returning(Task.id)
        ).first()
        if deleted is None:
            abort(404, message="Task not found.")
        record_deleted(current_user.id, "task", deleted)
        db.session.commit()


def _locked_task_or_404(task_id: int) -> tuple[Task, datetime]:
    """The caller's task `task_id`, locked (SELECT ... FOR UPDATE), and the database's clock, read
    by the statement that also checks the token's session: a dead session is a 401, a missing or
    another user's task a 404. Stamping the task with that clock value, rather than with an SQL
    expression, spares reading the stamps back after the UPDATE."""
    row = db.session.execute(
        LOCKED_TASK.where(Task.id == task_id, Task.user_id == current_user.id), session_params()
    ).first()
    if row is None:
        checked_user()  # a dead session is a 401 before a missing task is a 404
        abort(404, message="Task not found.")
    require_live_session(row if row.live else None)
    return row.Task, row.now


def _create(data: dict) -> tuple[int, Response | Task]:
    """Insert and commit (or under an Idempotency-Key, leave to its wrapper) the caller's task
    from a loaded body; (its id, the answer). The change stamp, then one statement
    (CREATE_TASK) whose JSON is the answer, both in one round trip when nothing else of the
    request is in a transaction; or, when a tag it names was committed by another transaction
    after that statement began, through the ORM, which then sees it."""
    # The change stamp first, as in every write: the user's row lock, taken before the statement
    # starts, means its snapshot sees every earlier write of the user (a tag deleted a moment
    # ago is not linked), and comes before the FOR SHARE read of the user's zone. Drawn inside
    # the statement instead, the stamp's lock came after the snapshot: a tag deleted meanwhile
    # was still linked (a foreign-key 500, tests/test_sync_concurrency.py through PgBouncer).
    day = data.get("due_date")
    if day is None and not g.get("idempotency_deferred_commit") and g.get("checked_user") is None:
        # Nothing else of this request's work is in a transaction (no stored Idempotency-Key
        # answer, no zone read): the stamp and the statement go in one round trip, autocommit.
        rows = run_in_one_round_trip(STAMP_AND_CREATE, _create_params(data, None))
        task_id, body = require_live_session(rows[0] if rows else None)
        if task_id is not None:
            return task_id, json_response(body)
    seq = change_seq(current_user.id)
    zone = _timezone_for(data)
    row = require_live_session(db.session.execute(CREATE_TASK, _create_params(data, zone)).first())
    if row.id is not None:
        commit_or_defer()
        return row.id, json_response(row.body)
    task = Task(user_id=current_user.id, sync_seq=seq)
    _apply(task, data, zone=zone)
    db.session.add(task)
    commit_or_defer()  # a flush under an Idempotency-Key: the id is known either way
    return task.id, task


def _create_params(data: dict, zone: str | None) -> dict:
    day = data.get("due_date")
    return {
        **session_params(),
        "title": data["title"],
        "description": data["description"],
        "completed": data["completed"],
        "due_at": data.get("due_at"),
        "due_date": day,
        "due_date_start": None if day is None else local_day_start(day, zone),
        "priority_level": data.get("priority_level"),
        "tag_names": data["tag_names"],
    }


def move_date_only_tasks(user: User) -> None:
    """Stand `user`'s date-only tasks at the start of their days in the user's new timezone.

    In the caller's transaction (the caller commits): the user's distinct due dates are read,
    their starts computed (local_day_start) and written in one UPDATE. The users row is
    flushed, and so locked, first: a concurrent write of a due_date waits for this transaction
    (it reads the zone FOR SHARE, see _timezone_for) instead of storing a start in the old zone.
    """
    db.session.flush()
    mine = (Task.user_id == user.id, Task.due_date.is_not(None))
    days = db.session.scalars(select(Task.due_date).where(*mine).distinct()).all()
    if not days:
        return
    starts = (
        func.unnest(
            bindparam("days", days, type_=ARRAY(Date)),
            bindparam("starts", [local_day_start(day, user.timezone) for day in days], type_=ARRAY(TZ)),
        )
        .table_valued("day", "start")
        .render_derived(name="starts")
    )
    db.session.execute(
        update(Task)
        .where(*mine, Task.due_date == starts.c.day)
        .values(due_date_start=starts.c.start)
        .execution_options(synchronize_session=False)
    )


def _timezone_for(data: dict) -> str | None:
    """The caller's current timezone when the body sets a due_date (else None), read with the
    users row locked FOR SHARE until the commit, so that a concurrent PATCH /me cannot move
    the user's date-only tasks to another zone under this write."""
    if data.get("due_date") is None:
        return None
    query = select(User.timezone).where(User.id == current_user.id).with_for_update(read=True)
    return db.session.scalar(query)


def _apply(task: Task, data: dict, now=None, zone: str | None = None) -> None:
    """Copy a loaded body onto `task`; `completed` and `tags` have rules of their own. `now`, the
    database's clock (a value read from it, or by default its `statement_timestamp()`), stamps
    `completed_at`. `zone`: the user's timezone, needed when the body sets a due_date."""
    for field in ("title", "description", "due_at", "priority_level"):
        if field in data:
            setattr(task, field, data[field])
    # At most one of due_at and due_date: setting one (non-null) clears the other.
    if "due_date" in data or data.get("due_at") is not None:
        task.set_due_date(data.get("due_date"), zone)
    if "completed" in data and data["completed"] != task.completed:
        task.completed = data["completed"]
        # The database's clock, like created_at and updated_at.
        task.completed_at = (
            (func.statement_timestamp() if now is None else now) if data["completed"] else None
        )
    if "tag_names" in data:
        task.tags = resolve_tags(current_user.id, data["tag_names"])


def _etag(representation: dict) -> str:
    """A strong entity tag: a hash of a task's representation (parsed JSON, whether the schema
    dumped it or SQL built it: the two are equal, so their tags are too)."""
    canonical = json.dumps(representation, sort_keys=True)
    return f'"{hashlib.sha256(canonical.encode()).hexdigest()[:32]}"'


def _if_match(etag: str) -> bool:
    """Whether the request's If-Match (if any) allows a write to the version `etag`.

    Strong comparison: a weak tag (W/"...") or an unquoted one never matches."""
    header = request.headers.get("If-Match")
    if header is None:
        return True
    candidates = {candidate.strip() for candidate in header.split(",")}
    return "*" in candidates or etag in candidates


def _sort_key(name: str, descending: bool, values: tuple | None = None):
    """The indexed sort expression of sort `name`: COALESCE(first non-null, stand-in for null)
    over the sort's columns, or over `values` (the cursor's key, a bound parameter) instead."""
    columns, null_asc, null_desc = SORT_KEYS[name]
    stand_in = null_desc if descending else null_asc
    values = columns if values is None else values
    return values[0] if stand_in is None else func.coalesce(*values, literal_column(stand_in))


# The query parameters that filter, in the order the SQL tests them.
FILTERS = ("completed", "priority", "due_after", "due_before", "overdue", "q")


def _page(args: dict) -> tuple[str, dict]:
    """The SQL (`driver_sql`) and parameters of one list page with the token's session check:
    no row at all if the session is dead; one row of NULLs if it is live and the page is
    empty; else (body, key, id) per task, one more than `limit` if there is a next page."""
    shape = (
        args["sort"],
        "cursor" in args,
        len(args.get("tag", ())),
        tuple(name for name in FILTERS if name in args),
        args.get("overdue"),
    )
    params = {**session_params(), "limit": args["limit"] + 1}
    params.update((name, args[name]) for name in FILTERS if name in args)
    params.update((f"tag_{index}", name) for index, name in enumerate(args.get("tag", ())))
    if "cursor" in args:
        params["after_key"], params["after_id"] = args["cursor"]
    if "overdue" in args:
        params["now"] = moment = now()
        # A date-only task is overdue once its whole day has passed: its date is before today's
        # date on the user's wall clock.
        params["today"] = local_date(moment, current_user.timezone)
    return _page_sql(*shape), params


@lru_cache(maxsize=512)
def _page_sql(sort: str, after: bool, tags: int, filters: tuple[str, ...], overdue: bool | None) -> str:
    """The list page's SQL for one shape of query string; every value is a named parameter, so
    each shape is built and compiled once per process (building and compiling it cost more
    than running it). Shapes are bounded: 7 sorts x cursor or not x 0..20 tags x 2^6 filters."""
    descending, name = sort.startswith("-"), sort.lstrip("-")
    columns = SORT_KEYS[name][0]
    key = _sort_key(name, descending)
    # The cursor's key: where the task stands (for due_at: due_at, or its day's start), or null.
    cursor_key = columns[0] if len(columns) == 1 else func.coalesce(*columns)
    query = select(
        literal_column(TASK_JSON).label("body"), cursor_key.label("key"), Task.id, key.label("sort_key")
    ).where(Task.user_id == bindparam("user_id"), *_filters(tags, filters, overdue))
    if after:
        after_value = bindparam("after_key", type_=columns[0].type)
        row = tuple_(key, Task.id)
        after_row = tuple_(_sort_key(name, descending, (after_value,)), bindparam("after_id"))
        query = query.where(row < after_row if descending else row > after_row)
    order = (key.desc(), Task.id.desc()) if descending else (key, Task.id)
    page = query.order_by(*order).limit(bindparam("limit")).subquery("page")
    order = (page.c.sort_key, page.c.id)
    return driver_sql(
        select(page.c.body, page.c.key, page.c.id)
        .select_from(AuthSession.__table__.outerjoin(page, true()))
        .where(text(LIVE_SESSION))
        .order_by(*(c.desc() for c in order) if descending else order)
    )


def _filters(tags: int, filters: tuple[str, ...], overdue: bool | None) -> list:
    conditions = []
    if "completed" in filters:
        conditions.append(Task.completed == bindparam("completed"))
    if "priority" in filters:
        conditions.append(Task.priority_level == bindparam("priority"))
    for index in range(tags):
        conditions.append(Task.tags.any(func.lower(Tag.name) == func.lower(bindparam(f"tag_{index}"))))
    # Where a task stands in time, as the due sorts' indexes have it: the descending key puts
    # tasks without a due at -infinity, the ascending one at infinity, so a finite bound on
    # the one or the other leaves them out by itself.
    if "due_after" in filters:
        conditions.append(_sort_key("due_at", True) >= bindparam("due_after", type_=Task.due_at.type))
    if "due_before" in filters:
        conditions.append(_sort_key("due_at", False) < bindparam("due_before", type_=Task.due_at.type))
    if "overdue" in filters:
        moment, today = bindparam("now", type_=Task.due_at.type), bindparam("today", type_=Task.due_date.type)
        overdue_now = and_(Task.completed.is_(False), or_(Task.due_at < moment, Task.due_date < today))
        # Spelled out: NOT (...) would be NULL, not true, for a task without a due.
        no_due = and_(Task.due_at.is_(None), Task.due_date.is_(None))
        not_overdue = or_(Task.completed, no_due, Task.due_at >= moment, Task.due_date >= today)
        conditions.append(overdue_now if overdue else not_overdue)
    if "q" in filters:
        search = func.websearch_to_tsquery(literal_column("'english'"), bindparam("q", type_=Task.title.type))
        conditions.append(Task.search_vector.bool_op("@@")(search))
    return conditions

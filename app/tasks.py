"""Blueprint "tasks": the caller's tasks, filtered, sorted and paged; each with a strong ETag."""

import hashlib
import json
from datetime import UTC, datetime

from flask import request, url_for
from flask.views import MethodView
from flask_jwt_extended import current_user, jwt_required
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
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from app.api import Blueprint
from app.extensions import db
from app.idempotency import IdempotencyKeySchema, commit_or_defer, idempotent
from app.models import DUE_STANDS_AT, TZ, Tag, Task, User, local_date, local_day_start
from app.schemas.tasks import TaskListSchema, TaskQueryArgsSchema, TaskSchema, make_cursor
from app.tags import resolve_tags

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


@blp.route("")
class Tasks(MethodView):
    decorators = [jwt_required()]

    @blp.arguments(TaskQueryArgsSchema, location="query")
    @blp.response(200, TaskListSchema)
    def get(self, args):
        """List the caller's tasks

        Filters combine with AND. Paging is keyset, not offset: `next_cursor` names the last
        row of the page, so tasks created or deleted meanwhile never shift a page. The cursor
        is signed and pinned to the sort and filters it was made with (another sort or filter
        is a 422 on `cursor`); `limit` may change between pages. `overdue=false` is every task
        that `overdue=true` leaves out, including those without a due.
        """
        rows = db.session.scalars(_list_query(args)).all()
        page = rows[: args["limit"]]
        next_cursor = _cursor_after(page[-1], args) if len(rows) > len(page) else None
        return {"items": page, "next_cursor": next_cursor}

    @blp.arguments(TaskSchema)
    @blp.arguments(IdempotencyKeySchema, location="headers", as_kwargs=True)
    @idempotent
    @blp.response(201, TaskSchema, headers=LOCATION)
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
        task = Task(user_id=current_user.id)
        _apply(task, data, _timezone_for(data))
        db.session.add(task)
        commit_or_defer()
        return task, {"Location": url_for("tasks.TaskById", task_id=task.id, _external=True)}


@blp.route("/<id:task_id>")
class TaskById(MethodView):
    decorators = [jwt_required()]

    @blp.response(200, TaskSchema, headers=ETAG)
    def get(self, task_id):
        """Get a task

        The `ETag` is a hash of the representation itself, so it changes with anything the
        answer shows, including a tag renamed elsewhere.
        """
        task = get_task_or_404(task_id)
        return task, {"ETag": _etag(task)}

    @blp.arguments(TaskSchema(partial=True))
    @blp.response(200, TaskSchema, headers=ETAG)
    @blp.problem_response(412, "If-Match does not match the task's current ETag")
    def patch(self, data, task_id):
        """Change a task

        Partial: absent fields stay; `tags` replaces the set; null clears `due_at`, `due_date`
        and `priority`; a non-null `due_at` clears `due_date` and a non-null `due_date` clears
        `due_at`. `completed: true` on an open task stamps `completed_at`, on a completed
        one keeps it. `If-Match` (optional; strong comparison; `*` matches) is checked with
        the row locked (SELECT ... FOR UPDATE), so of two writers holding the same ETag one
        wins and the other gets 412.
        """
        zone = _timezone_for(data)  # before the task's lock: users, then tasks, as PATCH /me
        task = get_task_or_404(task_id, for_update=True)
        if not _if_match(_etag(task)):
            abort(412, message="The task has changed since that ETag; fetch it again.")
        _apply(task, data, zone)
        task.updated_at = func.statement_timestamp()
        db.session.commit()
        return task, {"ETag": _etag(task)}

    @blp.response(204)
    def delete(self, task_id):
        """Delete a task"""
        deleted = db.session.execute(
            delete(Task).where(Task.id == task_id, Task.user_id == current_user.id).returning(Task.id)
        ).first()
        if deleted is None:
            abort(404, message="Task not found.")
        db.session.commit()


def get_task_or_404(task_id: int, *, for_update: bool = False) -> Task:
    """The caller's task `task_id`; another user's task is a 404 like a missing one."""
    query = select(Task).where(Task.id == task_id, Task.user_id == current_user.id)
    if for_update:
        query = query.with_for_update(of=Task)
    task = db.session.scalar(query)
    if task is None:
        abort(404, message="Task not found.")
    return task


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


def _apply(task: Task, data: dict, zone: str | None = None) -> None:
    """Copy a loaded body onto `task`; `completed`, `tags` and the due fields have rules of
    their own. `zone`: the user's timezone, needed when the body sets a due_date."""
    for field in ("title", "description", "due_at", "priority_level"):
        if field in data:
            setattr(task, field, data[field])
    # At most one of due_at and due_date: setting one (non-null) clears the other.
    if "due_date" in data or data.get("due_at") is not None:
        task.set_due_date(data.get("due_date"), zone)
    if "completed" in data and data["completed"] != task.completed:
        task.completed = data["completed"]
        # The database's clock, like created_at and updated_at.
        task.completed_at = func.statement_timestamp() if data["completed"] else None
    if "tag_names" in data:
        task.tags = resolve_tags(current_user.id, data["tag_names"])


def _etag(task: Task) -> str:
    """A strong entity tag: a hash of the task's representation."""
    representation = json.dumps(TaskSchema().dump(task), sort_keys=True)
    return f'"{hashlib.sha256(representation.encode()).hexdigest()[:32]}"'


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
    over the sort's columns, or over `values` (the cursor's key, a bound literal) instead."""
    columns, null_asc, null_desc = SORT_KEYS[name]
    stand_in = null_desc if descending else null_asc
    values = columns if values is None else values
    return values[0] if stand_in is None else func.coalesce(*values, literal_column(stand_in))


def _list_query(args: dict):
    """One page (plus one row, to know whether there is a next page) of the caller's tasks."""
    descending, name = args["sort"].startswith("-"), args["sort"].lstrip("-")
    key = _sort_key(name, descending)
    query = select(Task).where(Task.user_id == current_user.id, *_filters(args))
    if "cursor" in args:
        after_key, after_id = args["cursor"]
        after_value = literal(after_key, SORT_KEYS[name][0][0].type)
        row, after = tuple_(key, Task.id), tuple_(_sort_key(name, descending, (after_value,)), after_id)
        query = query.where(row < after if descending else row > after)
    order = (key.desc(), Task.id.desc()) if descending else (key, Task.id)
    return query.order_by(*order).limit(args["limit"] + 1)


def _cursor_after(task: Task, args: dict) -> str:
    """The cursor after `task`: its sort key (for due_at: where it stands in time) and id."""
    columns = SORT_KEYS[args["sort"].lstrip("-")][0]
    key = next((value for value in (getattr(task, c.key) for c in columns) if value is not None), None)
    return make_cursor(args, key, task.id)


def _filters(args: dict) -> list:
    conditions = []
    if "completed" in args:
        conditions.append(Task.completed == args["completed"])
    if "priority" in args:
        conditions.append(Task.priority_level == args["priority"])
    for name in args.get("tag", []):
        conditions.append(Task.tags.any(func.lower(Tag.name) == func.lower(name)))
    # Where a task stands in time, as the due sorts' indexes have it: the descending key puts
    # tasks without a due at -infinity, the ascending one at infinity, so a finite bound on
    # the one or the other leaves them out by itself.
    if "due_after" in args:
        conditions.append(_sort_key("due_at", True) >= args["due_after"])
    if "due_before" in args:
        conditions.append(_sort_key("due_at", False) < args["due_before"])
    if "overdue" in args:
        moment = now()
        # A date-only task is overdue once its whole day has passed: its date is before today's
        # date on the user's wall clock.
        today = local_date(moment, current_user.timezone)
        overdue = and_(Task.completed.is_(False), or_(Task.due_at < moment, Task.due_date < today))
        # Spelled out: NOT (...) would be NULL, not true, for a task without a due.
        no_due = and_(Task.due_at.is_(None), Task.due_date.is_(None))
        not_overdue = or_(Task.completed, no_due, Task.due_at >= moment, Task.due_date >= today)
        conditions.append(overdue if args["overdue"] else not_overdue)
    if "q" in args:
        conditions.append(Task.search_vector.bool_op("@@")(func.websearch_to_tsquery("english", args["q"])))
    return conditions

"""Blueprint "tasks": the caller's tasks, filtered, sorted and paged; each with a strong ETag."""

import hashlib
import json

from flask import request, url_for
from flask.views import MethodView
from flask_jwt_extended import current_user, jwt_required
from flask_smorest import abort
from sqlalchemy import delete, func, literal, literal_column, or_, select, tuple_

from app.api import Blueprint
from app.changes import change_seq, record_deleted
from app.extensions import db
from app.idempotency import IdempotencyKeySchema, commit_or_defer, idempotent
from app.models import Tag, Task
from app.schemas.tasks import TaskListSchema, TaskQueryArgsSchema, TaskSchema, make_cursor
from app.tags import resolve_tags

blp = Blueprint("tasks", __name__, url_prefix="/api/v1/tasks", description="Tasks")

LOCATION = {"Location": {"description": "URL of the new task", "schema": {"type": "string"}}}
ETAG = {"ETag": {"description": "Strong validator of this representation", "schema": {"type": "string"}}}
# Sort name -> (column, stand-in for null when ascending, when descending): nulls sort
# last both ways as a value past every real one; migration 0002 indexes these expressions.
SORT_KEYS = {
    "created_at": (Task.created_at, None, None),
    "updated_at": (Task.updated_at, None, None),
    "due_at": (Task.due_at, "'infinity'::timestamptz", "'-infinity'::timestamptz"),
    "priority": (Task.priority_level, "5::smallint", "0::smallint"),
}


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
        that `overdue=true` leaves out, including those without `due_at`.
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
        task = Task(user_id=current_user.id, sync_seq=change_seq(current_user.id))
        _apply(task, data)
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

        Partial: absent fields stay; `tags` replaces the set; null clears `due_at` and
        `priority`. `completed: true` on an open task stamps `completed_at`, on a completed
        one keeps it. `If-Match` (optional; strong comparison; `*` matches) is checked with
        the row locked (SELECT ... FOR UPDATE), so of two writers holding the same ETag one
        wins and the other gets 412.
        """
        seq = change_seq(current_user.id)  # first: the user's lock before the task's
        task = get_task_or_404(task_id, for_update=True)
        if not _if_match(_etag(task)):
            abort(412, message="The task has changed since that ETag; fetch it again.")
        _apply(task, data)
        task.updated_at, task.sync_seq = func.statement_timestamp(), seq
        db.session.commit()
        return task, {"ETag": _etag(task)}

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


def get_task_or_404(task_id: int, *, for_update: bool = False) -> Task:
    """The caller's task `task_id`; another user's task is a 404 like a missing one."""
    query = select(Task).where(Task.id == task_id, Task.user_id == current_user.id)
    if for_update:
        query = query.with_for_update(of=Task)
    task = db.session.scalar(query)
    if task is None:
        abort(404, message="Task not found.")
    return task


def _apply(task: Task, data: dict) -> None:
    """Copy a loaded body onto `task`; `completed` and `tags` have rules of their own."""
    for field in ("title", "description", "due_at", "priority_level"):
        if field in data:
            setattr(task, field, data[field])
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


def _list_query(args: dict):
    """One page (plus one row, to know whether there is a next page) of the caller's tasks."""
    descending = args["sort"].startswith("-")
    column, null_asc, null_desc = SORT_KEYS[args["sort"].lstrip("-")]
    stand_in = null_desc if descending else null_asc

    def sort_key(value):
        return value if stand_in is None else func.coalesce(value, literal_column(stand_in))

    key = sort_key(column)
    query = select(Task).where(Task.user_id == current_user.id, *_filters(args))
    if "cursor" in args:
        after_key, after_id = args["cursor"]
        row, after = tuple_(key, Task.id), tuple_(sort_key(literal(after_key, column.type)), after_id)
        query = query.where(row < after if descending else row > after)
    order = (key.desc(), Task.id.desc()) if descending else (key, Task.id)
    return query.order_by(*order).limit(args["limit"] + 1)


def _cursor_after(task: Task, args: dict) -> str:
    column = SORT_KEYS[args["sort"].lstrip("-")][0]
    return make_cursor(args, getattr(task, column.key), task.id)


def _filters(args: dict) -> list:
    conditions = []
    if "completed" in args:
        conditions.append(Task.completed == args["completed"])
    if "priority" in args:
        conditions.append(Task.priority_level == args["priority"])
    for name in args.get("tag", []):
        conditions.append(Task.tags.any(func.lower(Tag.name) == func.lower(name)))
    if "due_after" in args:
        conditions.append(Task.due_at >= args["due_after"])
    if "due_before" in args:
        conditions.append(Task.due_at < args["due_before"])
    if "overdue" in args:
        overdue = (Task.due_at < func.now()) & Task.completed.is_(False)
        # Spelled out: NOT (due_at < now() ...) would be NULL, not true, for a task without due_at.
        not_overdue = or_(Task.due_at.is_(None), Task.due_at >= func.now(), Task.completed)
        conditions.append(overdue if args["overdue"] else not_overdue)
    if "q" in args:
        conditions.append(Task.search_vector.bool_op("@@")(func.websearch_to_tsquery("english", args["q"])))
    return conditions

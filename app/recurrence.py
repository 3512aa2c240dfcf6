"""Blueprint "recurring_tasks": recurring definitions and their stored instances.

The rules themselves (validation, expansion across time zones) are in app.rrules.
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import url_for
from flask.views import MethodView
from flask_smorest import abort
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import lazyload

from app.api import Blueprint
from app.changes import change_seq, record_deleted
from app.extensions import db
from app.models import RecurringTask, TaskInstance
from app.openapi import answer_links
from app.rrules import RuleError, check_schedule, next_occurrences, occurrences_between
from app.schemas.recurring import (
    InstanceWindowArgsSchema,
    RecurringTaskListSchema,
    RecurringTaskSchema,
    TaskInstanceListSchema,
    TaskInstanceSchema,
)
from app.tags import resolve_tags
from app.tokens import current_user, token_required
from app.transactions import locking_read

blp = Blueprint(
    "recurring_tasks", __name__, url_prefix="/api/v1/recurring-tasks", description="Recurring tasks"
)

DEFAULT_WINDOW = timedelta(days=30)
MAX_WINDOW = timedelta(days=366)
MAX_WINDOW_OCCURRENCES = 1000
SCHEDULE = ("rrule", "dtstart", "timezone")


def _now() -> datetime:
    return datetime.now(UTC)


def _get_definition_or_404(
    definition_id: int, *, with_tags: bool = True, reload: bool = False
) -> RecurringTask:
    query = select(RecurringTask).where(
        RecurringTask.id == definition_id, RecurringTask.user_id == current_user.id
    )
    if not with_tags:
        # Spares the selectin query of the tags where the answer does not show them.
        query = query.options(lazyload(RecurringTask.tags))
    if reload:
        query = query.execution_options(populate_existing=True)
    definition = db.session.scalar(query)
    if definition is None:
        abort(404, message="Recurring task not found.")
    return definition


def with_upcoming(definition: RecurringTask) -> RecurringTask:
    """The definition with `next_occurrences` set, as its representation shows it."""
    definition.next_occurrences = next_occurrences(definition, _now())
    return definition


def _apply(definition: RecurringTask, data: dict) -> None:
    """Copy a loaded body onto the definition; 422 on `rrule` when the schedule cannot be used."""
    for name in ("title", "description", "priority_level", "rrule", "timezone"):
        if name in data:
            setattr(definition, name, data[name])
    if "dtstart" in data:
        dtstart = data["dtstart"]
        if dtstart.tzinfo is not None:
            dtstart = dtstart.astimezone(ZoneInfo(definition.timezone)).replace(tzinfo=None)
        definition.dtstart = dtstart
    try:
        check_schedule(definition.rrule, definition.dtstart, definition.timezone)
    except RuleError as error:
        abort(422, message="Invalid value for: rrule.", errors={"rrule": [str(error)]})
    if "tag_names" in data:
        definition.tags = resolve_tags(current_user.id, data["tag_names"])


_DECISIONS = """Times: `dtstart` is wall-clock time in `timezone`; a `dtstart` sent with an offset
is converted to wall-clock time in the definition's `timezone`. Occurrences keep the wall-clock
time across daylight-saving changes. A wall-clock time that does not exist (in a spring-forward
gap, e.g. 02:30) happens the gap's length later (03:30 local, PEP 495 fold=0); an ambiguous one
(fall-back, e.g. 01:30) happens once, the first time (summer time). Occurrences meeting on the
same instant count once. `UNTIL` ending in `Z` is a UTC instant, compared in the definition's
zone; without `Z` it is wall-clock time in `timezone`; a date `UNTIL` includes that whole day.
`COUNT` (at most 10000) and `UNTIL` must not both be given; `INTERVAL` is 1 to 1000; a rule that
yields no occurrence at all is 422."""


_EXCEPTIONS = """Partial: `completed`, `skipped` and `occurs_at` may each be given or left out
(an empty body changes nothing). `completed: true` sets `completed_at` to the server's now (an
instance already completed keeps its time); `false` clears it. `skipped: true` skips this one
occurrence (still listed, with `skipped: true`); `false` restores it. `occurs_at` moves this one
occurrence (without an offset it is wall-clock time in the user's zone); the rule and the other
occurrences are unchanged, windows list it by its new time, and its original slot
(`original_occurs_at`) is never generated again; `null` moves it back. A move is kept to the
second (fractions are dropped) and may land anywhere from the year 1900 to 9998, also outside
any window, and onto the time of another occurrence: both are then listed (ordered by id). A
moved occurrence can also be skipped or completed."""


@blp.route("")
class RecurringTasks(MethodView):
    decorators = [token_required()]

    @blp.response(200, RecurringTaskListSchema)
    def get(self):
        """List the caller's recurring tasks"""
        definitions = db.session.scalars(
            select(RecurringTask).where(RecurringTask.user_id == current_user.id).order_by(RecurringTask.id)
        )
        return {"items": [with_upcoming(definition) for definition in definitions]}

    @blp.arguments(RecurringTaskSchema)
    @blp.response(201, RecurringTaskSchema, headers={"Location": {"schema": {"type": "string"}}})
    @blp.doc(description=_DECISIONS)
    @blp.doc(
        **answer_links(
            201,
            "RecurringTask",
            "/api/v1/recurring-tasks/{recurring_task_id}",
            {"recurring_task_id": "$response.body#/id"},
        )
    )
    @blp.doc(
        **answer_links(
            201,
            "Instances",
            "/api/v1/recurring-tasks/{recurring_task_id}/instances",
            {"recurring_task_id": "$response.body#/id"},
            methods=("get",),
        )
    )
    def post(self, data):
        """Create a recurring task"""
        definition = RecurringTask(
            user_id=current_user.id, timezone=current_user.timezone, sync_seq=change_seq(current_user.id)
        )
        _apply(definition, data)
        db.session.add(definition)
        db.session.commit()
        location = url_for(".RecurringTaskById", recurring_task_id=definition.id, _external=True)
        return with_upcoming(definition), {"Location": location}


@blp.route("/<id:recurring_task_id>")
class RecurringTaskById(MethodView):
    decorators = [token_required()]

    @blp.response(200, RecurringTaskSchema)
    def get(self, recurring_task_id):
        """Get a recurring task with its next 5 occurrences"""
        return with_upcoming(_get_definition_or_404(recurring_task_id))

    @blp.arguments(RecurringTaskSchema(partial=True), required=False)
    @blp.response(200, RecurringTaskSchema)
    @blp.doc(
        description=f"""Partial; `tags` replaces the set; null clears
`priority`. Changing `rrule`, `dtstart` or `timezone` deletes the future instances not yet
completed; completed ones stay.
An occurrence is future when its `occurs_at` or its `original_occurs_at` is, so a skipped or moved
one of the old schedule is dropped too.\n\n{_DECISIONS}""",
    )
    def patch(self, data, recurring_task_id):
        """Change a recurring task"""
        seq = change_seq(current_user.id)
        definition = _get_definition_or_404(recurring_task_id)
        before = [getattr(definition, name) for name in SCHEDULE]
        _apply(definition, data)
        if before != [getattr(definition, name) for name in SCHEDULE]:
            drop_future_instances(definition.id)
        definition.updated_at, definition.sync_seq = func.now(), seq
        db.session.commit()
        return with_upcoming(definition)

    @blp.response(204)
    def delete(self, recurring_task_id):
        """Delete a recurring task and its instances"""
        change_seq(current_user.id)
        definition = _get_definition_or_404(recurring_task_id)
        _drop_instances(definition.id)
        record_deleted(current_user.id, "recurring_task", [definition.id])
        db.session.delete(definition)
        db.session.commit()


def _drop_instances(definition_id: int, *conditions) -> None:
    """Delete the definition's instances matching `conditions`, leaving a tombstone each."""
    dropped = db.session.scalars(
        delete(TaskInstance)
        .where(TaskInstance.recurring_task_id == definition_id, *conditions)
        .returning(TaskInstance.id)
    )
    record_deleted(current_user.id, "instance", dropped.all())


def _window(args: dict) -> tuple[datetime, datetime]:
    """The query's [start, end); 422 on `end` when it is reversed or too long."""
    start = args.get("start", _now())
    end = args.get("end", start + DEFAULT_WINDOW)
    if end < start:
        abort(422, message="Invalid value for: end.", errors={"end": ["Must not be before start."]})
    if end - start > MAX_WINDOW:
        abort(422, message="Invalid value for: end.", errors={"end": ["The window is at most 366 days."]})
    return start, end


@blp.route("/<id:recurring_task_id>/instances")
@locking_read  # the first read of a window stores its instances
class TaskInstances(MethodView):
    decorators = [token_required()]

    @blp.arguments(InstanceWindowArgsSchema, location="query")
    @blp.response(200, TaskInstanceListSchema)
    @blp.doc(
        **answer_links(
            200,
            "FirstInstance",
            "/api/v1/recurring-tasks/{recurring_task_id}/instances/{instance_id}",
            {
                "recurring_task_id": "$request.path.recurring_task_id",
                "instance_id": "$response.body#/items/0/id",
            },
            methods=("patch",),
        )
    )
    def get(self, args, recurring_task_id):
        """List the occurrences in a window, storing them as instances on first read

        `start` is inclusive (default now), `end` exclusive (default start + 30 days); at most 366
        days and 1,000 occurrences. Instances stored before a schedule change (completed ones, past
        ones) are listed too."""
        definition = _get_definition_or_404(recurring_task_id, with_tags=False)
        start, end = _window(args)
        instants = _occurrences(definition, start, end)
        rows = _stored_instances(definition.id, start, end, slots=instants)
        if not set(instants) <= {row.original_occurs_at for row in rows}:
            _store_instances(definition.id, start, end)
            # In the transaction, after the store: concurrent readers' rows are committed by
            # then (ON CONFLICT waited for them), so this sees every instance of the window.
            rows = _stored_instances(definition.id, start, end)
        db.session.commit()
        return {"items": [row for row in rows if start <= row.occurs_at < end]}


def _occurrences(definition: RecurringTask, start: datetime, end: datetime) -> list[datetime]:
    try:
        return occurrences_between(definition, start, end, MAX_WINDOW_OCCURRENCES)
    except RuleError as error:
        abort(422, message="Invalid value for: end.", errors={"end": [str(error)]})


def _stored_instances(
    definition_id: int, start: datetime, end: datetime, *, slots: list[datetime] = ()
) -> list[TaskInstance]:
    """The definition's instances now in [start, end), ordered by `occurs_at`, and also those
    whose slot (`original_occurs_at`) is one of `slots`, wherever they were moved: the caller
    learns in the same statement which of the rule's slots are stored already."""
    in_window = and_(TaskInstance.occurs_at >= start, TaskInstance.occurs_at < end)
    return list(
        db.session.scalars(
            select(TaskInstance)
            .where(
                TaskInstance.recurring_task_id == definition_id,
                or_(in_window, TaskInstance.original_occurs_at.in_(slots)) if slots else in_window,
            )
            .order_by(TaskInstance.occurs_at, TaskInstance.id)
        )
    )


def _store_instances(definition_id: int, start: datetime, end: datetime) -> None:
    """Store the window's missing occurrences, stamped as a change.

    The change stamp takes the user's row lock first, which every schedule change and deletion
    takes too: the definition is read again under it, so no instance of a schedule that a
    concurrent PATCH replaced is stored after the PATCH dropped the old ones."""
    seq = change_seq(current_user.id)
    definition = _get_definition_or_404(definition_id, with_tags=False, reload=True)
    store_occurrences(definition.id, current_user.id, _occurrences(definition, start, end), seq)


@blp.route("/<id:recurring_task_id>/instances/<id:instance_id>")
class TaskInstanceById(MethodView):
    decorators = [token_required()]

    @blp.arguments(TaskInstanceSchema)
    @blp.response(200, TaskInstanceSchema)
    @blp.doc(description=_EXCEPTIONS)
    def patch(self, data, recurring_task_id, instance_id):
        """Complete, skip or move one occurrence"""
        seq = change_seq(current_user.id)  # first: the user's lock before the instance's
        instance = _get_instance_or_404(recurring_task_id, instance_id)
        if "completed" in data:
            complete_instance(instance, data["completed"])
        if "skipped" in data:
            skip_instance(instance, data["skipped"])
        if "occurs_at" in data:
            move_instance(instance, data["occurs_at"])
        if data:
            instance.sync_seq = seq
        db.session.commit()
        return instance


def _get_instance_or_404(definition_id: int, instance_id: int) -> TaskInstance:
    # FOR UPDATE: a schedule change deleting this row at the same time makes this a 404, not a
    # write to a row that is gone.
    instance = db.session.scalar(
        select(TaskInstance)
        .join(RecurringTask, RecurringTask.id == TaskInstance.recurring_task_id)
        .where(
            TaskInstance.id == instance_id,
            TaskInstance.recurring_task_id == definition_id,
            RecurringTask.user_id == current_user.id,
        )
        .with_for_update(of=TaskInstance)
    )
    if instance is None:
        abort(404, message="Instance not found.")
    return instance


# Every write of instances is one of the functions below; none commits.


def store_occurrences(definition_id: int, user_id: int, instants: list[datetime], seq: int) -> None:
    """Store the rule's occurrences at `instants` (UTC) that are not stored yet, stamped `seq`
    (app/changes.py) for /sync.

    An occurrence is its slot (`original_occurs_at`): a slot whose occurrence was moved away
    is not stored again, and concurrent readers cannot store one slot twice."""
    if not instants:
        return
    rows = [
        {
            "recurring_task_id": definition_id,
            "user_id": user_id,
            "occurs_at": instant,
            "original_occurs_at": instant,
            "sync_seq": seq,
        }
        for instant in instants
    ]
    db.session.execute(
        insert(TaskInstance)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["recurring_task_id", "original_occurs_at"])
    )


def drop_future_instances(definition_id: int) -> None:
    """After a schedule change: delete the occurrences not completed whose time or slot is
    now or later; mark the ones kept (completed, or wholly past) `detached` from the rule."""
    now = func.now()
    _drop_instances(
        definition_id,
        TaskInstance.completed.is_(False),
        or_(TaskInstance.occurs_at >= now, TaskInstance.original_occurs_at >= now),
    )
    db.session.execute(
        update(TaskInstance)
        .where(TaskInstance.recurring_task_id == definition_id, TaskInstance.detached.is_(False))
        .values(detached=True)
    )


def complete_instance(instance: TaskInstance, completed: bool) -> None:
    """Complete or reopen; a completed instance keeps its `completed_at`."""
    if completed != instance.completed:
        instance.completed = completed
        instance.completed_at = func.now() if completed else None


def skip_instance(instance: TaskInstance, skipped: bool) -> None:
    """Skip this one occurrence, or restore it."""
    instance.skipped = skipped


def move_instance(instance: TaskInstance, occurs_at: datetime | None) -> None:
    """Move this one occurrence to `occurs_at` (UTC, to the second, as iCalendar has it); None
    moves it back to its slot."""
    instance.occurs_at = (
        instance.original_occurs_at if occurs_at is None else occurs_at.replace(microsecond=0)
    )

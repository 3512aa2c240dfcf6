"""A Python client generated from /openapi.json (openapi-python-client) drives every operation
against a real gunicorn, and every answer parses into the client's typed models.

This is what client developers do with the document: a field answered null where the document
says a string, a `date-time` without an offset, or an undocumented status is a parse error here.
"""

import importlib
import json
import pkgutil
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from http import HTTPStatus

import pytest
from procs import BIN, PASSWORD, app_env, running_gunicorn

pytestmark = pytest.mark.slow

PACKAGE = "todo_api_client"
# No post-generation hooks: they would run ruff from PATH, which the generator warns about.
GENERATOR_CONFIG = "post_hooks: []\n"


@pytest.fixture(scope="module")
def generated(tmp_path_factory, app):
    """The generated client package, imported from a temporary directory."""
    root = tmp_path_factory.mktemp("client")
    spec = root / "openapi.json"
    spec.write_text(json.dumps(app.test_client().get("/openapi.json").get_json()))
    config = root / "config.yml"
    config.write_text(GENERATOR_CONFIG)
    command = [str(BIN / "openapi-python-client"), "generate", "--path", str(spec), "--meta", "none"]
    result = subprocess.run(
        [*command, "--output-path", str(root / PACKAGE), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # The generator skips what it cannot type and says so; the document must give it nothing to skip.
    assert "Warning" not in output, output
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def server(database_url, tmp_path_factory):
    with running_gunicorn(
        app_env(database_url), tmp_path_factory.mktemp("gunicorn") / "g.log", workers=1
    ) as g:
        yield g


class Driver:
    """Calls of the generated client that assert the status and the parsed model's class."""

    def __init__(self, client_package, base_url: str):
        self.package = client_package
        self.base_url = base_url
        self.api = lambda path: importlib.import_module(f"{PACKAGE}.api.{path}")
        self.models = importlib.import_module(f"{PACKAGE}.models")
        self.types = importlib.import_module(f"{PACKAGE}.types")
        self.called: set[str] = set()

    def operations(self) -> set[str]:
        """Every operation of the generated client, as "tag.module" names."""
        api = importlib.import_module(f"{PACKAGE}.api")
        return {
            f"{tag.name}.{module.name}"
            for tag in pkgutil.iter_modules(api.__path__)
            for module in pkgutil.iter_modules(importlib.import_module(f"{PACKAGE}.api.{tag.name}").__path__)
        }

    def anonymous(self):
        return self.package.Client(base_url=self.base_url, raise_on_unexpected_status=True)

    def signed_in(self, token: str):
        return self.package.AuthenticatedClient(
            base_url=self.base_url, token=token, raise_on_unexpected_status=True
        )

    def call(self, operation: str, status: int, model, **kwargs):
        """Run `operation` (e.g. "tasks.post_api_v1_tasks"); its answer must be `status` and
        parse into `model`: a model's name, a Python type (`str` for a text body) or None for an
        empty answer. Returns the parsed answer."""
        return self.call_detailed(operation, status, model, **kwargs).parsed

    def call_detailed(self, operation: str, status: int, model, **kwargs):
        """`call`, returning the whole response (status, headers, content, parsed)."""
        self.called.add(operation)
        response = self.api(operation).sync_detailed(**kwargs)
        assert response.status_code == HTTPStatus(status), (operation, response.status_code, response.content)
        if model is None:
            assert response.parsed is None, (operation, response.parsed)
        else:
            model_class = getattr(self.models, model) if isinstance(model, str) else model
            assert isinstance(response.parsed, model_class), (
                operation,
                type(response.parsed),
                response.content,
            )
        return response


def test_the_generated_client_round_trips_every_operation(generated, server):
    run = Driver(generated, server.url("").rstrip("/"))
    m = run.models
    anonymous = run.anonymous()

    health = run.call("health.get_health", 200, "Health", client=anonymous)
    assert (health.status, health.database) == (m.HealthStatus.OK, m.HealthDatabase.OK)

    # Accounts and sessions.
    body = m.Registration(
        email="Client@Example.com", password=PASSWORD, first_name="Ada", timezone="Europe/Berlin"
    )
    user = run.call("auth.post_api_v1_auth_register", 201, "User", client=anonymous, body=body)
    assert user.email == "client@example.com" and isinstance(user.created_at, datetime)
    run.call("auth.post_api_v1_auth_register", 409, "Problem", client=anonymous, body=body)
    credentials = m.Login(email="client@example.com", password=PASSWORD)
    tokens = run.call("auth.post_api_v1_auth_login", 200, "Token", client=anonymous, body=credentials)
    other = run.call("auth.post_api_v1_auth_login", 200, "Token", client=anonymous, body=credentials)
    refreshed = run.call(
        "auth.post_api_v1_auth_refresh", 200, "Token", client=run.signed_in(tokens.refresh_token)
    )
    me = run.signed_in(refreshed.access_token)
    # A spent refresh token is 401 (and revokes its session: a session of its own here).
    spare = run.call("auth.post_api_v1_auth_login", 200, "Token", client=anonymous, body=credentials)
    run.call("auth.post_api_v1_auth_refresh", 200, "Token", client=run.signed_in(spare.refresh_token))
    run.call("auth.post_api_v1_auth_refresh", 401, "Problem", client=run.signed_in(spare.refresh_token))
    sessions = run.call("auth.get_api_v1_auth_sessions", 200, "SessionList", client=me).items
    assert sum(session.current for session in sessions) == 1
    other_id = next(session.id for session in sessions if not session.current)
    run.call("auth.delete_api_v1_auth_sessions_session_id", 204, None, client=me, session_id=other_id)
    run.call("auth.get_api_v1_auth_me", 401, "Problem", client=run.signed_in(other.access_token))
    assert run.call("auth.get_api_v1_auth_me", 200, "User", client=me).first_name == "Ada"
    profile = run.call(
        "auth.patch_api_v1_auth_me", 200, "User", client=me, body=m.ProfilePatch(timezone="UTC")
    )
    assert profile.timezone == "UTC"
    run.call("auth.patch_api_v1_auth_me", 200, "User", client=me)  # no body: a partial change of nothing
    priorities = run.call("priorities.get_api_v1_priorities", 200, "PriorityList", client=me).items
    assert [(p.name, p.level) for p in priorities] == [("low", 1), ("medium", 2), ("high", 3), ("urgent", 4)]

    # Tags.
    tag = run.call("tags.post_api_v1_tags", 201, "Tag", client=me, body=m.Tag(name="Work", color="#00FF00"))
    plain = run.call("tags.post_api_v1_tags", 201, "Tag", client=me, body=m.Tag(name="plain", color=None))
    assert plain.color is None
    run.call("tags.post_api_v1_tags", 409, "Problem", client=me, body=m.Tag(name="work"))
    run.call("tags.get_api_v1_tags_tag_id", 200, "Tag", client=me, tag_id=tag.id)
    renamed = run.call(
        "tags.patch_api_v1_tags_tag_id", 200, "Tag", client=me, tag_id=tag.id, body=m.TagPatch(color=None)
    )
    assert renamed.color is None
    run.call("tags.patch_api_v1_tags_tag_id", 200, "Tag", client=me, tag_id=tag.id)
    assert len(run.call("tags.get_api_v1_tags", 200, "TagList", client=me).items) == 2
    run.call("tags.delete_api_v1_tags_tag_id", 204, None, client=me, tag_id=plain.id)
    run.call("tags.get_api_v1_tags_tag_id", 404, "Problem", client=me, tag_id=plain.id)

    # Tasks: every field null and non-null.
    due = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    full = m.Task(
        title="Full",
        description="all set",
        completed=True,
        due_at=due,
        priority=m.PriorityName.HIGH,
        tags=["Work", "new"],
    )
    task = run.call("tasks.post_api_v1_tasks", 201, "Task", client=me, body=full, idempotency_key="k-1")
    assert (task.due_at, task.completed, task.tags) == (due, True, ["new", "Work"])
    assert isinstance(task.completed_at, datetime)
    empty = m.Task(title="Empty", due_at=None, priority=None, tags=[])
    bare = run.call("tasks.post_api_v1_tasks", 201, "Task", client=me, body=empty)
    assert (bare.due_at, bare.priority, bare.completed_at, bare.tags) == (None, None, None, [])
    cleared = m.TaskPatch(due_at=None, priority=None, completed=False, tags=[])
    patched = run.call(
        "tasks.patch_api_v1_tasks_task_id", 200, "Task", client=me, task_id=task.id, body=cleared
    )
    assert (patched.due_at, patched.priority, patched.completed_at, patched.tags) == (None, None, None, [])
    set_again = m.TaskPatch(due_at=due, priority=m.PriorityName.URGENT, tags=["Work"])
    run.call("tasks.patch_api_v1_tasks_task_id", 200, "Task", client=me, task_id=bare.id, body=set_again)
    run.call("tasks.patch_api_v1_tasks_task_id", 200, "Task", client=me, task_id=bare.id)
    run.call("tasks.get_api_v1_tasks_task_id", 200, "Task", client=me, task_id=bare.id)
    page = run.call("tasks.get_api_v1_tasks", 200, "TaskList", client=me, limit=1)
    assert len(page.items) == 1 and isinstance(page.next_cursor, str)
    last = run.call("tasks.get_api_v1_tasks", 200, "TaskList", client=me, limit=1, cursor=page.next_cursor)
    assert last.next_cursor is None and last.items[0].id != page.items[0].id
    filtered = run.call(
        "tasks.get_api_v1_tasks",
        200,
        "TaskList",
        client=me,
        completed=False,
        priority=m.GetApiV1TasksPriority.URGENT,
        tag=["work"],
        due_after=due - timedelta(days=1),
        due_before=due + timedelta(days=1),
        overdue=False,
        q="Empty",
        sort=m.GetApiV1TasksSort("-due_at"),
    )
    assert [item.id for item in filtered.items] == [bare.id]
    run.call("tasks.get_api_v1_tasks", 422, "Problem", client=me, limit=0)
    # A date-only due: answered as sent (a date), and due_at null; null clears it.
    day = date(2031, 5, 7)
    dated = run.call(
        "tasks.post_api_v1_tasks", 201, "Task", client=me, body=m.Task(title="Dated", due_date=day)
    )
    assert (dated.due_date, dated.due_at) == (day, None)
    undated = run.call(
        "tasks.patch_api_v1_tasks_task_id",
        200,
        "Task",
        client=me,
        task_id=dated.id,
        body=m.TaskPatch(due_date=None),
    )
    assert (undated.due_date, undated.due_at) == (None, None)
    redated = run.call(
        "tasks.patch_api_v1_tasks_task_id",
        200,
        "Task",
        client=me,
        task_id=dated.id,
        body=m.TaskPatch(due_date=day, priority=m.PriorityName.LOW),
    )
    assert (redated.due_date, redated.due_at) == (day, None)
    # Setting due_at clears due_date.
    timed = run.call(
        "tasks.patch_api_v1_tasks_task_id",
        200,
        "Task",
        client=me,
        task_id=bare.id,
        body=m.TaskPatch(due_at=due),
    )
    assert (timed.due_at, timed.due_date) == (due, None)
    both = m.Task(title="Both", due_at=due, due_date=day)
    run.call("tasks.post_api_v1_tasks", 422, "Problem", client=me, body=both)
    on_day = run.call(
        "tasks.get_api_v1_tasks",
        200,
        "TaskList",
        client=me,
        due_after=datetime(2031, 5, 7, tzinfo=UTC),
        due_before=datetime(2031, 5, 8, tzinfo=UTC),
    )
    assert [item.id for item in on_day.items] == [dated.id]
    run.call("tasks.delete_api_v1_tasks_task_id", 204, None, client=me, task_id=task.id)
    run.call("tasks.get_api_v1_tasks_task_id", 404, "Problem", client=me, task_id=task.id)

    # Recurring tasks and their instances.
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    rule = m.RecurringTask(
        title="Standup",
        rrule="FREQ=DAILY;COUNT=5",
        dtstart=start.strftime("%Y-%m-%dT%H:%M:%S"),
        timezone="Europe/Berlin",
        priority=None,
        tags=["Work"],
    )
    recurring = run.call(
        "recurring_tasks.post_api_v1_recurring_tasks", 201, "RecurringTask", client=me, body=rule
    )
    assert recurring.dtstart == rule.dtstart and len(recurring.next_occurrences) == 5
    assert all(isinstance(moment, datetime) for moment in recurring.next_occurrences)
    rid = recurring.id
    run.call("recurring_tasks.get_api_v1_recurring_tasks", 200, "RecurringTaskList", client=me)
    run.call(
        "recurring_tasks.get_api_v1_recurring_tasks_recurring_task_id",
        200,
        "RecurringTask",
        client=me,
        recurring_task_id=rid,
    )
    change = m.RecurringTaskPatch(priority=m.PriorityName.LOW, description="daily")
    changed = run.call(
        "recurring_tasks.patch_api_v1_recurring_tasks_recurring_task_id",
        200,
        "RecurringTask",
        client=me,
        recurring_task_id=rid,
        body=change,
    )
    assert changed.description == "daily"
    run.call(
        "recurring_tasks.patch_api_v1_recurring_tasks_recurring_task_id",
        200,
        "RecurringTask",
        client=me,
        recurring_task_id=rid,
    )
    instances = run.call(
        "recurring_tasks.get_api_v1_recurring_tasks_recurring_task_id_instances",
        200,
        "TaskInstanceList",
        client=me,
        recurring_task_id=rid,
        start=start - timedelta(hours=1),
        end=start + timedelta(days=10),
    ).items
    assert len(instances) == 5 and instances[0].completed_at is None
    done = run.call(
        "recurring_tasks.patch_api_v1_recurring_tasks_recurring_task_id_instances_instance_id",
        200,
        "TaskInstance",
        client=me,
        recurring_task_id=rid,
        instance_id=instances[0].id,
        body=m.TaskInstance(completed=True),
    )
    assert isinstance(done.completed_at, datetime)

    def instance_patch(instance_id: int, body):
        return run.call(
            "recurring_tasks.patch_api_v1_recurring_tasks_recurring_task_id_instances_instance_id",
            200,
            "TaskInstance",
            client=me,
            recurring_task_id=rid,
            instance_id=instance_id,
            body=body,
        )

    skipped = instance_patch(instances[1].id, m.TaskInstance(skipped=True))
    assert skipped.skipped is True and skipped.occurs_at == instances[1].occurs_at
    later = instances[2].original_occurs_at + timedelta(hours=2)
    moved = instance_patch(instances[2].id, m.TaskInstance(occurs_at=later))
    assert (moved.occurs_at, moved.original_occurs_at) == (later, instances[2].original_occurs_at)
    back = instance_patch(instances[2].id, m.TaskInstance(occurs_at=None))
    assert back.occurs_at == back.original_occurs_at == instances[2].original_occurs_at
    restored = instance_patch(instances[3].id, m.TaskInstance(skipped=True))
    assert restored.skipped is True
    assert instance_patch(instances[3].id, m.TaskInstance(skipped=False)).skipped is False
    instance_patch(instances[4].id, m.TaskInstance(occurs_at=later + timedelta(days=3)))

    # Delta sync: a full sync a change at a time, a change, then an incremental sync.
    since, synced = None, []
    while True:
        optional = {} if since is None else {"since": since}
        answer = run.call("sync.get_api_v1_sync", 200, "Sync", client=me, limit=1, **optional)
        assert len(answer.changes) <= 1 and isinstance(answer.next_since, str)
        synced += answer.changes
        since = answer.next_since
        if not answer.has_more:
            break
    assert all(isinstance(change, m.Change) and change.deleted is False for change in synced)
    kinds = {change.type_ for change in synced}
    assert kinds == {m.ChangeType.TAG, m.ChangeType.TASK, m.ChangeType.RECURRING_TASK, m.ChangeType.INSTANCE}
    whole = run.call("sync.get_api_v1_sync", 200, "Sync", client=me)
    assert whole.has_more is False and len(whole.changes) == len(synced)
    assert run.call("sync.get_api_v1_sync", 200, "Sync", client=me, since=since).changes == []
    run.call(
        "tags.patch_api_v1_tags_tag_id",
        200,
        "Tag",
        client=me,
        tag_id=tag.id,
        body=m.TagPatch(color="#123456"),
    )
    delta = run.call("sync.get_api_v1_sync", 200, "Sync", client=me, since=since)
    assert [(c.type_, c.id, c.deleted) for c in delta.changes] == [(m.ChangeType.TAG, tag.id, False)]
    assert delta.changes[0].data["color"] == "#123456" and delta.has_more is False
    since = delta.next_since
    run.call("sync.get_api_v1_sync", 422, "Problem", client=me, limit=0)
    bad_since = run.call("sync.get_api_v1_sync", 422, "Problem", client=me, since="not-a-token")
    assert "since" in bad_since.errors.to_dict()

    # The calendar feed: none, made, read, fetched (and not modified), revoked.
    run.call("calendar_feed.get_api_v1_calendar_feed", 404, "Problem", client=me)
    feed = run.call("calendar_feed.post_api_v1_calendar_feed", 201, "CalendarFeed", client=me)
    assert isinstance(feed.created_at, datetime) and feed.url.endswith(".ics")
    shown = run.call("calendar_feed.get_api_v1_calendar_feed", 200, "CalendarFeed", client=me)
    assert shown.created_at == feed.created_at and isinstance(shown.url, run.types.Unset)
    secret = feed.url.rsplit("/", 1)[1].removesuffix(".ics")
    ics = run.call_detailed(
        "calendar_feed.get_calendar_secret_ics", 200, str, client=anonymous, secret=secret
    )
    assert (
        ics.parsed.startswith("BEGIN:VCALENDAR") and "EXDATE" in ics.parsed and "RECURRENCE-ID" in ics.parsed
    )
    assert ics.headers["content-type"] == "text/calendar; charset=utf-8"
    unchanged = anonymous.with_headers({"If-None-Match": ics.headers["etag"]})
    run.call("calendar_feed.get_calendar_secret_ics", 304, None, client=unchanged, secret=secret)
    run.call("calendar_feed.delete_api_v1_calendar_feed", 204, None, client=me)
    run.call("calendar_feed.delete_api_v1_calendar_feed", 204, None, client=me)
    run.call("calendar_feed.get_calendar_secret_ics", 404, "Problem", client=anonymous, secret=secret)
    run.call("calendar_feed.get_api_v1_calendar_feed", 404, "Problem", client=me)

    run.call(
        "recurring_tasks.delete_api_v1_recurring_tasks_recurring_task_id",
        204,
        None,
        client=me,
        recurring_task_id=rid,
    )
    # The deletion syncs as tombstones (data null) for the definition and its instances.
    gone = run.call("sync.get_api_v1_sync", 200, "Sync", client=me, since=since).changes
    assert (m.ChangeType.RECURRING_TASK, rid, True, None) in [
        (c.type_, c.id, c.deleted, c.data) for c in gone
    ]
    assert all(change.deleted and change.data is None for change in gone)

    # Passwords, then the account itself.
    reset = m.PasswordResetRequest(email="client@example.com")
    run.call("password_reset.post_api_v1_auth_password_reset", 202, "Accepted", client=anonymous, body=reset)
    bad_token = m.PasswordResetConfirm(token="not-a-token", new_password="another password")
    run.call(
        "password_reset.post_api_v1_auth_password_reset_confirm",
        400,
        "Problem",
        client=anonymous,
        body=bad_token,
    )
    wrong = m.ChangePassword(current_password="wrong password", new_password="another password")
    run.call("auth.post_api_v1_auth_change_password", 400, "Problem", client=me, body=wrong)
    right = m.ChangePassword(current_password=PASSWORD, new_password="another password")
    run.call("auth.post_api_v1_auth_change_password", 204, None, client=me, body=right)
    fresh = m.Login(email="client@example.com", password="another password")
    me = run.signed_in(
        run.call("auth.post_api_v1_auth_login", 200, "Token", client=anonymous, body=fresh).access_token
    )
    run.call("auth.post_api_v1_auth_logout", 204, None, client=me)
    run.call("auth.get_api_v1_auth_me", 401, "Problem", client=me)
    me = run.signed_in(
        run.call("auth.post_api_v1_auth_login", 200, "Token", client=anonymous, body=fresh).access_token
    )
    run.call(
        "auth.delete_api_v1_auth_me",
        400,
        "Problem",
        client=me,
        body=m.DeleteAccount(password="wrong password"),
    )
    run.call(
        "auth.delete_api_v1_auth_me", 204, None, client=me, body=m.DeleteAccount(password="another password")
    )
    run.call("auth.post_api_v1_auth_login", 401, "Problem", client=anonymous, body=fresh)
    # Every operation of the document was driven (a new one needs its calls above).
    assert run.operations() - run.called == set()

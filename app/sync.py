"""Blueprint "sync": what changed in the caller's tasks, tags, recurring tasks and instances.

How changes are recorded is in app.changes: a write transaction bumps the user's counter
`users.sync_seq` under the user's row lock (held until it commits), stamps every object it
changes with the new value, and writes a tombstone, with the stamp, for every object it deletes.

A sync is ONE statement: it reads the counter C and every object and tombstone stamped after
the token's position, in the order (stamp, type, id). Why no committed change is ever missed,
under READ COMMITTED, with any number of workers and through PgBouncer (nothing here outlives a
statement: no session state, no advisory lock, no LISTEN):

1. The statement sees one snapshot S. The users row version it reads, with value C, was written
   by the transaction T_C that drew stamp C, and T_C committed before S was taken.
2. Stamps are drawn in commit order: T_k takes the user's row lock to draw k and keeps it until
   it commits, so T_(k+1) draws k+1 only after T_k committed (if T_k rolls back, nothing of it
   remains and the next writer draws k again). Hence every transaction with a stamp <= C
   committed before S: all of its rows and tombstones are in S. A transaction with a stamp > C
   had not committed when S was taken (else S would show a counter above C), so nothing
   stamped above C is in S.
3. So S holds exactly the changes stamped up to C, each object with its latest stamp (one row
   per object; an update re-stamps it, a delete replaces it by a tombstone; ids are never
   reused, so an object is a live row or a tombstone, never both). An answer that returns every
   change after the token's position up to C can hand out C as the next position: whatever
   commits later carries a stamp above C and comes with the next call. A writer in flight
   while the sync reads (the case `updated_at > since`, or a sequence drawn at insert time,
   loses) holds a stamp > C and is never skipped.
4. Paging: a page that stops inside a stamp's group hands out the position (stamp, type, id)
   of its last change, and the next call continues strictly after it; every stamp up to C is
   complete in S, so no change sorts in behind that position later. An object that changes
   between pages is stamped again, above C, and is answered again: twice is allowed, never zero.
   A full sync answers live objects only; its later pages answer the deletions stamped after
   its first page's counter (the token carries it as `floor`): an object deleted before that
   was never handed to the client.
5. The objects' representations are loaded after that statement, by id, each in its latest
   committed state: a later state only repeats a change the next call answers anyway, and an
   object deleted in between is left out (its tombstone, stamped above C, comes next call).

The token is signed (SECRET_KEY), bound to the user, and carries its issue time: older than
SYNC_RETENTION it is a 410. `flask cleanup` prunes tombstones after SYNC_RETENTION and raises
`users.sync_pruned_seq` to the highest stamp it pruned, in the same transaction; a token that
still needs a tombstone at or below that stamp is a 410 too (read in the same snapshot), so no
token ever skips a pruned tombstone, whatever the clocks say.
"""

import time
from collections import namedtuple
from dataclasses import dataclass
from functools import lru_cache

from flask import current_app
from flask.views import MethodView
from flask_smorest import abort
from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import bindparam, exists, false, literal_column, select, text, true, tuple_, union_all

from app.api import Blueprint
from app.extensions import db
from app.models import AuthSession, RecurringTask, SyncTombstone, Tag, Task, TaskInstance, User
from app.recurrence import with_upcoming
from app.schemas.recurring import RecurringTaskSchema, TaskInstanceSchema
from app.schemas.sync import CHANGE_TYPES, SyncArgsSchema, SyncSchema
from app.schemas.tasks import TagSchema, TaskSchema
from app.tokens import LIVE_SESSION, current_user, require_live_session, session_params, token_required
from app.transactions import driver_sql, read_rows

blp = Blueprint("sync", __name__, url_prefix="/api/v1/sync", description="Delta sync for offline clients")

TOKEN_SALT = "sync-token"
MAX_BIGINT = 2**63 - 1
MODELS = {"instance": TaskInstance, "recurring_task": RecurringTask, "tag": Tag, "task": Task}
SCHEMAS = {
    "instance": TaskInstanceSchema(),
    "recurring_task": RecurringTaskSchema(),
    "tag": TagSchema(),
    "task": TaskSchema(),
}


@dataclass(frozen=True)
class Position:
    """Where a sync stopped: after change (seq, type, id), or after every change up to `seq`
    when `type` is None. No tombstone stamped `floor` or lower is needed: the client never held
    those objects (a full sync's later pages need only deletions after its first page).
    A full sync starts at seq -1 (rows stamped before sync existed are 0)."""

    seq: int
    type: str | None = None
    id: int = 0
    floor: int = -1

    def tombstones_after(self) -> "Position":
        """The position after which this client needs deletions."""
        return self if self.seq > self.floor else Position(self.floor, floor=self.floor)


FULL = Position(-1)


@blp.route("")
class Sync(MethodView):
    decorators = [token_required(session_check_in_statement=("GET",))]

    @blp.arguments(SyncArgsSchema, location="query")
    @blp.response(200, SyncSchema)
    @blp.problem_response(410, "`since` is older than SYNC_RETENTION: start again with a full sync")
    def get(self, args):
        """What changed since the last sync

        Without `since`, every live object of the caller; with it, every object changed or
        deleted after the sync that returned that token, in the order the changes were committed.
        No committed change is ever skipped, also one committed while the sync runs.
        """
        after = _read_token(args["since"]) if "since" in args else FULL
        rows = [ChangeRow(*row) for row in read_rows(*_changes_query(current_user.id, after, args["limit"]))]
        require_live_session(rows[0] if rows else None)
        if after != FULL and _pruned_past(after, rows[0].sync_pruned_seq):
            abort(410, message="Changes after this token were pruned; start again with a full sync.")
        found = [row for row in rows if row.type is not None]  # one row of NULLs when none
        page, has_more = found[: args["limit"]], len(found) > args["limit"]
        counter = rows[0].sync_seq
        floor = counter if after == FULL else after.floor
        last = (
            Position(page[-1].seq, page[-1].type, page[-1].id, floor)
            if has_more
            else Position(counter, floor=counter)
        )
        return {"changes": _changes(page), "next_since": _make_token(last), "has_more": has_more}


# One row of a sync's statement: the counter and the pruned mark, and one change (or NULLs).
ChangeRow = namedtuple("ChangeRow", "sync_seq sync_pruned_seq seq type id deleted")


def _changes_query(user_id: int, after: Position, limit: int) -> tuple[str, dict]:
    """The SQL (`driver_sql`) and parameters of the counter, the pruned mark and up to `limit`
    + 1 changes after `after`, in one statement that also checks the token's session (no row
    at all: a dead session, a 401)."""
    params = {**session_params(), "user_id": user_id, "limit": limit + 1, "after_seq": after.seq}
    params.update((f"{name}_after", _id_after(name, after)) for name in MODELS)
    needed = after.tombstones_after()
    params.update(deleted_seq=needed.seq, deleted_type=needed.type, deleted_id=needed.id)
    return _changes_sql(after == FULL, needed.type is None), params


@lru_cache(maxsize=4)
def _changes_sql(full: bool, deleted_by_seq_only: bool) -> str:
    """The sync statement of one shape (a full sync or not; tombstones after a stamp, or after a
    (stamp, type, id) position), every value a named parameter: built and compiled once."""
    branches = [
        select(
            model.sync_seq.label("seq"),
            literal_column(f"'{name}'").label("type"),
            model.id,
            false().label("deleted"),
        )
        .where(
            model.user_id == bindparam("user_id"),
            tuple_(model.sync_seq, model.id) > tuple_(bindparam("after_seq"), bindparam(f"{name}_after")),
        )
        .order_by(model.sync_seq, model.id)
        .limit(bindparam("limit"))
        for name, model in MODELS.items()
    ]
    if not full:
        tombstone = (SyncTombstone.sync_seq, SyncTombstone.object_type, SyncTombstone.object_id)
        newer = (
            SyncTombstone.sync_seq > bindparam("deleted_seq")
            if deleted_by_seq_only
            else tuple_(*tombstone)
            > tuple_(bindparam("deleted_seq"), bindparam("deleted_type"), bindparam("deleted_id"))
        )
        branches.append(
            select(*tombstone, true())
            .where(SyncTombstone.user_id == bindparam("user_id"), newer)
            .order_by(*tombstone)
            .limit(bindparam("limit"))
        )
    changes = union_all(*branches).subquery("changes")
    return driver_sql(
        select(
            User.sync_seq,
            User.sync_pruned_seq,
            changes.c.seq,
            changes.c.type,
            changes.c.id,
            changes.c.deleted,
        )
        .outerjoin(changes, true())
        .where(
            User.id == bindparam("user_id"),
            # The token's session check (app/tokens.py).
            exists(select(literal_column("1")).select_from(AuthSession).where(text(LIVE_SESSION))),
        )
        .order_by(changes.c.seq, changes.c.type.collate("C"), changes.c.id)
        .limit(bindparam("limit"))
    )


def _id_after(name: str, after: Position) -> int:
    """The id bound of type `name` at stamp `after.seq`: (seq, id) > (after.seq, bound)."""
    if after.type is None or name < after.type:
        return MAX_BIGINT  # none of this type at after.seq
    return after.id if name == after.type else 0


def _pruned_past(after: Position, pruned_seq: int) -> bool:
    """Whether `flask cleanup` pruned a tombstone that a sync from `after` would have to answer.

    Tombstones are stamped 1 or more; `pruned_seq` 0 means none was pruned."""
    needed = after.tombstones_after()
    return needed.seq < pruned_seq or (needed.seq == pruned_seq > 0 and needed.type is not None)


def _changes(page: list) -> list[dict]:
    """The page's changes, each live object as its own GET answers it."""
    wanted: dict[str, list[int]] = {}
    for row in page:
        if not row.deleted:
            wanted.setdefault(row.type, []).append(row.id)
    loaded = {(name, obj.id): obj for name, ids in wanted.items() for obj in _load(name, ids)}
    changes = []
    for row in page:
        if row.deleted:
            changes.append({"type": row.type, "id": row.id, "deleted": True, "data": None})
        elif (obj := loaded.get((row.type, row.id))) is not None:  # else deleted since: see 5.
            changes.append(
                {"type": row.type, "id": row.id, "deleted": False, "data": SCHEMAS[row.type].dump(obj)}
            )
    return changes


def _load(name: str, ids: list[int]) -> list:
    model = MODELS[name]
    objects = db.session.scalars(
        select(model).where(model.id.in_(ids), model.user_id == current_user.id)
    ).all()
    if name == "recurring_task":
        return [with_upcoming(definition) for definition in objects]
    return objects


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=TOKEN_SALT)


def _make_token(position: Position) -> str:
    """An opaque, signed token: the caller's id, the position reached and the issue time."""
    place = [position.seq, position.type, position.id, position.floor]
    return _serializer().dumps([current_user.id, *place, int(time.time())])


def _read_token(token: str) -> Position:
    """The position in the caller's token; 422 on `since` if it is not one, 410 if it is too old."""
    try:
        user_id, seq, object_type, object_id, floor, issued_at = _serializer().loads(token)
        valid = all(isinstance(value, int) for value in (user_id, seq, object_id, floor, issued_at)) and (
            object_type is None or object_type in CHANGE_TYPES
        )
    except (BadData, ValueError, TypeError):
        valid = False
    if not valid:
        abort(422, message="Invalid value for: since.", errors={"since": ["Not a valid sync token."]})
    if user_id != current_user.id:
        abort(
            422, message="Invalid value for: since.", errors={"since": ["The token belongs to another user."]}
        )
    if time.time() - issued_at > current_app.config["SYNC_RETENTION"]:
        abort(410, message="This token is older than the sync retention; start again with a full sync.")
    return Position(seq, object_type, object_id, floor)

"""The change log that /sync reads: every write transaction stamps what it changes.

Each user has a counter, `users.sync_seq`. A write transaction's first statement bumps it
(`change_seq`), which takes the user's row lock until the transaction ends: a user's writes
serialise on it, so their stamps are in commit order. Every task, tag, recurring task and
instance the transaction creates or changes gets the stamp in its own `sync_seq`, and every
object it deletes leaves a row in `sync_tombstones` with the stamp (`record_deleted`). Why that
makes a sync exactly-once is in app/sync.py.

Call `change_seq` before the transaction locks or changes any other row: all write paths then
take the user's lock first, and two of them can never wait for each other in a cycle.
"""

from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from app.extensions import db
from app.models import RecurringTask, SyncTombstone, Task, User, recurring_task_tags, task_tags

_CACHE = "change_seq"


def change_seq(user_id: int) -> int:
    """The stamp of this write transaction for `user_id`'s objects.

    The first call in a transaction bumps the user's counter (UPDATE ... RETURNING, taking the
    user's row lock until commit or rollback); later calls in the same transaction return the
    same number without a statement."""
    session = db.session()
    cached = session.info.get(_CACHE)
    if cached is not None and cached[0] is session.get_transaction() and cached[1] == user_id:
        return cached[2]
    seq = session.execute(
        update(User).where(User.id == user_id).values(sync_seq=User.sync_seq + 1).returning(User.sync_seq)
    ).scalar_one()
    session.info[_CACHE] = (session.get_transaction(), user_id, seq)
    return seq


def record_deleted(user_id: int, object_type: str, ids: Iterable[int]) -> None:
    """Tombstones for the objects `ids` of `object_type` ("task", "tag", "recurring_task",
    "instance") that this transaction deletes."""
    seq = change_seq(user_id)
    rows = [
        {"user_id": user_id, "sync_seq": seq, "object_type": object_type, "object_id": object_id}
        for object_id in ids
    ]
    if rows:
        db.session.execute(insert(SyncTombstone).values(rows).on_conflict_do_nothing())


def touch_tag_carriers(user_id: int, tag_id: int) -> None:
    """Stamp every task and recurring task of `user_id` carrying tag `tag_id`: renaming or
    deleting the tag changes their representation (it lists tag names)."""
    seq = change_seq(user_id)
    db.session.execute(
        update(Task)
        .where(Task.user_id == user_id)
        .where(Task.id.in_(select(task_tags.c.task_id).where(task_tags.c.tag_id == tag_id)))
        .values(sync_seq=seq)
        .execution_options(synchronize_session=False)
    )
    carriers = select(recurring_task_tags.c.recurring_task_id).where(recurring_task_tags.c.tag_id == tag_id)
    db.session.execute(
        update(RecurringTask)
        .where(RecurringTask.user_id == user_id, RecurringTask.id.in_(carriers))
        .values(sync_seq=seq)
        .execution_options(synchronize_session=False)
    )


def prune_tombstones(retention_seconds: int) -> int:
    """Delete tombstones older than `retention_seconds`; returns how many.

    In the same statement each owner's `sync_pruned_seq` rises to the highest stamp pruned, so a
    sync token from before that stamp is refused (410) instead of silently missing a deletion."""
    pruned = (
        delete(SyncTombstone)
        .where(SyncTombstone.deleted_at < func.now() - timedelta(seconds=retention_seconds))
        .returning(SyncTombstone.user_id, SyncTombstone.sync_seq)
        .cte("pruned")
    )
    per_user = (
        select(pruned.c.user_id, func.max(pruned.c.sync_seq).label("seq"), func.count().label("count"))
        .group_by(pruned.c.user_id)
        .cte("per_user")
    )
    counts = db.session.scalars(
        update(User)
        .where(User.id == per_user.c.user_id)
        .values(sync_pruned_seq=func.greatest(User.sync_pruned_seq, per_user.c.seq))
        .returning(per_user.c.count)
        .execution_options(synchronize_session=False)
    )
    return sum(counts)

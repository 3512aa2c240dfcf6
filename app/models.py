"""The tables, as typed SQLAlchemy models, and each entity's own behaviour."""

import uuid
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    Text,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR, UUID
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from app.extensions import db
from app.passwords import hash_password, verify_password

TZ = DateTime(timezone=True)


def _owner_fk(table: str = "users.id") -> ForeignKey:
    return ForeignKey(table, ondelete="CASCADE")


class User(db.Model):
    __tablename__ = "users"
    __table_args__ = (
        Index("uq_users_lower_email", func.lower(text("email")), unique=True),
        CheckConstraint("char_length(email) <= 254", name="email_length"),
        CheckConstraint("char_length(first_name) <= 100", name="first_name_length"),
        CheckConstraint("char_length(last_name) <= 100", name="last_name_length"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    email: Mapped[str] = mapped_column(Text)
    password_hash: Mapped[str] = mapped_column(Text)
    first_name: Mapped[str] = mapped_column(Text, server_default="")
    last_name: Mapped[str] = mapped_column(Text, server_default="")
    timezone: Mapped[str] = mapped_column(Text, server_default="UTC")
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    # The user's change counter (app.changes): the stamp of the user's last write transaction.
    sync_seq: Mapped[int] = mapped_column(BigInteger, server_default="0")
    # The highest stamp of a tombstone `flask cleanup` has pruned: an older sync token is a 410.
    sync_pruned_seq: Mapped[int] = mapped_column(BigInteger, server_default="0")

    def set_password(self, password: str) -> None:
        self.password_hash = hash_password(password)

    def check_password(self, password: str) -> bool:
        return verify_password(self.password_hash, password)


class AuthSession(db.Model):
    """One login. Every token minted from it carries its id; revoking the row revokes them."""

    __tablename__ = "sessions"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[int] = mapped_column(BigInteger, _owner_fk(), index=True)
    # The one refresh token of this session that may still be spent.
    refresh_jti: Mapped[uuid.UUID] = mapped_column(UUID)
    user_agent: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    last_used_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(TZ, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(TZ)


class Priority(db.Model):
    __tablename__ = "priorities"

    # The level is the key: tasks sort by it without a join.
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(Text, unique=True)
    label: Mapped[str] = mapped_column(Text)


task_tags = Table(
    "task_tags",
    db.metadata,
    Column("task_id", BigInteger, ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", BigInteger, ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True),
)

recurring_task_tags = Table(
    "recurring_task_tags",
    db.metadata,
    Column(
        "recurring_task_id",
        BigInteger,
        ForeignKey("recurring_tasks.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("tag_id", BigInteger, ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Tag(db.Model):
    __tablename__ = "tags"
    __table_args__ = (
        Index("uq_tags_user_id_lower_name", "user_id", func.lower(text("name")), unique=True),
        CheckConstraint("char_length(name) BETWEEN 1 AND 50", name="name_length"),
        CheckConstraint("color ~ '^#[0-9A-Fa-f]{6}$'", name="color_format"),
        Index("ix_tags_user_id_sync_seq_id", "user_id", "sync_seq", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, _owner_fk())
    name: Mapped[str] = mapped_column(Text)
    color: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    sync_seq: Mapped[int] = mapped_column(BigInteger, server_default="0")


# Tag names sort ignoring case, in code point order ("C"): the same on every server,
# whatever its locale, and the order a client gets from sorting the lower-cased names.
TAG_NAME_ORDER = func.lower(Tag.name).collate("C")

# Keyset pagination sorts a nullable key as COALESCE(key, stand-in) so that its nulls come
# last in both directions and one row comparison pages through them; each expression has
# an index of its own (migrations 0002, 0003). The stand-ins lie outside every real value.
#
# Where a task stands in time (API.md "Tasks"): at its due_at, or, for a date-only task, at
# the first instant of its due_date in the user's current time zone. That instant depends on
# the user's zone, which no index expression can read, so it is stored: due_date_start, kept
# by the writes of due_date (Task writes) and of users.timezone (one UPDATE of the user's
# date-only tasks in the same transaction); local_day_start (below) computes it. This is the
# one definition of the standing instant: the sort, the cursor and due_after/due_before use it.
DUE_LAST_ASC = text("COALESCE(due_at, due_date_start, 'infinity'::timestamptz)")
DUE_LAST_DESC = text("COALESCE(due_at, due_date_start, '-infinity'::timestamptz)")
PRIORITY_LAST_ASC = text("COALESCE(priority_level, 5::smallint)")
PRIORITY_LAST_DESC = text("COALESCE(priority_level, 0::smallint)")


class Task(db.Model):
    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint("char_length(title) BETWEEN 1 AND 200", name="title_length"),
        CheckConstraint("char_length(description) <= 10000", name="description_length"),
        CheckConstraint("completed = (completed_at IS NOT NULL)", name="completed_at_set"),
        CheckConstraint("due_at IS NULL OR due_date IS NULL", name="one_due"),
        CheckConstraint("(due_date IS NULL) = (due_date_start IS NULL)", name="due_date_start_set"),
        # Keyset pagination: one index per sort key, the id breaking ties.
        Index("ix_tasks_user_id_created_at_id", "user_id", "created_at", "id"),
        Index("ix_tasks_user_id_updated_at_id", "user_id", "updated_at", "id"),
        Index("ix_tasks_user_id_due_at_id", "user_id", "due_at", "id"),
        Index("ix_tasks_user_id_priority_level_id", "user_id", "priority_level", "id"),
        Index("ix_tasks_search_vector", "search_vector", postgresql_using="gin"),
        Index("ix_tasks_user_id_due_last_asc_id", "user_id", DUE_LAST_ASC, "id"),
        Index("ix_tasks_user_id_due_last_desc_id", "user_id", DUE_LAST_DESC, "id"),
        Index("ix_tasks_user_id_priority_last_asc_id", "user_id", PRIORITY_LAST_ASC, "id"),
        Index("ix_tasks_user_id_priority_last_desc_id", "user_id", PRIORITY_LAST_DESC, "id"),
        Index("ix_tasks_user_id_sync_seq_id", "user_id", "sync_seq", "id"),
    )
    # Flushes read server-set values (id, created_at, updated_at, completed_at) back with
    # RETURNING, so a view can answer right after its commit without another SELECT.
    __mapper_args__ = {"eager_defaults": True}

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, _owner_fk())
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, server_default="")
    completed: Mapped[bool] = mapped_column(Boolean, server_default="false")
    completed_at: Mapped[datetime | None] = mapped_column(TZ)
    due_at: Mapped[datetime | None] = mapped_column(TZ)
    due_date: Mapped[date | None] = mapped_column(Date)
    # Not part of the representation: local_day_start(due_date, the user's timezone), see
    # DUE_LAST_ASC; written only by set_due_date and app.tasks.move_date_only_tasks.
    due_date_start: Mapped[datetime | None] = mapped_column(TZ)
    priority_level: Mapped[int | None] = mapped_column(SmallInteger, ForeignKey("priorities.level"))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    sync_seq: Mapped[int] = mapped_column(BigInteger, server_default="0")
    search_vector = mapped_column(
        TSVECTOR,
        Computed("to_tsvector('english'::regconfig, title || ' ' || description)", persisted=True),
        deferred=True,
    )

    # Writes set the tags through the relationship; reads answer with `tag_names`.
    tags: Mapped[list[Tag]] = relationship(secondary=task_tags, order_by=TAG_NAME_ORDER)
    # The tag names come with the task's row, in the same statement: a page of tasks is one
    # query and no Tag objects. Not expired by a flush (that would cost a SELECT after the
    # commit); a write that changes the tags answers from the relationship instead.
    stored_tag_names: Mapped[list[str]] = column_property(
        func.array(
            select(Tag.name)
            .join(task_tags, task_tags.c.tag_id == Tag.id)
            .where(task_tags.c.task_id == id)
            .order_by(TAG_NAME_ORDER)
            .scalar_subquery(),
            type_=ARRAY(Text),
        ),
        expire_on_flush=False,
    )

    def set_due_date(self, day: date | None, zone: str | None = None) -> None:
        """Make the task due on `day` (None: not on a day), standing at the start of that day in
        the owner's timezone `zone` (needed when `day` is set); a due day clears `due_at`."""
        if day is not None:
            self.due_at = None
        self.due_date = day
        self.due_date_start = None if day is None else local_day_start(day, zone)

    @property
    def tag_names(self) -> list[str]:
        if "tags" in vars(self):  # set by this request's write (vars() is the ORM's state dict)
            return [tag.name for tag in self.tags]
        return self.stored_tag_names


# Where a task stands in time: the first of these that is not null. The due sorts and the
# due_after/due_before filters are COALESCE(*DUE_STANDS_AT, stand-in), DUE_LAST_ASC/_DESC above.
DUE_STANDS_AT = (Task.due_at, Task.due_date_start)


def local_day_start(day: date, zone: str) -> datetime:
    """The first instant of the calendar date `day` in the IANA zone `zone`, as UTC.

    Where the local day stands in time (API.md "Tasks"). Local midnight read with fold=0
    (PEP 495) is exactly that instant, also when 00:00 does not happen once: when the clocks
    spring forward at midnight (America/Santiago in September) 00:00 does not exist and is
    read with the offset before the change, which gives the change itself, 01:00 local; when
    they fall back from 01:00 to 00:00 (America/Havana in November) it is the earlier of the
    two midnights; a day that does not exist (Pacific/Apia, 2011-12-30) starts where the next
    one does. PostgreSQL's `day::timestamp AT TIME ZONE zone` takes the later midnight in
    Havana, and its tz database may lack names that Python's has (the one zone names are
    validated against), so the instant is computed here. Years long ago run on local mean
    time: 0001-01-01 in Asia/Tokyo begins in 1 BC in UTC, which is clamped to the first
    representable instant.
    """
    midnight = datetime.combine(day, time(), ZoneInfo(zone))
    try:
        return midnight.astimezone(UTC)
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


def local_date(instant: datetime, zone: str) -> date:
    """The calendar date on the wall clock of the IANA zone `zone` at `instant`."""
    return instant.astimezone(ZoneInfo(zone)).date()


class RecurringTask(db.Model):
    __tablename__ = "recurring_tasks"
    __table_args__ = (
        CheckConstraint("char_length(title) BETWEEN 1 AND 200", name="title_length"),
        CheckConstraint("char_length(description) <= 10000", name="description_length"),
        Index("ix_recurring_tasks_user_id_sync_seq_id", "user_id", "sync_seq", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, _owner_fk(), index=True)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, server_default="")
    priority_level: Mapped[int | None] = mapped_column(SmallInteger, ForeignKey("priorities.level"))
    rrule: Mapped[str] = mapped_column(Text)
    # Wall-clock time in `timezone`: occurrences keep it across DST changes.
    dtstart: Mapped[datetime] = mapped_column(DateTime(timezone=False))
    timezone: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    sync_seq: Mapped[int] = mapped_column(BigInteger, server_default="0")

    tags: Mapped[list[Tag]] = relationship(
        secondary=recurring_task_tags, order_by=TAG_NAME_ORDER, lazy="selectin"
    )

    @property
    def tag_names(self) -> list[str]:
        return [tag.name for tag in self.tags]


class TaskInstance(db.Model):
    """One occurrence of a recurring task, stored when a window first lists it.

    `original_occurs_at` is the rule's slot and identifies the occurrence: moving it changes
    `occurs_at` only, so the slot stays taken and the rule never generates it again."""

    __tablename__ = "task_instances"
    __table_args__ = (
        CheckConstraint("completed = (completed_at IS NOT NULL)", name="completed_at_set"),
        Index(
            "uq_task_instances_recurring_task_id_original_occurs_at",
            "recurring_task_id",
            "original_occurs_at",
            unique=True,
        ),
        # Windows select on where occurrences are now, moved ones included.
        Index("ix_task_instances_recurring_task_id_occurs_at", "recurring_task_id", "occurs_at"),
        Index("ix_task_instances_user_id_sync_seq_id", "user_id", "sync_seq", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    recurring_task_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("recurring_tasks.id", ondelete="CASCADE")
    )
    # The definition's owner, copied so that a sync finds a user's instances by one index.
    user_id: Mapped[int] = mapped_column(BigInteger, _owner_fk())
    occurs_at: Mapped[datetime] = mapped_column(TZ)
    original_occurs_at: Mapped[datetime] = mapped_column(TZ)
    skipped: Mapped[bool] = mapped_column(Boolean, server_default="false")
    completed: Mapped[bool] = mapped_column(Boolean, server_default="false")
    completed_at: Mapped[datetime | None] = mapped_column(TZ)
    # Kept across a change of the schedule: the current rule may not generate its slot, so the
    # calendar feed names the slot itself (RDATE). Not part of the API's representation.
    detached: Mapped[bool] = mapped_column(Boolean, server_default="false")
    sync_seq: Mapped[int] = mapped_column(BigInteger, server_default="0")


class CalendarFeed(db.Model):
    """A user's calendar subscription (one at most); only the secret's SHA-256 is stored."""

    __tablename__ = "calendar_feeds"

    user_id: Mapped[int] = mapped_column(BigInteger, _owner_fk(), primary_key=True)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())


class SyncTombstone(db.Model):
    """A deleted task, tag, recurring task or instance, kept SYNC_RETENTION seconds for /sync."""

    __tablename__ = "sync_tombstones"

    # The primary key is the order a sync reads them in; the type sorts in code point order.
    user_id: Mapped[int] = mapped_column(BigInteger, _owner_fk(), primary_key=True)
    sync_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    object_type: Mapped[str] = mapped_column(Text(collation="C"), primary_key=True)
    object_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    deleted_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now(), index=True)


class PasswordResetToken(db.Model):
    __tablename__ = "password_reset_tokens"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, _owner_fk(), index=True)
    # SHA-256 of the token; the token itself is only ever in the mail.
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(TZ, index=True)
    used_at: Mapped[datetime | None] = mapped_column(TZ)


class IdempotencyKey(db.Model):
    """A POST's key and, once it succeeded, the answer to replay."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[int] = mapped_column(BigInteger, _owner_fk(), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(Text)
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body = mapped_column(JSONB)
    location: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now(), index=True)

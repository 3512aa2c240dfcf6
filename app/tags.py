"""Blueprint "tags": the tag collection and items (views built in the tasks issue)."""

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from app.api import Blueprint
from app.extensions import db
from app.models import Tag

blp = Blueprint("tags", __name__, url_prefix="/api/v1/tags", description="Tags")


def resolve_tags(user_id: int, names: list[str]) -> list[Tag]:
    """The user's tags named `names` (matched ignoring case), creating missing ones, sorted by name.

    Runs in the caller's transaction, so a request that fails leaves no stray tag. Two
    requests creating the same name at once meet on the unique (user_id, lower(name))
    index: the second waits for the first and then finds its row.
    """
    if not names:
        return []
    db.session.execute(
        insert(Tag).values([{"user_id": user_id, "name": name} for name in names]).on_conflict_do_nothing()
    )
    return list(
        db.session.scalars(
            select(Tag)
            .where(Tag.user_id == user_id, func.lower(Tag.name).in_([name.lower() for name in names]))
            .order_by(func.lower(Tag.name), Tag.id)
        )
    )

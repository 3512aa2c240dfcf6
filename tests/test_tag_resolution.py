"""resolve_tags: the shared lookup-or-create behind the `tags` field of tasks and recurring tasks."""

from app.extensions import db
from app.models import Tag, User
from app.tags import resolve_tags


def test_resolve_tags_creates_missing_and_reuses_existing_ignoring_case(app, user):
    with app.app_context():
        owner = db.session.scalar(db.select(User))
        db.session.add(Tag(user_id=owner.id, name="Work"))
        db.session.commit()
        tags = resolve_tags(owner.id, ["work", "home"])
        db.session.commit()
        assert [t.name for t in tags] == ["home", "Work"]
        assert db.session.scalar(db.select(db.func.count()).select_from(Tag)) == 2


def test_resolve_tags_rolls_back_with_its_transaction(app, user):
    with app.app_context():
        owner = db.session.scalar(db.select(User))
        resolve_tags(owner.id, ["transient"])
        db.session.rollback()
        assert db.session.scalar(db.select(db.func.count()).select_from(Tag)) == 0

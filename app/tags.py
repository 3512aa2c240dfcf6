"""Blueprint "tags": the caller's tags; and resolve_tags, which tasks use to name theirs."""

from flask import url_for
from flask.views import MethodView
from flask_smorest import abort
from psycopg2 import errorcodes
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError

from app.api import Blueprint
from app.changes import change_seq, record_deleted, touch_tag_carriers
from app.extensions import db
from app.models import TAG_NAME_ORDER, Tag
from app.openapi import answer_links
from app.schemas.tasks import TagListSchema, TagSchema
from app.tokens import current_user, token_required

blp = Blueprint("tags", __name__, url_prefix="/api/v1/tags", description="Tags")

LOCATION = {"Location": {"description": "URL of the new tag", "schema": {"type": "string"}}}
NAME_TAKEN = "Another tag already has this name (ignoring case)"


@blp.route("")
class Tags(MethodView):
    decorators = [token_required()]

    @blp.response(200, TagListSchema)
    def get(self):
        """List the caller's tags, sorted by name ignoring case"""
        return {
            "items": db.session.scalars(
                select(Tag).where(Tag.user_id == current_user.id).order_by(TAG_NAME_ORDER)
            )
        }

    @blp.arguments(TagSchema)
    @blp.response(201, TagSchema, headers=LOCATION)
    @blp.doc(**answer_links(201, "Tag", "/api/v1/tags/{tag_id}", {"tag_id": "$response.body#/id"}))
    @blp.problem_response(409, NAME_TAKEN)
    def post(self, data):
        """Create a tag

        The unique index on (user_id, lower(name)) decides a taken name, so of two requests
        racing for one name exactly one gets the tag and the other a 409.
        """
        tag = Tag(user_id=current_user.id, sync_seq=change_seq(current_user.id), **data)
        db.session.add(tag)
        _commit_unless_name_taken()
        return tag, {"Location": url_for("tags.TagById", tag_id=tag.id, _external=True)}


@blp.route("/<id:tag_id>")
class TagById(MethodView):
    decorators = [token_required()]

    @blp.response(200, TagSchema)
    def get(self, tag_id):
        """Get a tag"""
        return _get_tag_or_404(tag_id)

    @blp.arguments(TagSchema(partial=True), required=False)
    @blp.response(200, TagSchema)
    @blp.problem_response(409, NAME_TAKEN)
    def patch(self, data, tag_id):
        """Rename or recolor a tag; its tasks show the change"""
        seq = change_seq(current_user.id)
        tag = _get_tag_or_404(tag_id)
        if data.get("name", tag.name) != tag.name:
            touch_tag_carriers(current_user.id, tag.id)
        for field, value in data.items():
            setattr(tag, field, value)
        tag.sync_seq = seq
        _commit_unless_name_taken()
        return tag

    @blp.response(204)
    def delete(self, tag_id):
        """Delete a tag; it leaves its tasks, which stay"""
        touch_tag_carriers(current_user.id, tag_id)
        deleted = db.session.execute(
            delete(Tag).where(Tag.id == tag_id, Tag.user_id == current_user.id).returning(Tag.id)
        ).first()
        if deleted is None:
            abort(404, message="Tag not found.")
        record_deleted(current_user.id, "tag", deleted)
        db.session.commit()


def _get_tag_or_404(tag_id: int) -> Tag:
    """The caller's tag `tag_id`; another user's tag is a 404 like a missing one."""
    tag = db.session.scalar(select(Tag).where(Tag.id == tag_id, Tag.user_id == current_user.id))
    if tag is None:
        abort(404, message="Tag not found.")
    return tag


def _commit_unless_name_taken() -> None:
    """Commit; a 409 if the user has another tag of that name."""
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        if getattr(exc.orig, "pgcode", None) != errorcodes.UNIQUE_VIOLATION:
            raise
        abort(409, message=f"{NAME_TAKEN}.")


def resolve_tags(user_id: int, names: list[str]) -> list[Tag]:
    """The user's tags named `names` (matched ignoring case), creating missing ones, sorted by name.

    Runs in the caller's transaction, so a request that fails leaves no stray tag. Two
    requests creating the same name at once meet on the unique (user_id, lower(name))
    index: the second waits for the first and then finds its row.
    """
    if not names:
        return []
    seq = change_seq(user_id)  # a new tag is a change too
    db.session.execute(
        insert(Tag)
        .values([{"user_id": user_id, "name": name, "sync_seq": seq} for name in names])
        .on_conflict_do_nothing()
    )
    return list(
        db.session.scalars(
            select(Tag)
            .where(Tag.user_id == user_id, func.lower(Tag.name).in_([func.lower(name) for name in names]))
            .order_by(TAG_NAME_ORDER)
        )
    )

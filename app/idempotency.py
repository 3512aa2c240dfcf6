"""`Idempotency-Key` for POST routes: a retried request replays the first answer instead of acting twice.

Keys live in PostgreSQL (table idempotency_keys), so every worker and instance sees them.
A request with a key first claims it: it inserts the row (no answer yet) with ON CONFLICT
DO NOTHING, in a short transaction of its own, so a concurrent twin finds the claim at once.
Then:
- the claim is new: the view runs; a 2xx answer (status, body, Location) is stored on the
  row in the view's own transaction, so the work and its answer are committed together or not
  at all; anything else rolls the work back and deletes the row, so that the client can retry
  with the same key;
- the row holds an answer: the same request (method, path and JSON body compared as parsed
  JSON) gets that answer again, with `Idempotent-Replayed: true`; another body is a 422;
- the row has no answer yet: the first request is still running, 409.
Keys expire after 24 hours. A claim left without an answer for 10 minutes (its worker died
mid-request; no request runs that long) counts as abandoned and may be taken again.

An idempotent view ends its work with `commit_or_defer()` instead of `db.session.commit()`.
"""

import hashlib
import json
from datetime import timedelta
from functools import wraps

from flask import current_app, g, request
from flask_smorest import abort
from marshmallow import Schema, fields, validate
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert

from app.extensions import db
from app.models import IdempotencyKey
from app.tokens import checked_user, current_user

HEADER = "Idempotency-Key"
KEY_TTL = timedelta(hours=24)
ABANDONED_AFTER = timedelta(minutes=10)
CLAIM_ATTEMPTS = 3


class IdempotencyKeySchema(Schema):
    idempotency_key = fields.String(
        data_key=HEADER,
        validate=validate.Length(min=1, max=255),
        metadata={"description": "Retry-safe POST: the same key and body within 24 h replay the answer"},
    )


def commit_or_defer() -> None:
    """Commit the view's work; under an Idempotency-Key only flush it (ids and server defaults
    are then known), and the wrapper commits it with the stored answer."""
    if g.get("idempotency_deferred_commit"):
        db.session.flush()
    else:
        db.session.commit()


def idempotent(view):
    """Make a POST view honour Idempotency-Key. Goes below
    `@blp.arguments(IdempotencyKeySchema, location="headers", as_kwargs=True)` and above
    `@blp.response`, so it sees the validated header and the finished response."""

    @wraps(view)
    def wrapper(*args, idempotency_key=None, **kwargs):
        if idempotency_key is None:
            return view(*args, **kwargs)
        checked_user()  # the view may check the session itself, but a claim must not precede that
        this_key = and_(IdempotencyKey.user_id == current_user.id, IdempotencyKey.key == idempotency_key)
        fingerprint = _fingerprint()
        earlier = _claim(this_key, idempotency_key, fingerprint)
        if earlier is not None:
            return _replay(earlier, fingerprint)
        g.idempotency_deferred_commit = True
        try:
            response = view(*args, **kwargs)
            if 200 <= response.status_code < 300:
                _store(this_key, response)
                return response
        except BaseException:
            _release(this_key)
            raise
        _release(this_key)
        return response

    return wrapper


def _fingerprint() -> str:
    body = json.dumps(request.get_json(silent=True), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{request.method} {request.path} {body}".encode()).hexdigest()


def _claim(this_key, key: str, fingerprint: str) -> IdempotencyKey | None:
    """Claim the key (committed at once); return the earlier row instead if one holds it."""
    expired = or_(
        IdempotencyKey.created_at < func.now() - KEY_TTL,
        and_(IdempotencyKey.status_code.is_(None), IdempotencyKey.created_at < func.now() - ABANDONED_AFTER),
    )
    for _ in range(CLAIM_ATTEMPTS):
        db.session.execute(delete(IdempotencyKey).where(this_key, expired))
        claimed = db.session.execute(
            insert(IdempotencyKey)
            .values(user_id=current_user.id, key=key, request_hash=fingerprint)
            .on_conflict_do_nothing()
            .returning(IdempotencyKey.key)
        ).first()
        earlier = None
        if claimed is None:
            earlier = db.session.scalar(
                select(IdempotencyKey).where(this_key).execution_options(populate_existing=True)
            )
        db.session.commit()
        if claimed is not None or earlier is not None:
            return earlier
        # The holder failed and let go between our insert and our read: try again.
    abort(409, message="This Idempotency-Key is busy; retry shortly.")


def _replay(earlier: IdempotencyKey, fingerprint: str):
    if earlier.request_hash != fingerprint:
        abort(
            422,
            message="This Idempotency-Key was used for a different request.",
            errors={HEADER: ["Already used with a different request body."]},
        )
    if earlier.status_code is None:
        abort(409, message="The first request with this Idempotency-Key is still in progress.")
    # The app's JSON provider, so the replay is serialised like the first answer was.
    response = current_app.json.response(earlier.response_body)
    response.status_code = earlier.status_code
    if earlier.location:
        response.headers["Location"] = earlier.location
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _store(this_key, response) -> None:
    """Store the answer on the claimed row and commit it with the view's work."""
    db.session.execute(
        update(IdempotencyKey)
        .where(this_key)
        .values(
            status_code=response.status_code,
            response_body=response.get_json(silent=True),
            location=response.headers.get("Location"),
        )
    )
    db.session.commit()


def _release(this_key) -> None:
    """Let go of a claim whose request failed, so that the client may retry with the key."""
    db.session.rollback()
    db.session.execute(delete(IdempotencyKey).where(this_key, IdempotencyKey.status_code.is_(None)))
    db.session.commit()

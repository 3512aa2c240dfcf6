"""`flask cleanup`: drops dead sessions, spent or expired reset tokens and old idempotency keys."""

from sqlalchemy import text

from app.extensions import db

from conftest import login, register

SETUP = """
INSERT INTO sessions (id, user_id, refresh_jti, expires_at, revoked_at) VALUES
  (gen_random_uuid(), :u, gen_random_uuid(), now() - interval '1 hour', NULL),   -- expired
  (gen_random_uuid(), :u, gen_random_uuid(), now() - interval '1 hour', now()),  -- revoked and expired
  (gen_random_uuid(), :u, gen_random_uuid(), now() + interval '1 day', now());   -- revoked, not yet expired
INSERT INTO password_reset_tokens (user_id, token_hash, expires_at, used_at) VALUES
  (:u, '\\x01', now() - interval '1 minute', NULL),     -- expired
  (:u, '\\x02', now() + interval '10 minutes', now()),  -- used
  (:u, '\\x03', now() + interval '10 minutes', NULL);   -- live
INSERT INTO idempotency_keys (user_id, key, request_hash, created_at) VALUES
  (:u, 'old', 'h', now() - interval '25 hours'),
  (:u, 'recent', 'h', now() - interval '23 hours');
"""


def _counts(app) -> tuple:
    with app.app_context():
        return tuple(
            db.session.execute(
                text(
                    "SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM password_reset_tokens),"
                    " (SELECT count(*) FROM idempotency_keys)"
                )
            ).one()
        )


def test_cleanup_deletes_only_what_is_dead(app, client):
    user_id = register(client)["id"]
    tokens = login(client)  # a live session that must survive
    with app.app_context():
        db.session.execute(text(SETUP), {"u": user_id})
        db.session.commit()
    assert _counts(app) == (4, 3, 2)

    result = app.test_cli_runner().invoke(args=["cleanup"])
    assert result.exit_code == 0, result.output
    assert (
        result.output.strip()
        == "deleted 2 sessions, 2 password reset tokens, 1 idempotency keys, 0 sync tombstones"
    )
    assert _counts(app) == (2, 1, 1)
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200

    again = app.test_cli_runner().invoke(args=["cleanup"])
    assert (
        again.output.strip()
        == "deleted 0 sessions, 0 password reset tokens, 0 idempotency keys, 0 sync tombstones"
    )

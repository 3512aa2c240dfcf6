"""Access tokens are checked by app/tokens.py with one PyJWT decode: every way a token can fail
answers the 401 that flask-jwt-extended's loaders answered, and a good token still works
however the Authorization header lists it."""

import time
import uuid

import jwt
import pytest

from conftest import assert_problem, bearer

ME = "/api/v1/auth/me"
MISSING, INVALID = "Missing bearer token.", "Invalid token."
EXPIRED, REVOKED = "The token has expired.", "The token has been revoked."


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def signed(app, claims: dict, key: str | None = None, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key or app.config["JWT_SECRET_KEY"], algorithm=algorithm)


def detail(client, authorization: str | None) -> str | None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.get(ME, headers=headers)
    if response.status_code == 200:
        return None
    assert response.headers["WWW-Authenticate"] == "Bearer"
    return assert_problem(response, 401)["detail"]


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        (None, MISSING),
        ("", MISSING),
        ("Basic dXNlcjpwYXNz", MISSING),
        ("bearer {token}", MISSING),  # the scheme is matched as flask-jwt-extended matches it
        ("Bearer", INVALID),
        ("Bearer {token} extra", INVALID),
        ("Bearer {token}, Bearer {token}", MISSING),  # two bearer values: which one?
        ("Basic dXNlcjpwYXNz, Bearer {token}", None),  # other schemes may be listed beside it
        ("Bearer {token}", None),
    ],
)
def test_the_header_is_read_as_before(client, user, authorization, expected):
    token = user["tokens"]["access_token"]
    filled = None if authorization is None else authorization.format(token=token)
    assert detail(client, filled) == expected


def test_each_bad_token_answers_its_own_detail(app, client, user):
    good = claims_of(user["tokens"]["access_token"])
    now = int(time.time())
    leeway = app.config["JWT_DECODE_LEEWAY"]
    cases = {
        signed(app, good, key="another-key-of-at-least-thirty-two-bytes"): INVALID,
        signed(app, {**good, "exp": now - leeway - 5}): EXPIRED,
        signed(app, {**good, "exp": now - leeway + 30}): None,  # within the leeway
        signed(app, {**good, "nbf": now + leeway + 60}): INVALID,  # not yet valid
        signed(app, {**good, "type": "refresh"}): INVALID,
        signed(app, {key: value for key, value in good.items() if key != "sub"}): INVALID,
        signed(app, {key: value for key, value in good.items() if key != "type"}): None,  # as before
        signed(app, {**good, "sid": "not-a-uuid"}): REVOKED,
        signed(app, {**good, "sid": str(uuid.uuid4())}): REVOKED,
        signed(app, {**good, "sub": "999999"}): REVOKED,  # the session is not this user's
        signed(app, good, key="x" * 64, algorithm="HS512"): INVALID,  # another algorithm
        jwt.encode(good, None, algorithm="none"): INVALID,
        user["tokens"]["access_token"][:-3] + "AAA": INVALID,  # a changed signature
    }
    for token, expected in cases.items():
        assert detail(client, f"Bearer {token}") == expected, (claims_of(token), expected)


def test_a_token_carries_no_csrf_claim(user):
    # Cookies are off (JWT_TOKEN_LOCATION = headers), so the claim was dead weight in every decode.
    assert "csrf" not in claims_of(user["tokens"]["access_token"])


def test_every_protected_route_checks_the_session_once(client, user):
    # A route that checks the session before its view (tags) and one that checks it in its own
    # statement (me) both answer the revoked-token 401 once the session is gone.
    assert client.get("/api/v1/tags", headers=user["headers"]).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=user["headers"]).status_code == 204
    for path in ("/api/v1/tags", ME, "/api/v1/tasks"):
        assert assert_problem(client.get(path, headers=user["headers"]), 401)["detail"] == REVOKED


def test_a_refresh_token_still_refreshes_and_an_access_token_does_not(client, user):
    refreshed = client.post("/api/v1/auth/refresh", headers=bearer(user["tokens"]["refresh_token"]))
    assert refreshed.status_code == 200
    assert detail(client, f"Bearer {refreshed.get_json()['access_token']}") is None
    wrong = client.post("/api/v1/auth/refresh", headers=user["headers"])
    assert assert_problem(wrong, 401)["detail"] == INVALID

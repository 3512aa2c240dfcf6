"""JWT_LEEWAY: tokens minted by an instance whose clock differs a little still work everywhere."""

import time

import jwt
import pytest

from app import create_app
from config import Config, ConfigError, TestConfig

from conftest import assert_problem, bearer


def skewed(app, token: str, seconds: float, claims=("iat", "nbf")) -> str:
    """`token` as an instance whose clock is `seconds` ahead would have minted it."""
    payload = jwt.decode(token, options={"verify_signature": False})
    for claim in claims:
        payload[claim] = int(payload[claim] + seconds)
    return jwt.encode(payload, app.config["JWT_SECRET_KEY"], algorithm="HS256")


def expired_by(app, token: str, seconds: float) -> str:
    payload = jwt.decode(token, options={"verify_signature": False})
    payload["exp"] = int(time.time() - seconds)
    return jwt.encode(payload, app.config["JWT_SECRET_KEY"], algorithm="HS256")


def test_a_token_from_a_clock_3_s_ahead_is_accepted_at_once(app, client, user):
    token = skewed(app, user["tokens"]["access_token"], 3)
    assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 200


def test_a_refresh_token_from_a_clock_3_s_ahead_is_accepted_at_once(app, client, user):
    token = skewed(app, user["tokens"]["refresh_token"], 3)
    assert client.post("/api/v1/auth/refresh", headers=bearer(token)).status_code == 200


def test_a_token_from_a_clock_30_s_ahead_is_refused_by_default(app, client, user):
    token = skewed(app, user["tokens"]["access_token"], 30)
    assert_problem(client.get("/api/v1/auth/me", headers=bearer(token)), 401)


def test_leeway_also_extends_expiry(app, client, user):
    """The documented consequence: a token 5 s past `exp` still works within the 10 s leeway."""
    token = user["tokens"]["access_token"]
    assert client.get("/api/v1/auth/me", headers=bearer(expired_by(app, token, 5))).status_code == 200
    late = client.get("/api/v1/auth/me", headers=bearer(expired_by(app, token, 30)))
    assert assert_problem(late, 401)["detail"] == "The token has expired."


def test_jwt_leeway_zero_tolerates_no_skew(monkeypatch, client, user):
    monkeypatch.setenv("JWT_LEEWAY", "0")
    strict = create_app(TestConfig)
    token = skewed(strict, user["tokens"]["access_token"], 3)
    assert_problem(strict.test_client().get("/api/v1/auth/me", headers=bearer(token)), 401)


@pytest.mark.parametrize("value", ["-1", "ten", "1.5"])
def test_a_bad_jwt_leeway_stops_start_up_naming_it(monkeypatch, value):
    monkeypatch.setenv("APP_ENV", "development")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@localhost/app")
    monkeypatch.setenv("JWT_LEEWAY", value)
    with pytest.raises(ConfigError, match="JWT_LEEWAY"):
        Config()

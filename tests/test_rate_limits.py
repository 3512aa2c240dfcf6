"""Rate limits of register, login and password-reset: in memory, in Redis, and switched off."""

import shutil
import socket
import subprocess
import time
import uuid

import pytest
import redis

from app import create_app
from app.extensions import db
from config import TestConfig

from conftest import PASSWORD, register

AUTH = "/api/v1/auth"
LIMIT = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def limited_app(monkeypatch, database_url):
    """Build apps with limits on (`LIMIT` per minute) in the given store, each with its own prefix."""
    apps = []

    def build(storage_uri: str = "memory://", prefix: str | None = None):
        monkeypatch.setenv("RATELIMIT_ENABLED", "true")
        monkeypatch.setenv("RATELIMIT_AUTH", f"{LIMIT} per minute")
        monkeypatch.setenv("RATELIMIT_STORAGE_URI", storage_uri)
        config = type("LimitedConfig", (TestConfig,), {"RATELIMIT_KEY_PREFIX": prefix or uuid.uuid4().hex})
        app = create_app(config)
        apps.append(app)
        return app

    yield build
    for app in apps:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def user_headers_for():
    def headers_for(client) -> dict:
        register(client)
        token = login_from(client, "10.0.9.1").get_json()["access_token"]
        return {"Authorization": f"Bearer {token}"}

    return headers_for


def login_from(client, address: str, email: str = "ada@example.com"):
    return client.post(
        f"{AUTH}/login",
        json={"email": email, "password": PASSWORD},
        environ_base={"REMOTE_ADDR": address},
    )


def assert_rate_limited(response) -> None:
    assert response.status_code == 429
    assert response.content_type == "application/problem+json"
    assert {"type", "title", "status", "detail"} <= set(response.get_json())
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert response.headers["X-RateLimit-Remaining"] == "0"


def test_login_answers_carry_the_limit_headers_and_the_next_one_is_429(limited_app):
    client = limited_app().test_client()
    register(client)
    for remaining in range(LIMIT - 1, -1, -1):
        response = login_from(client, "10.0.0.1")
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Limit"] == str(LIMIT)
        assert response.headers["X-RateLimit-Remaining"] == str(remaining)
        assert int(response.headers["X-RateLimit-Reset"]) > time.time()
    assert_rate_limited(login_from(client, "10.0.0.1"))


def test_register_login_and_reset_are_limited_each_on_its_own(limited_app):
    client = limited_app().test_client()
    for n in range(LIMIT):
        register(client, email=f"user{n}@example.com")
    assert_rate_limited(
        client.post(f"{AUTH}/register", json={"email": "x@example.com", "password": PASSWORD})
    )
    for _ in range(LIMIT):
        assert client.post(f"{AUTH}/password-reset", json={"email": "user0@example.com"}).status_code == 202
    assert_rate_limited(client.post(f"{AUTH}/password-reset", json={"email": "user0@example.com"}))
    # Neither used up the login's allowance.
    response = client.post(f"{AUTH}/login", json={"email": "user1@example.com", "password": PASSWORD})
    assert response.status_code == 200
    assert response.headers["X-RateLimit-Remaining"] == str(LIMIT - 1)


def test_login_is_limited_per_email_across_addresses(limited_app):
    client = limited_app().test_client()
    register(client)
    for n in range(LIMIT):
        assert login_from(client, f"10.0.1.{n}").status_code == 200
    assert_rate_limited(login_from(client, "10.0.1.99"))
    # A fresh address with another email is not affected; the limit is the account's.
    assert login_from(client, "10.0.1.99", email="grace@example.com").status_code == 401


def test_login_is_limited_per_address_across_emails(limited_app):
    client = limited_app().test_client()
    for n in range(LIMIT):
        assert login_from(client, "10.0.2.1", email=f"user{n}@example.com").status_code == 401
    assert_rate_limited(login_from(client, "10.0.2.1", email="someone-else@example.com"))
    assert login_from(client, "10.0.2.2", email="someone-else@example.com").status_code == 401


def test_no_other_route_is_limited(limited_app, user_headers_for):
    client = limited_app().test_client()
    headers = user_headers_for(client)
    for _ in range(LIMIT + 2):
        answers = (
            client.get("/health"),
            client.get(f"{AUTH}/me", headers=headers),
            client.post(f"{AUTH}/password-reset/confirm", json={"token": "x" * 43, "new_password": PASSWORD}),
        )
        for response in answers:
            assert response.status_code in (200, 400), response.get_data(as_text=True)
            assert "X-RateLimit-Limit" not in response.headers


def test_limits_are_off_when_disabled(limited_app, client):
    # An app with limits on exists in the same process; the disabled one must not inherit them.
    limited_app().test_client().post(f"{AUTH}/login", json={"email": "a@example.com", "password": PASSWORD})
    register(client)
    for _ in range(LIMIT + 3):
        response = client.post(f"{AUTH}/login", json={"email": "ada@example.com", "password": PASSWORD})
        assert response.status_code == 200
        assert "X-RateLimit-Limit" not in response.headers


def test_memory_store_counts_per_app(limited_app):
    first, second = limited_app(prefix="same").test_client(), limited_app(prefix="same").test_client()
    for _ in range(LIMIT):
        login_from(first, "10.0.3.1")
    assert_rate_limited(login_from(first, "10.0.3.1"))
    assert login_from(second, "10.0.3.1").status_code == 401


def test_an_unreachable_store_falls_back_to_memory(limited_app):
    client = limited_app(f"redis://127.0.0.1:{free_port()}/0").test_client()
    for _ in range(LIMIT):
        assert login_from(client, "10.0.4.1").status_code == 401
    assert_rate_limited(login_from(client, "10.0.4.1"))


# --- Redis: one store shared by several app instances ---


def _answers(url: str) -> bool:
    try:
        return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False


@pytest.fixture(scope="module")
def redis_url():
    """A Redis on 127.0.0.1: the one on 6379 if it answers, else a throwaway redis-server."""
    if _answers("redis://127.0.0.1:6379/0"):
        yield "redis://127.0.0.1:6379/0"
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no Redis answers on 127.0.0.1:6379 and no redis-server binary is installed")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while not _answers(url):
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("the redis-server started for the tests did not answer within 10 s")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def test_two_app_instances_share_one_limit_in_redis(limited_app, redis_url):
    prefix = f"todo-test-{uuid.uuid4().hex}"
    first = limited_app(redis_url, prefix).test_client()
    second = limited_app(redis_url, prefix).test_client()
    try:
        assert login_from(first, "10.0.5.1").status_code == 401
        assert login_from(second, "10.0.5.1").status_code == 401
        assert login_from(first, "10.0.5.1").headers["X-RateLimit-Remaining"] == "0"
        assert_rate_limited(login_from(second, "10.0.5.1"))
    finally:
        store = redis.Redis.from_url(redis_url)
        keys = list(store.scan_iter(match=f"*{prefix}*"))
        assert keys, "the limiter wrote no keys with this run's prefix"
        store.delete(*keys)


def test_forwarded_address_counts_only_behind_trusted_proxies(database_url, monkeypatch):
    monkeypatch.setenv("RATELIMIT_ENABLED", "true")
    monkeypatch.setenv("RATELIMIT_AUTH", "1 per minute")
    monkeypatch.setenv("TRUSTED_PROXIES", "1")
    client = create_app(TestConfig).test_client()
    body = {"email": "nobody@example.com"}
    first = client.post("/api/v1/auth/password-reset", json=body, headers={"X-Forwarded-For": "203.0.113.1"})
    second = client.post("/api/v1/auth/password-reset", json=body, headers={"X-Forwarded-For": "203.0.113.2"})
    again = client.post("/api/v1/auth/password-reset", json=body, headers={"X-Forwarded-For": "203.0.113.1"})
    assert (first.status_code, second.status_code, again.status_code) == (202, 202, 429)

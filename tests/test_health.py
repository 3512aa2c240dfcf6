"""GET /health: 200 with a reachable database, 503 within DB_CONNECT_TIMEOUT + 1 s without one."""

import time

from app import create_app
from config import TestConfig

from pg_cluster import free_port


def test_health_ok(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.content_type == "application/json"
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_health_unreachable_database_is_a_503_status_document(monkeypatch, database_url):
    monkeypatch.setenv("TEST_DATABASE_URL", f"postgresql://u:p@127.0.0.1:{free_port()}/db")
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "1")
    client = create_app(TestConfig).test_client()
    started = time.monotonic()
    response = client.get("/health")
    assert time.monotonic() - started < 2
    assert response.status_code == 503
    assert response.content_type == "application/json"
    assert response.get_json() == {"status": "unavailable", "database": "unreachable"}


def test_api_answers_503_with_retry_after_when_the_database_is_down(monkeypatch, database_url):
    monkeypatch.setenv("TEST_DATABASE_URL", f"postgresql://u:p@127.0.0.1:{free_port()}/db")
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "1")
    client = create_app(TestConfig).test_client()
    response = client.post("/api/v1/auth/login", json={"email": "a@example.com", "password": "whatever1"})
    assert response.status_code == 503
    assert response.content_type == "application/problem+json"
    assert response.headers["Retry-After"]

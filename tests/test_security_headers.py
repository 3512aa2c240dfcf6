"""Security headers on every answer, and CORS only for the origins CORS_ORIGINS names."""

import pytest

from app import create_app
from app.extensions import db
from config import TestConfig

AUTH = "/api/v1/auth"
JSON_CSP = "default-src 'none'; frame-ancestors 'none'"
ALLOWED = "https://app.example.com"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/health"), ("GET", "/nowhere"), ("GET", f"{AUTH}/me"), ("POST", f"{AUTH}/login")],
)
def test_every_json_answer_has_the_security_headers(client, method, path):
    response = client.open(path, method=method, json={} if method == "POST" else None)
    assert response.is_json
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Content-Security-Policy"] == JSON_CSP


def test_auth_answers_are_not_cached(client, user):
    for response in (
        client.get(f"{AUTH}/me", headers=user["headers"]),
        client.post(f"{AUTH}/login", json={"email": user["email"], "password": "wrong password"}),
        client.post(f"{AUTH}/password-reset", json={"email": user["email"]}),
    ):
        assert response.headers["Cache-Control"] == "no-store"
    assert "no-store" not in client.get("/health").headers.get("Cache-Control", "")


def test_non_json_answers_get_no_json_csp(database_url):
    # /docs is HTML that runs scripts; it sets its own policy, this one would break it.
    app = create_app(TestConfig)
    app.add_url_rule("/_test-html", "test_html", lambda: "<p>docs</p>")
    response = app.test_client().get("/_test-html")
    assert response.mimetype == "text/html"
    assert "Content-Security-Policy" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.fixture
def cors_client(monkeypatch, database_url):
    monkeypatch.setenv("CORS_ORIGINS", f"{ALLOWED}, https://other.example.com")
    app = create_app(TestConfig)
    yield app.test_client()
    with app.app_context():
        db.engine.dispose()


def test_no_origin_is_allowed_by_default(client):
    response = client.get("/health", headers={"Origin": ALLOWED})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_an_allowed_origin_is_echoed(cors_client):
    response = cors_client.get("/health", headers={"Origin": ALLOWED})
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "X-Request-ID" in response.headers["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_a_disallowed_origin_gets_no_cors_headers(cors_client):
    response = cors_client.get("/health", headers={"Origin": "https://evil.example.com"})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


def test_preflight_of_an_allowed_origin(cors_client):
    response = cors_client.options(
        f"{AUTH}/me",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "PATCH" in response.headers["Access-Control-Allow-Methods"]
    allowed_headers = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed_headers and "content-type" in allowed_headers
    assert response.headers["Access-Control-Max-Age"] == "600"


def test_preflight_of_a_disallowed_origin(cors_client):
    response = cors_client.options(
        f"{AUTH}/me",
        headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "DELETE"},
    )
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Methods" not in response.headers

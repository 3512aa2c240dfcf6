"""The error table of the contract: every error is problem+json, with the right status."""

import logging

import pytest

from app import create_app
from config import TestConfig

from conftest import assert_problem

REGISTER = "/api/v1/auth/register"


def test_unknown_route_is_404(client):
    assert_problem(client.get("/api/v1/nowhere"), 404)


def test_wrong_method_is_405_with_allow(client):
    response = client.delete("/api/v1/auth/login")
    assert_problem(response, 405)
    assert "POST" in response.headers["Allow"]


def test_invalid_json_is_400(client):
    response = client.post(REGISTER, data="{not json", content_type="application/json")
    assert_problem(response, 400)


@pytest.mark.parametrize("payload", ["[1, 2]", "42", '"text"', "null"])
def test_json_that_is_not_an_object_is_422(client, payload):
    response = client.post(REGISTER, data=payload, content_type="application/json")
    assert_problem(response, 422)


def test_other_content_type_is_415(client):
    response = client.post(REGISTER, data="email=a@b.c", content_type="application/x-www-form-urlencoded")
    assert_problem(response, 415)


def test_body_over_one_mebibyte_is_413(client):
    body = '{"email": "' + "a" * (1024 * 1024) + '"}'
    response = client.post(REGISTER, data=body, content_type="application/json")
    assert_problem(response, 413)


def test_request_id_is_echoed_when_valid(client):
    response = client.get("/api/v1/nowhere", headers={"X-Request-ID": "abc.DEF_123-x"})
    assert response.headers["X-Request-ID"] == "abc.DEF_123-x"


@pytest.mark.parametrize("incoming", ["has space", "x" * 129, "ümlaut", ""])
def test_request_id_is_replaced_when_invalid(client, incoming):
    response = client.get("/health", headers={"X-Request-ID": incoming})
    assert response.headers["X-Request-ID"] not in ("", incoming)


def test_every_response_has_a_request_id(client, user):
    for response in (
        client.get("/health"),
        client.get("/api/v1/auth/me", headers=user["headers"]),
        client.get("/api/v1/auth/me"),
        client.get("/openapi.json"),
    ):
        assert response.headers.get("X-Request-ID")


def test_unexpected_error_is_a_bare_500_logged_with_its_request_id(database_url, caplog):
    app = create_app(TestConfig)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # behave as in production, not as a test app

    @app.get("/__boom")
    def boom():
        raise RuntimeError("secret detail SELECT * FROM users")

    app_logger = logging.getLogger("app")
    app_logger.addHandler(caplog.handler)
    try:
        response = app.test_client().get("/__boom", headers={"X-Request-ID": "trace-me"})
    finally:
        app_logger.removeHandler(caplog.handler)
    assert_problem(response, 500)
    assert "secret" not in response.get_data(as_text=True)
    assert "SELECT" not in response.get_data(as_text=True)
    logged = [r for r in caplog.records if r.exc_info]
    assert logged and logged[0].request_id == "trace-me"
    assert "RuntimeError" in caplog.text


@pytest.mark.parametrize(
    "path", ["/api/v1/auth/sessions/99999999999999999999999", "/api/v1/auth/sessions/-1"]
)
def test_out_of_range_ids_are_404(client, user, path):
    assert_problem(client.delete(path, headers=user["headers"]), 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/api/v1/auth/me"), ("get", "/api/v1/tags"), ("get", "/api/v1/priorities"), ("get", "/health")],
)
def test_unknown_query_parameter_on_a_route_without_any_is_422(client, user, method, path):
    response = getattr(client, method)(f"{path}?sort=name", headers=user["headers"])
    body = assert_problem(response, 422)
    assert body["errors"] == {"sort": ["Unknown field."]}


def test_unknown_query_parameter_on_a_public_route_is_422(client):
    response = client.post("/api/v1/auth/login?debug=1", json={"email": "a@example.com", "password": "x" * 8})
    assert assert_problem(response, 422)["errors"] == {"debug": ["Unknown field."]}


def test_bad_token_wins_over_unknown_query_parameter(client):
    response = client.get("/api/v1/tags?sort=name", headers={"Authorization": "Bearer garbage"})
    assert_problem(response, 401)

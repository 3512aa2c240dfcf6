"""Hostile input generated from the app's own /openapi.json (schemathesis): no 500 anywhere, and
every answer is one the document declares, with the declared schema.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import create_app
from config import TestConfig

from conftest import bearer, login, register

pytestmark = pytest.mark.slow

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


class DocumentOnlyConfig(TestConfig):
    """Builds the app only to read its document at collection, before the test database exists."""

    def database_url(self) -> str:
        return "postgresql://unused@127.0.0.1:1/unused"


# One test per operation; each case is sent to the `app` fixture, which has the database.
schema = schemathesis.openapi.from_wsgi("/openapi.json", create_app(DocumentOnlyConfig))


@pytest.fixture
def auth_headers(client):
    register(client, email="fuzz@example.com")
    return bearer(login(client, email="fuzz@example.com")["access_token"])


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_the_api_honours_its_own_document(case, app, auth_headers):
    # The generated case may bring its own Authorization (e.g. a malformed one): that is fine too.
    headers = {**auth_headers, **(case.headers or {})}
    case.call_and_validate(app=app, headers=headers, checks=CHECKS)

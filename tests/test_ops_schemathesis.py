"""Hostile input generated from the app's own /openapi.json (schemathesis): no 500 anywhere, every
answer one the document declares, with the declared schema; and, following the document's links
(POST → GET/PATCH/DELETE of what it created), created resources are there until deleted and gone
after. Every operation of the document is tested; none is excluded.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ensure_resource_availability,
    response_schema_conformance,
    status_code_conformance,
    use_after_free,
)
from sqlalchemy import text

from app import create_app
from app.extensions import db
from config import TestConfig

from conftest import bearer, login, register

pytestmark = pytest.mark.slow

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    use_after_free,
    ensure_resource_availability,
]
FUZZ_EMAIL = "fuzz@example.com"
# Bounded for a busy 2-core machine: a few minutes for both tests together.
STATELESS_EXAMPLES = 25
STATEFUL_SCENARIOS = 30
STATEFUL_STEPS = 8


class DocumentOnlyConfig(TestConfig):
    """Builds the app only to read its document at collection, before the test database exists."""

    def database_url(self) -> str:
        return "postgresql://unused@127.0.0.1:1/unused"


# One test per operation; each case is sent to the `app` fixture, which has the database.
schema = schemathesis.openapi.from_wsgi("/openapi.json", create_app(DocumentOnlyConfig))


@pytest.fixture
def auth_headers(client):
    register(client, email=FUZZ_EMAIL)
    return bearer(login(client, email=FUZZ_EMAIL)["access_token"])


@schema.parametrize()
@settings(
    max_examples=STATELESS_EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_the_api_honours_its_own_document(case, app, auth_headers):
    # Our token wins over one schemathesis generates for the security scheme: a random token
    # would make nearly every case a 401 and test nothing behind it.
    headers = {**(case.headers or {}), **auth_headers}
    case.call_and_validate(app=app, headers=headers, checks=CHECKS)


class Workflow(schema.as_state_machine()):
    """Sequences of calls chained by the document's links, as one signed-in user."""

    app = None

    def setup(self):
        # Every scenario starts from the same state (no data, a new user with a new session), so
        # that Hypothesis can replay and shrink a failing one; ids restart too.
        with self.app.app_context():
            db.session.execute(text("TRUNCATE users RESTART IDENTITY CASCADE"))
            db.session.commit()
        client = self.app.test_client()
        register(client, email=FUZZ_EMAIL)
        self.headers = bearer(login(client, email=FUZZ_EMAIL)["access_token"])

    def get_call_kwargs(self, case):
        return {"app": self.app, "headers": {**(case.headers or {}), **self.headers}}

    def validate_response(self, response, case, additional_checks=None, **kwargs):
        case.validate_response(
            response, checks=CHECKS, transport_kwargs=kwargs or None, recorder=self.recorder
        )


def test_linked_operations_keep_the_document(app):
    Workflow.app = app
    Workflow.run(
        settings=settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )

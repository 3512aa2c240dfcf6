"""The checker that every test client runs on every answer catches what breaks the document."""

import json

import pytest
from flask import Response
from jsonschema import Draft4Validator

from app import create_app
from config import TestConfig

from openapi_check import DocumentMismatch, as_json_schema, check_answer, document_of

TASK = {
    "id": 1,
    "title": "t",
    "description": "",
    "completed": False,
    "completed_at": None,
    "due_at": None,
    "priority": None,
    "tags": [],
    "created_at": "2027-01-01T00:00:00+00:00",
    "updated_at": "2027-01-01T00:00:00Z",
}
PROBLEM = {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "Not Found"}


class DocumentOnlyConfig(TestConfig):
    def database_url(self) -> str:
        return "postgresql://unused@127.0.0.1:1/unused"


@pytest.fixture(scope="module")
def document():
    return document_of(create_app(DocumentOnlyConfig))


def answer(status: int, body=None, mimetype: str = "application/json") -> Response:
    data = b"" if body is None else json.dumps(body)
    return Response(data, status=status, mimetype=mimetype)


def test_an_answer_the_document_describes_passes(document):
    check_answer(document, "GET", "/api/v1/tasks/1", answer(200, TASK))
    check_answer(document, "GET", "/api/v1/tasks/1/", answer(404, PROBLEM, "application/problem+json"))
    check_answer(document, "DELETE", "/api/v1/tasks/1", answer(204))
    check_answer(document, "HEAD", "/api/v1/tasks/1", answer(200))


@pytest.mark.parametrize(
    "changes",
    [
        {"completed": None},  # null where the document does not say nullable
        {"priority": "someday"},  # outside the enum
        {"due_at": "2027-01-01T09:00:00"},  # a date-time without an offset
        {"extra": 1},  # a field the document does not name
    ],
)
def test_a_body_off_its_schema_is_a_mismatch(document, changes):
    with pytest.raises(DocumentMismatch, match="body does not match"):
        check_answer(document, "GET", "/api/v1/tasks/1", answer(200, {**TASK, **changes}))


def test_a_success_the_operation_does_not_document_is_a_mismatch(document):
    with pytest.raises(DocumentMismatch, match="status not documented"):
        check_answer(document, "POST", "/api/v1/tasks", answer(200, TASK))


def test_an_undocumented_content_type_is_a_mismatch(document):
    with pytest.raises(DocumentMismatch, match="content type"):
        check_answer(document, "GET", "/api/v1/tasks/1", answer(404, PROBLEM))
    with pytest.raises(DocumentMismatch, match="a body where the document says none"):
        check_answer(document, "DELETE", "/api/v1/tasks/1", answer(204, TASK))


def test_a_route_outside_the_document_must_be_a_404_problem(document):
    check_answer(document, "GET", "/nowhere", answer(404, PROBLEM, "application/problem+json"))
    with pytest.raises(DocumentMismatch, match="outside the document"):
        check_answer(document, "GET", "/api/v1/undocumented", answer(200, {}))
    with pytest.raises(DocumentMismatch, match="body does not match"):
        check_answer(document, "GET", "/nowhere", answer(404, {"error": "x"}, "application/problem+json"))
    # Pages that are not the JSON API are left alone, by name only.
    check_answer(document, "GET", "/docs", answer(200, None, "text/html"))


def test_a_write_only_field_is_neither_required_nor_admitted_in_an_answer():
    registration = {
        "type": "object",
        "properties": {"email": {"type": "string"}, "password": {"type": "string", "writeOnly": True}},
        "required": ["email", "password"],
    }
    schema = Draft4Validator(as_json_schema(registration, answer=True))
    assert schema.is_valid({"email": "a@example.com"})
    assert not schema.is_valid({"email": "a@example.com", "password": "secret"})

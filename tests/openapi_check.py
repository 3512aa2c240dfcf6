"""Every answer of the test client checked against the app's own /openapi.json.

`DocumentCheckedClient` is the test client of every Flask app the suite builds (conftest sets
it as Flask's `test_client_class`). After each request it finds the operation of the document
the request went to and asserts that the answer's status is documented for it (or falls under
`default`), that its content type is documented for that status, and that its body validates
against the schema: JSON Schema (jsonschema, Draft 4) over the document, with OpenAPI 3.0's
`nullable`, `readOnly`/`writeOnly` and formats (`date-time` requires an offset) handled here.

A path that no operation of the document matches must be a 404 problem. The only exceptions
are the routes of `OUTSIDE_THE_DOCUMENT`, which are not part of the JSON API.
"""

import copy
import json
import re
import uuid
import weakref
from datetime import date, datetime

from flask.testing import FlaskClient
from jsonschema import Draft4Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT4

# Paths served by the app that are not operations of the API, by prefix. Each is skipped only
# while the document has no operation for it (a calendar feed documented later is checked).
OUTSIDE_THE_DOCUMENT = (
    "/openapi.json",  # the document itself
    "/docs",  # Swagger UI's page and assets
    "/metrics",  # Prometheus text, for scrapers
    "/calendar/",  # iCalendar feeds, for calendar apps
    # Routes that single tests add to their app to provoke a failure or serve a page.
    "/__boom",
    "/_test-html",
    "/rename-everyone",
)
# HTTP machinery, not operations: CORS preflights and Flask's automatic OPTIONS answers.
UNDOCUMENTED_METHODS = {"OPTIONS"}
DOCUMENT_PATH = "/openapi.json"
# The URI the document is known by to the validator, so that its "#/components/..." resolve.
DOCUMENT_URI = "urn:openapi-document"

# RFC 3339 date-time: a "T" (or space-free "t") between date and time, and an offset.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")

FORMATS = FormatChecker(formats=())
# Draft 4 has no `false` schema: this one admits no value (a property that must not appear).
NOTHING = {"not": {}}


@FORMATS.checks("date-time", raises=ValueError)
def _is_datetime(value) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        return False
    datetime.fromisoformat(value.upper())
    return True


@FORMATS.checks("date", raises=ValueError)
def _is_date(value) -> bool:
    if not isinstance(value, str):
        return True
    return len(value) == 10 and date.fromisoformat(value) is not None


@FORMATS.checks("uuid", raises=ValueError)
def _is_uuid(value) -> bool:
    return not isinstance(value, str) or uuid.UUID(value) is not None


@FORMATS.checks("email")
def _is_email(value) -> bool:
    return not isinstance(value, str) or value.count("@") == 1


class DocumentMismatch(AssertionError):
    """An answer that the document does not describe."""


def as_json_schema(node, *, answer: bool):
    """An OpenAPI 3.0 schema (or whole document) as Draft 4 JSON Schema.

    `nullable: true` admits null; in an answer (`answer=True`) a writeOnly property must not
    appear and is not required; in a request a readOnly one likewise."""
    if isinstance(node, list):
        return [as_json_schema(item, answer=answer) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: as_json_schema(value, answer=answer) for key, value in node.items()}
    hidden = "writeOnly" if answer else "readOnly"
    properties = node.get("properties")
    if isinstance(properties, dict) and "type" in node:
        hidden_names = {
            name for name, prop in properties.items() if isinstance(prop, dict) and prop.get(hidden)
        }
        if hidden_names:
            node["properties"] = {
                name: (NOTHING if name in hidden_names else p) for name, p in properties.items()
            }
            if "required" in node:
                node["required"] = [name for name in node["required"] if name not in hidden_names]
                if not node["required"]:
                    del node["required"]
    if node.pop("nullable", False) is True:
        if "type" in node:
            node["type"] = [node["type"], "null"]
            if "enum" in node and None not in node["enum"]:
                node["enum"] = [*node["enum"], None]
        else:
            node = {"anyOf": [node, {"type": "null"}]}
    return node


class Document:
    """The operations of one OpenAPI document, and validators of their answers."""

    def __init__(self, spec: dict):
        self.spec = spec
        converted = as_json_schema(copy.deepcopy(spec), answer=True)
        self.registry = Registry().with_resource(DOCUMENT_URI, DRAFT4.create_resource(converted))
        self.routes = [(_path_pattern(path), path) for path in spec["paths"]]

    def operation(self, path: str, method: str) -> tuple[str | None, dict | None]:
        """(path template, operation) of a request; (None, None) when no path matches."""
        for pattern, template in self.routes:
            if pattern.match(path):
                return template, self.spec["paths"][template].get(method.lower())
        return None, None

    def response(self, responses: dict, status: int) -> dict | None:
        found = responses.get(str(status)) or responses.get(f"{status // 100}XX") or responses.get("default")
        return self._resolve(found) if found else None

    def default_error(self) -> dict:
        return self._resolve({"$ref": "#/components/responses/DEFAULT_ERROR"})

    def errors(self, schema: dict, body) -> list[str]:
        converted = _absolute_refs(as_json_schema(copy.deepcopy(schema), answer=True))
        validator = Draft4Validator(converted, registry=self.registry, format_checker=FORMATS)
        return [
            f"{'/'.join(map(str, error.absolute_path)) or '<body>'}: {error.message}"
            for error in validator.iter_errors(body)
        ]

    def _resolve(self, item: dict) -> dict:
        while "$ref" in item:
            node = self.spec
            for part in item["$ref"].removeprefix("#/").split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            item = node
        return item


def _absolute_refs(node):
    """A schema cut out of the document, its "#/..." references pointing back into the document."""
    if isinstance(node, list):
        return [_absolute_refs(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        key: DOCUMENT_URI + value if key == "$ref" and value.startswith("#") else _absolute_refs(value)
        for key, value in node.items()
    }


def _path_pattern(template: str) -> re.Pattern:
    parts = re.split(r"(\{[^}]+\})", template)
    regex = "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
    return re.compile(f"^{regex}/?$")


def check_answer(document: Document, method: str, path: str, response) -> None:
    """Raise DocumentMismatch unless `response` is an answer the document gives to the request."""
    if method in UNDOCUMENTED_METHODS:
        return
    template, operation = document.operation(path, "GET" if method == "HEAD" else method)
    where = f"{method} {path} answered {response.status_code}"
    if template is None and path.startswith(OUTSIDE_THE_DOCUMENT):
        return
    if operation is None:
        # No such route (404), or no such method on it (405): an error like any other.
        if template is None and response.status_code != 404:
            raise DocumentMismatch(
                f"{where}: a route outside the document (add it, or to OUTSIDE_THE_DOCUMENT)"
            )
        documented = document.default_error()
    else:
        documented = document.response(operation["responses"], response.status_code)
        # `default` is the document's error answer: a success must be documented by its code.
        if response.status_code < 400 and str(response.status_code) not in operation["responses"]:
            documented = None
        if documented is None:
            raise DocumentMismatch(f"{where}: status not documented for {method} {template}")
    content = documented.get("content") or {}
    body = response.get_data()
    if not content:
        if body:
            raise DocumentMismatch(f"{where}: a body where the document says none")
        return
    if response.mimetype not in content:
        raise DocumentMismatch(f"{where}: content type {response.mimetype} not in {sorted(content)}")
    if method == "HEAD":
        return
    if not body:
        raise DocumentMismatch(f"{where}: an empty body where the document gives {response.mimetype}")
    schema = content[response.mimetype].get("schema")
    if not response.is_json:
        # A text answer (the iCalendar feed): its schema can only say "a string", which it is.
        return
    if schema is not None and (errors := document.errors(schema, json.loads(body))):
        raise DocumentMismatch(
            f"{where}: body does not match the document: {errors[:5]}; body={body[:500]!r}"
        )


_DOCUMENTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
# Mismatches found in this test, also those raised where no one looks (a thread of a test).
MISMATCHES: list[str] = []


def document_of(app) -> Document:
    """The app's document, read once per app through an unchecked client."""
    if app not in _DOCUMENTS:
        answer = FlaskClient(app).get(DOCUMENT_PATH)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        _DOCUMENTS[app] = Document(answer.get_json())
    return _DOCUMENTS[app]


class DocumentCheckedClient(FlaskClient):
    """Flask's test client, failing any answer that the app's /openapi.json does not describe."""

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        request = response.request
        try:
            check_answer(document_of(self.application), request.method, request.path, response)
        except DocumentMismatch as mismatch:
            MISMATCHES.append(str(mismatch))
            raise
        return response

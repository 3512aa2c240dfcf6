"""flask-smorest's Api and Blueprint, adapted to the contract's errors and strict query strings."""

import http
import json
import re
from dataclasses import dataclass

import flask_smorest
from apispec import BasePlugin
from apispec.ext.marshmallow.common import resolve_schema_cls, resolve_schema_instance
from flask import Flask, Response, current_app, request
from flask_smorest.spec.plugins import FlaskPlugin
from flask_smorest.utils import prepare_response
from marshmallow import RAISE, Schema
from webargs.core import missing
from webargs.flaskparser import FlaskParser, abort
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from app.errors import PROBLEM_MIMETYPE, ProblemSchema, default_detail, problem, validation_errors

# What PostgreSQL's text cannot hold: NUL, and UTF-16 surrogates (JSON's "\ud800" alone).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = "Must not contain NUL characters or unpaired surrogates."


def unstorable_paths(value) -> list[str]:
    """Dotted paths of the strings in a parsed JSON value that no text column can store.

    A loop, not recursion: the JSON parser accepts nesting nearly as deep as Python's stack."""
    found, pending = [], [("", value)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, str) and _UNSTORABLE.search(item):
            found.append(path or "_schema")
        elif isinstance(item, dict | list):
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            pending.extend((f"{path}.{key}" if path else str(key), child) for key, child in pairs)
    return sorted(found)


class StrictParser(FlaskParser):
    """Unknown query parameters are a 422, like unknown body fields: a typo must not widen a filter."""

    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": RAISE}

    def _raw_load_json(self, req):
        try:
            return super()._raw_load_json(req)
        except json.JSONDecodeError:
            raise
        except (RecursionError, ValueError) as error:
            # Nested too deep for the parser, or a number over Python's 4300 digits: a body we
            # cannot read is the client's 400, not our 500.
            self._handle_invalid_json_error(error, req)

    def load_json(self, req, schema):
        # A NUL or a lone surrogate would reach PostgreSQL and fail there as a 500; a field that
        # never reaches it (`never_stored`, e.g. a reset token: only its hash is) judges it itself.
        data = super().load_json(req, schema)
        if data is not missing and (paths := unstorable_paths(data)):
            paths = [path for path in paths if not getattr(schema.fields.get(path), "never_stored", False)]
            if paths:
                abort(422, messages={"json": {path: [UNSTORABLE_MESSAGE] for path in paths}})
        return data

    def load_querystring(self, req, schema):
        if paths := [name for name, values in req.args.lists() if unstorable_paths(values)]:
            abort(422, messages={"query": {name: [UNSTORABLE_MESSAGE] for name in paths}})
        return super().load_querystring(req, schema)

    def load_headers(self, req, schema):
        names = [field.data_key or name for name, field in schema.fields.items()]
        if paths := [name for name in names if unstorable_paths(req.headers.getlist(name))]:
            abort(422, messages={"headers": {name: [UNSTORABLE_MESSAGE] for name in paths}})
        return super().load_headers(req, schema)


def schema_name(schema) -> str:
    """Component name of a schema: `TaskSchema` is "Task", `TaskSchema(partial=True)` "TaskPatch"."""
    name = resolve_schema_cls(schema).__name__.removesuffix("Schema")
    return f"{name}Patch" if isinstance(schema, Schema) and schema.partial else name


BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
ROUTE_NEEDS = "route_needs"


@dataclass(frozen=True, slots=True)
class RouteNeeds:
    """What the request hooks need to know of one documented operation."""

    takes_query: bool  # it declares query parameters
    needs_token: bool  # the spec's global bearer security applies (no `security=[]`)


def route_needs(app: Flask, spec: dict) -> dict[tuple[str, str], RouteNeeds]:
    """(endpoint, HTTP method) -> RouteNeeds of every operation in the OpenAPI `spec` dict.

    Computed once at start-up from the same document clients read, so the hooks do no
    look-up per request. Routes off the API (/docs, /openapi.json) and methods the document
    does not list (HEAD, OPTIONS) are absent: the hooks leave them alone."""
    needs = {}
    for rule in app.url_map.iter_rules():
        operations = spec["paths"].get(FlaskPlugin.flaskpath2openapi(rule.rule), {})
        for method in rule.methods:
            if (operation := operations.get(method.lower())) is not None:
                parameters = operation.get("parameters", [])
                needs[rule.endpoint, method] = RouteNeeds(
                    takes_query=any(parameter.get("in") == "query" for parameter in parameters),
                    needs_token=operation.get("security") != [],
                )
    return needs


def init_request_checks(app: Flask, api: flask_smorest.Api) -> None:
    """Register the two hooks below, with what they need of each route (call after the
    blueprints are registered)."""
    app.extensions[ROUTE_NEEDS] = route_needs(app, api.spec.to_dict())
    app.before_request(reject_non_json_body)
    app.before_request(reject_unexpected_query)


def _route() -> RouteNeeds | None:
    return current_app.extensions[ROUTE_NEEDS].get((request.endpoint, request.method))


def reject_unexpected_query():
    """Before a request: a query string on a documented route that takes none is a 422.

    Routes with a query schema reject unknown parameters through StrictParser; this covers
    the others, so that `GET /tags?sort=name` does not quietly ignore what the client meant.
    A bad token on a route that needs one is left to the view's 401, which comes first.
    """
    if not request.args:
        return None
    route = _route()
    if route is None or route.takes_query or (route.needs_token and not _token_is_valid()):
        return None
    errors = {name: ["Unknown field."] for name in request.args}
    return problem(422, "This route takes no query parameters.", errors=errors)


def reject_non_json_body():
    """Before a request: a body that is not JSON is a 415, but only once the route exists
    (else 404/405) and the token is good (else 401: the token is checked first)."""
    if request.method not in BODY_METHODS or not _has_body() or request.is_json:
        return None
    if request.routing_exception is not None:
        return None
    route = _route()
    if route is not None and route.needs_token and not _token_is_valid():
        return None
    return problem(415, "Send the request body as application/json.")


def _token_is_valid() -> bool:
    from app.tokens import token_is_valid  # here: app.tokens needs app.extensions, which needs this module

    return token_is_valid()


def _has_body() -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "")


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictParser()

    def arguments(self, schema, *args, **kwargs):
        # One instance per route, made here: given a class, webargs would instantiate it (and
        # deep-copy its fields) on every request.
        return super().arguments(resolve_schema_instance(schema), *args, **kwargs)

    def problem_response(self, status: int, description: str):
        """Document an error answer of a route: a problem+json body with `description`."""
        return self.alt_response(
            status, schema=ProblemSchema, description=description, content_type=PROBLEM_MIMETYPE
        )


class UnauthorizedPlugin(BasePlugin):
    """apispec plugin: every operation that needs a bearer token (the spec's global `security`,
    unless it opts out with `@blp.doc(security=[])`) documents the 401 it can answer."""

    def operation_helper(self, path=None, operations=None, **kwargs) -> None:
        for operation in (operations or {}).values():
            if not isinstance(operation, dict) or operation.get("security") == []:
                continue
            responses = operation.setdefault("responses", {})
            # Status keys are still ints or strings here (apispec makes them strings later).
            if 401 not in responses and "401" not in responses:
                # A component name: apispec turns it into a $ref and emits the lazy component.
                responses["401"] = "UNAUTHORIZED"


class Api(flask_smorest.Api):
    """flask-smorest's Api, answering every HTTP error as problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error: HTTPException):
        data = getattr(error, "data", None) or {}
        headers = dict(data.get("headers") or {})
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            headers["Allow"] = ", ".join(sorted(error.valid_methods))
        status = error.code or 500
        if status >= 500:
            return problem(status, "The server could not complete the request.", headers=headers)
        errors = validation_errors(data) if ("messages" in data or "errors" in data) else None
        detail = data.get("message") or default_detail(status, errors, error)
        return problem(status, detail, errors=errors, headers=headers)

    def _register_responses(self):
        # flask-smorest documents its error responses as application/json; ours are
        # problem+json, and a generated client must expect what the server sends.
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_MIMETYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_MIMETYPE)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


def json_response(body: str) -> Response:
    """An answer whose JSON was serialised already (built by PostgreSQL). flask-smorest's
    `@blp.response` passes a returned Response through untouched (status 200, or the one the
    view's tuple gives) and still documents the route's schema."""
    return current_app.response_class(f"{body}\n", mimetype="application/json")

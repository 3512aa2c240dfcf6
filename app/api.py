"""flask-smorest's Api and Blueprint, adapted to the contract's errors and strict query strings."""

import http

import flask_smorest
from apispec.ext.marshmallow.common import resolve_schema_cls
from flask import current_app, request
from flask_jwt_extended import verify_jwt_in_request
from flask_jwt_extended.exceptions import JWTExtendedException
from flask_smorest.utils import prepare_response
from jwt import PyJWTError
from marshmallow import RAISE, Schema
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from app.errors import PROBLEM_MIMETYPE, ProblemSchema, default_detail, problem, validation_errors


class StrictParser(FlaskParser):
    """Unknown query parameters are a 422, like unknown body fields: a typo must not widen a filter."""

    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": RAISE}


def schema_name(schema) -> str:
    """Component name of a schema: `TaskSchema` is "Task", `TaskSchema(partial=True)` "TaskPatch"."""
    name = resolve_schema_cls(schema).__name__.removesuffix("Schema")
    return f"{name}Patch" if isinstance(schema, Schema) and schema.partial else name


BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _route_doc() -> dict | None:
    """The OpenAPI doc of the matched view method; None off the API (/docs, /openapi.json, no route)."""
    view = current_app.view_functions.get(request.endpoint)
    handler = getattr(getattr(view, "view_class", None), request.method.lower(), view)
    return getattr(handler, "_apidoc", None)


def _token_rejected(apidoc: dict) -> bool:
    """Whether the route needs a token and this one is bad: then the view answers 401 first."""
    return apidoc.get("manual_doc", {}).get("security") != [] and not _valid_token()


def reject_unexpected_query():
    """Before a request: a query string on a documented route that takes none is a 422.

    Routes with a query schema reject unknown parameters through StrictParser; this covers
    the others, so that `GET /tags?sort=name` does not quietly ignore what the client meant.
    """
    if not request.args:
        return None
    apidoc = _route_doc()
    if apidoc is None:
        return None
    parameters = apidoc.get("arguments", {}).get("parameters", [])
    if any(parameter["in"] == "query" for parameter in parameters):
        return None
    if _token_rejected(apidoc):
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
    apidoc = _route_doc()
    if apidoc is not None and _token_rejected(apidoc):
        return None
    return problem(415, "Send the request body as application/json.")


def _has_body() -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "")


def _valid_token() -> bool:
    try:
        verify_jwt_in_request()
    except (JWTExtendedException, PyJWTError):
        return False
    return True


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictParser()

    def problem_response(self, status: int, description: str):
        """Document an error answer of a route: a problem+json body with `description`."""
        return self.alt_response(
            status, schema=ProblemSchema, description=description, content_type=PROBLEM_MIMETYPE
        )


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

    def register_blueprint(self, blp, **options):
        super().register_blueprint(blp, **options)
        # Every route needs a bearer token (the spec's global `security`) unless it opts out
        # with `@blp.doc(security=[])`; document the 401 those routes can answer.
        for operations in self.spec._paths.values():
            for operation in operations.values():
                if isinstance(operation, dict) and operation.get("security") != []:
                    # get_ref also emits the lazily registered component the $ref points at.
                    operation.setdefault("responses", {}).setdefault(
                        "401", self.spec.components.get_ref("response", "UNAUTHORIZED")
                    )

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

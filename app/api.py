"""flask-smorest's Api and Blueprint, adapted to the contract's errors and strict query strings."""

import flask_smorest
from marshmallow import RAISE
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from app.errors import ProblemSchema, default_detail, problem, validation_errors


class StrictParser(FlaskParser):
    """Unknown query parameters are a 422, like unknown body fields: a typo must not widen a filter."""

    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": RAISE}


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictParser()


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

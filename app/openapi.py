"""What the OpenAPI document says beyond the schemas: its general description, and links (how
an answer's ids lead to the operations on what it names).

Generated clients and schemathesis's stateful tests follow the links (POST /tasks → GET, PATCH,
DELETE /tasks/{task_id}). `answer_links` returns keyword arguments for `@blp.doc`, which merges
them into the operation's documented answer.
"""

# Rules that hold for every operation, so that no request the schemas admit is refused for a
# reason the document does not name.
DESCRIPTION = """A todo list: tasks, tags, recurring tasks and their instances.

Every error is an RFC 9457 problem (`application/problem+json`); a validation error (422) names
each field in `errors`. Besides what each schema and operation says:

- a bearer token is checked first: a bad one is 401 whatever else is wrong;
- a body must be a JSON object sent as `application/json` (else 400, 415 or 422) of at most
  1 MiB (413); unknown body fields and unknown query parameters are 422;
- strings must not contain NUL characters or unpaired UTF-16 surrogates (422): PostgreSQL's text
  cannot store them;
- an id that is malformed, out of range or another user's is 404;
- `register`, `login` and `password-reset` are rate limited (429 with `Retry-After`);
- a database that cannot be reached right now is 503 with `Retry-After`.
"""


def _operation_ref(path: str, method: str) -> str:
    """A JSON pointer to an operation of this document, e.g. "#/paths/~1api~1v1~1tags~1{tag_id}/get"."""
    return f"#/paths/{path.replace('~', '~0').replace('/', '~1')}/{method}"


def answer_links(
    status: int, name: str, path: str, parameters: dict[str, str], methods=("get", "patch", "delete")
) -> dict:
    """`@blp.doc` arguments: the `status` answer links to `methods` of `path` (links named like
    "GetTask" for name "Task"), each parameter of the path filled by a runtime expression such
    as "$response.body#/id"."""
    links = {
        f"{method.capitalize()}{name}": {
            "operationRef": _operation_ref(path, method),
            "parameters": parameters,
        }
        for method in methods
    }
    return {"responses": {status: {"links": links}}}

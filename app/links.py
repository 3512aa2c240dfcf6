"""OpenAPI links: how an answer's ids lead to the operations on what it names.

Generated clients and schemathesis's stateful tests follow them (POST /tasks → GET, PATCH,
DELETE /tasks/{task_id}). Each function returns keyword arguments for `@blp.doc`, which merges
them into the operation's documented answer.
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

"""Errors gunicorn answers before the app sees the request are problem+json too (API.md, Health and
documentation): a request line or header field too long, too many header fields, a request it
cannot parse. Through a real gunicorn, with both worker kinds gunicorn.conf.py picks.
"""

import json
import re
import socket

import pytest
import requests
from procs import app_env, migrated_database, running_gunicorn

from pg_cluster import running_cluster

pytestmark = pytest.mark.slow

PROBLEM_KEYS = {"type", "title", "status", "detail"}


@pytest.fixture(scope="module")
def database():
    with running_cluster() as cluster:
        yield migrated_database(cluster, "todo_server_errors")


@pytest.fixture(scope="module", params=[1, 2], ids=["sync worker", "gthread worker"])
def server(request, database, tmp_path_factory):
    log = tmp_path_factory.mktemp("server-errors") / "gunicorn.log"
    with running_gunicorn(app_env(database), log, workers=1, threads=request.param) as server:
        yield server


def exchange(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the answer to the end; (status, headers by lower-case name, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split(" ")[1]), headers, body


def assert_problem_answer(answer, status: int) -> dict:
    code, headers, body = answer
    assert code == status, body
    assert headers["content-type"] == "application/problem+json"
    assert int(headers["content-length"]) == len(body)
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])
    problem = json.loads(body)
    assert set(problem) == PROBLEM_KEYS
    assert problem["status"] == status
    return problem


def test_a_request_line_over_4_kib_is_a_414_problem(server):
    line = b"GET /api/v1/tasks?q=" + b"a" * 5000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n"
    problem = assert_problem_answer(exchange(server.port, line), 414)
    assert problem["title"] == "Request URI Too Long"
    assert "4094 bytes" in problem["detail"]


def test_a_header_over_8_kib_is_a_431_problem(server):
    request = b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n"
    problem = assert_problem_answer(exchange(server.port, request), 431)
    assert problem["title"] == "Request Header Fields Too Large"


def test_too_many_header_fields_is_a_431_problem(server):
    fields = b"".join(b"X-Field-%d: x\r\n" % number for number in range(120))
    request = b"GET /health HTTP/1.1\r\nHost: localhost\r\n" + fields + b"\r\n"
    assert_problem_answer(exchange(server.port, request), 431)


def test_an_unparsable_request_is_a_400_problem(server):
    assert_problem_answer(exchange(server.port, b"NOT A REQUEST\r\n\r\n"), 400)


def test_the_answer_does_not_echo_the_request(server):
    line = b"GET /<script>" + b"a" * 5000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n"
    _, _, body = exchange(server.port, line)
    assert b"<script>" not in body and b"aaaa" not in body


def test_the_worker_keeps_serving_after_them(server):
    exchange(server.port, b"NOT A REQUEST\r\n\r\n")
    assert requests.get(server.url("/health"), timeout=10).status_code == 200

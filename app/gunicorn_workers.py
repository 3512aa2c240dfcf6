"""gunicorn workers whose own error answers are problem+json, like every other error of the API.

gunicorn answers some requests before the app sees them: a request line over
`limit_request_line` (414), a header field over `limit_request_field_size` or more than
`limit_request_fields` of them (431), a request it cannot parse (400). Its Worker.handle_error
writes those as text/html. These workers keep gunicorn's decision (the status, its log line, its
access log entry) and replace only the answer: the same problem document as `app.errors.problem`,
with a new X-Request-ID (the request's own was never read) and the app's JSON security headers.
"""

import json
import uuid

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

from app.errors import PROBLEM_MIMETYPE, problem_body
from app.request_log import JSON_CSP, REQUEST_ID_HEADER


class _Answer:
    """Stands in for the client socket while gunicorn writes its HTML answer, and keeps it.

    Everything but writing goes to the real socket (the access log reads its address)."""

    def __init__(self, sock) -> None:
        self._sock = sock
        self.written = b""

    def sendall(self, data: bytes) -> None:
        self.written += data

    def send(self, data: bytes) -> int:
        self.written += data
        return len(data)

    def gettimeout(self):
        return None

    def setblocking(self, flag) -> None:
        pass

    def __getattr__(self, name):
        return getattr(self._sock, name)

    def status(self) -> int | None:
        """The status of the answer gunicorn wrote ("HTTP/1.1 414 URI Too Long"), if any."""
        parts = self.written.split(b"\r\n", 1)[0].split(b" ", 2)
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


class ProblemErrorsMixin:
    """Worker.handle_error, answering application/problem+json instead of text/html."""

    def handle_error(self, req, client, addr, exc):
        answer = _Answer(client)
        super().handle_error(req, answer, addr, exc)
        status = answer.status()
        if status is None:
            return  # gunicorn wrote nothing (or failed to): neither do we
        try:
            util.write_nonblock(client, self.problem_answer(status))
        except Exception:
            self.log.debug("Failed to send error message.")

    def problem_answer(self, status: int) -> bytes:
        """The whole HTTP answer, status line to body, for an error gunicorn itself answers."""
        body = json.dumps(problem_body(status, self.detail(status))).encode()
        title = problem_body(status)["title"]
        head = (
            f"HTTP/1.1 {status} {title}\r\n"
            "Connection: close\r\n"
            f"Content-Type: {PROBLEM_MIMETYPE}\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"{REQUEST_ID_HEADER}: {uuid.uuid4().hex}\r\n"
            "X-Content-Type-Options: nosniff\r\n"
            f"Content-Security-Policy: {JSON_CSP}\r\n"
            "\r\n"
        )
        return head.encode("latin-1") + body

    def detail(self, status: int) -> str | None:
        """What the client should change; gunicorn's own message may quote the request, so not that."""
        cfg = self.cfg
        return {
            400: "The server could not parse the request.",
            414: f"The request line is longer than the server accepts ({cfg.limit_request_line} bytes).",
            431: (
                "The request's header fields are too large or too many (at most "
                f"{cfg.limit_request_fields} fields of {cfg.limit_request_field_size} bytes each)."
            ),
            500: "The server could not complete the request.",
        }.get(status)


class ProblemSyncWorker(ProblemErrorsMixin, SyncWorker):
    """gunicorn's sync worker (GUNICORN_THREADS=1) with problem+json server errors."""


class ProblemThreadWorker(ProblemErrorsMixin, ThreadWorker):
    """gunicorn's gthread worker (GUNICORN_THREADS>1) with problem+json server errors."""

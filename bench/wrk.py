"""Drive one scenario with wrk: a generated Lua script sets method, body and token, cycles
through the scenario's paths, and reports its summary as one JSON line."""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

LUA = """
local paths = {%(paths)s}
local i = 0
wrk.method = "%(method)s"
%(headers)s
request = function()
  i = i + 1
  return wrk.format(nil, paths[(i %% #paths) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%%d,"duration_us":%%d,"p50_us":%%d,"p99_us":%%d,' ..
    '"status_errors":%%d,"socket_errors":%%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def _lua_string(value: str) -> str:
    return f"[==[{value}]==]"


def write_script(path: Path, method: str, paths: list[str], body: str | None, token: str | None) -> Path:
    headers = []
    if body is not None:
        headers.append('wrk.headers["Content-Type"] = "application/json"')
        headers.append(f"wrk.body = {_lua_string(body)}")
    if token:
        headers.append(f'wrk.headers["Authorization"] = {_lua_string("Bearer " + token)}')
    path.write_text(
        LUA
        % {
            "paths": ", ".join(_lua_string(p) for p in paths),
            "method": method,
            "headers": "\n".join(headers),
        }
    )
    return path


def require_wrk() -> str:
    """The wrk binary, or exit with what to install."""
    found = shutil.which("wrk")
    if not found:
        sys.exit(
            "error: `wrk` is not installed; `make bench` drives load with it.\n"
            "       Debian/Ubuntu: sudo apt-get install -y wrk   macOS: brew install wrk"
        )
    return found


def run(url: str, script: Path, duration: int, connections: int, threads: int, label: str = "") -> dict:
    """Run wrk for `duration` seconds; return requests/s, p50/p99 in ms and error counts."""
    command = [
        require_wrk(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        url,
    ]
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    while process.poll() is None:
        elapsed = time.monotonic() - started
        _progress(f"{label} {min(elapsed, duration):4.0f}/{duration} s")
        time.sleep(0.5)
    _progress("")
    output = process.stdout.read()
    for line in output.splitlines():
        if line.startswith("BENCH_JSON "):
            stats = json.loads(line.removeprefix("BENCH_JSON "))
            seconds = stats["duration_us"] / 1e6
            return {
                "requests": stats["requests"],
                "rps": stats["requests"] / seconds if seconds else 0.0,
                "p50_ms": stats["p50_us"] / 1000,
                "p99_ms": stats["p99_us"] / 1000,
                "status_errors": stats["status_errors"],
                "socket_errors": stats["socket_errors"],
            }
    raise RuntimeError(f"wrk gave no summary:\n{output}")


def _progress(text: str) -> None:
    if sys.stdout.isatty():
        print(f"\r\033[K{text}", end="", flush=True)

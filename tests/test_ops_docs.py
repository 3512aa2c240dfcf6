"""/docs: Swagger UI served by the app itself, working with no internet."""

import os
import re
import shutil
import subprocess
import threading

import pytest
from werkzeug.serving import make_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def test_docs_page_loads_only_its_own_assets_and_the_openapi_document(client):
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "/docs/static/swagger-ui-bundle.js" in page
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    texts = [page]
    for asset in assets:
        answer = client.get(asset)
        assert answer.status_code == 200, asset
        if asset.endswith("initializer.js"):
            texts.append(answer.get_data(as_text=True))
    assert '"/openapi.json"' in texts[-1]
    for text in texts:
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", text), "an outside URL"


@pytest.mark.parametrize(
    ("asset", "mimetype"),
    [
        ("swagger-ui-bundle.js", "text/javascript"),
        ("swagger-ui.css", "text/css"),
        ("favicon-32x32.png", "image/png"),
    ],
)
def test_docs_assets_are_served_with_their_types(client, asset, mimetype):
    response = client.get(f"/docs/static/{asset}")
    assert response.status_code == 200
    assert response.mimetype == mimetype
    assert response.content_length > 0


@pytest.mark.parametrize("path", ["index.html", "../__init__.py", "%2e%2e/__init__.py", "nope.js"])
def test_nothing_else_in_the_package_is_served(client, path):
    assert client.get(f"/docs/static/{path}").status_code == 404


@pytest.fixture
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


@pytest.mark.slow
@pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
    reason="chromium is not installed (apt-get install chromium); CI always runs this",
)
def test_headless_chromium_renders_the_operations(live_server, tmp_path):
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            # Let the page's scripts fetch /openapi.json and render before the DOM is dumped.
            "--virtual-time-budget=15000",
            "--dump-dom",
            f"{live_server}/docs",
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    dom = result.stdout
    assert "Todo API" in dom
    assert "Log in" in dom
    assert "/api/v1/auth/register" in dom
    assert "Service and database status" in dom

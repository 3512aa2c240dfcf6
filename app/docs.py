"""Blueprint "docs": Swagger UI for /openapi.json, with its assets served from the pinned
swagger-ui-bundle package, so the documentation works with no internet (no CDN).
"""

import json

from flask import Blueprint, Response, abort, send_from_directory, url_for
from swagger_ui_bundle import swagger_ui_path

blp = Blueprint("docs", __name__, url_prefix="/docs")

ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "favicon-16x16.png"})
ONE_DAY = 24 * 3600

# The browser itself is told to load nothing from elsewhere; Swagger UI sets inline styles
# and data: images, and fetches /openapi.json from this origin.
PAGE_CSP = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; frame-ancestors 'none'"
)

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Todo API documentation</title>
  <link rel="stylesheet" href="{css}">
  <link rel="icon" type="image/png" href="{icon}" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{bundle}"></script>
  <script src="{init}"></script>
</body>
</html>
"""

# A script file rather than an inline script, so the page's CSP needs no 'unsafe-inline'.
INITIALIZER = """window.ui = SwaggerUIBundle({{
  url: {spec},
  dom_id: "#swagger-ui",
  deepLinking: true,
  // The default validator badge would send the document to an outside server.
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
}});
"""


@blp.get("")
def page():
    """Interactive documentation of /openapi.json"""
    html = PAGE.format(
        css=url_for("docs.asset", filename="swagger-ui.css"),
        icon=url_for("docs.asset", filename="favicon-32x32.png"),
        bundle=url_for("docs.asset", filename="swagger-ui-bundle.js"),
        init=url_for("docs.initializer"),
    )
    return Response(html, mimetype="text/html", headers={"Content-Security-Policy": PAGE_CSP})


@blp.get("/swagger-initializer.js")
def initializer():
    """Start Swagger UI on this app's document"""
    script = INITIALIZER.format(spec=json.dumps(url_for("api-docs.openapi_json")))
    return Response(script, mimetype="text/javascript")


@blp.get("/static/<path:filename>")
def asset(filename: str):
    """One of Swagger UI's files; nothing else in the package directory is served."""
    if filename not in ASSETS:
        abort(404)
    return send_from_directory(str(swagger_ui_path), filename, max_age=ONE_DAY)

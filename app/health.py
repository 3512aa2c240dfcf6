"""Blueprint "health": is the service up, and can it reach its database?"""

import json
import logging

from flask.views import MethodView
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.api import Blueprint, json_response
from app.schemas.auth import HealthSchema
from app.transactions import read_rows

blp = Blueprint("health", __name__, description="Service status")
log = logging.getLogger(__name__)

# The two answers, serialised once. HealthSchema describes them in /openapi.json; the tests
# check both bodies, and every answer of every test against the document (tests/openapi_check.py).
UP = {"status": "ok", "database": "ok"}
DOWN = {"status": "unavailable", "database": "unreachable"}
UP_JSON, DOWN_JSON = json.dumps(UP), json.dumps(DOWN)


@blp.route("/health")
class Health(MethodView):
    @blp.doc(security=[])
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="The database cannot be reached")
    def get(self):
        """Service and database status (a status document, not a problem)

        One `SELECT 1` on a pooled connection, after the pool's own pre-ping: 200 when both
        answer, 503 (the same document shape) when the database cannot be reached or no
        connection is free within DB_POOL_TIMEOUT seconds."""
        try:
            read_rows("SELECT 1", {})
        except (DBAPIError, PoolTimeoutError) as exc:
            log.warning("health check: database unreachable (%s)", exc.__class__.__name__)
            return json_response(DOWN_JSON), 503
        return json_response(UP_JSON)

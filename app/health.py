"""Blueprint "health": is the service up, and can it reach its database?"""

import logging

from flask.views import MethodView
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.api import Blueprint
from app.extensions import db
from app.schemas.auth import HealthSchema

blp = Blueprint("health", __name__, description="Service status")
log = logging.getLogger(__name__)


@blp.route("/health")
class Health(MethodView):
    @blp.doc(security=[])
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="The database cannot be reached")
    def get(self):
        """Service and database status (a status document, not a problem)"""
        try:
            db.session.execute(text("SELECT 1"))
        except (DBAPIError, PoolTimeoutError) as exc:
            log.warning("health check: database unreachable (%s)", exc.__class__.__name__)
            db.session.rollback()
            # The 503 is a status document too, so it goes through the same schema.
            return {"status": "unavailable", "database": "unreachable"}, 503
        return {"status": "ok", "database": "ok"}

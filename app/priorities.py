"""Blueprint "priorities": the fixed priority levels a task may have."""

from flask.views import MethodView
from sqlalchemy import select

from app.api import Blueprint
from app.extensions import db
from app.models import Priority
from app.schemas.tasks import PriorityListSchema
from app.tokens import token_required

blp = Blueprint("priorities", __name__, url_prefix="/api/v1/priorities", description="Priority levels")


@blp.route("")
class Priorities(MethodView):
    decorators = [token_required()]

    @blp.response(200, PriorityListSchema)
    def get(self):
        """List the priority levels, lowest first"""
        return {"items": db.session.scalars(select(Priority).order_by(Priority.level))}

"""Blueprint "tags": the tag collection and items (built in the tasks issue)."""

from flask_smorest import Blueprint

blp = Blueprint("tags", __name__, url_prefix="/api/v1/tags", description="Tags")

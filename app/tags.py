"""Blueprint "tags": the tag collection and items (built in the tasks issue)."""

from app.api import Blueprint

blp = Blueprint("tags", __name__, url_prefix="/api/v1/tags", description="Tags")

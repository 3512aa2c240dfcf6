"""Blueprint "priorities": the fixed priority levels (built in the tasks issue)."""

from app.api import Blueprint

blp = Blueprint("priorities", __name__, url_prefix="/api/v1/priorities", description="Priority levels")

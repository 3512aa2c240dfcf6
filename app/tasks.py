"""Blueprint "tasks": the task collection and items (built in the tasks issue)."""

from app.api import Blueprint

blp = Blueprint("tasks", __name__, url_prefix="/api/v1/tasks", description="Tasks")

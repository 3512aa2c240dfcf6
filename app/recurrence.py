"""Blueprint "recurring_tasks": recurring definitions and their instances (the recurring issue)."""

from app.api import Blueprint

blp = Blueprint(
    "recurring_tasks", __name__, url_prefix="/api/v1/recurring-tasks", description="Recurring tasks"
)

"""Reads of a student's learning analytics."""

from datetime import datetime

from django.db.models import QuerySet

from .models import RevisionQueueItem


def due_revisions(*, user_id: int, due_by: datetime) -> QuerySet[RevisionQueueItem]:
    # Served by analytics_rq_user_due_idx.
    return (
        RevisionQueueItem.objects.filter(user_id=user_id, status=RevisionQueueItem.Status.ACTIVE, due_at__lte=due_by)
        .select_related("question")
        .only("id", "question_id", "due_at", "reviews", "question__stem", "question__theme_id", "question__block_id")
        .order_by("due_at")
    )

"""Heavy maintenance of learning analytics: recompute from the graded sessions, purge old events.

The graded sessions (answers and drawn questions) are the source of truth;
mastery and the revision queue are derived from them. A rebuild covers only
sessions already applied (no PendingAnalytics row): pending ones are added by
drain_recalc afterwards, exactly once. Each batch of users is rebuilt under the
maintenance lock taken exclusively, so no session is applied half-way through
(applying takes it shared and, finding it taken, leaves the session pending).
"""

from collections.abc import Callable, Iterator
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet

from sessions_app.models import ExamSession, SessionAnswer, SessionQuestion

from .models import AttemptEvent, PendingAnalytics, RevisionQueueItem, UserThemeMastery
from .services import MAINTENANCE_LOCK, _attempts, _schedule_revisions

GRADED = [ExamSession.Status.SUBMITTED, ExamSession.Status.EXPIRED]
Progress = Callable[[int], object] | None


def applied_sessions() -> QuerySet[ExamSession]:
    """Graded sessions whose analytics have been applied."""
    pending = PendingAnalytics.objects.filter(session_id=OuterRef("pk"))
    return ExamSession.objects.filter(status__in=GRADED).exclude(Exists(pending))


def users_with_sessions(user_ids: list[int] | None = None) -> list[int]:
    sessions = ExamSession.objects.filter(status__in=GRADED)
    if user_ids is not None:
        sessions = sessions.filter(user_id__in=user_ids)
    return sorted(set(sessions.values_list("user_id", flat=True)))


def _batches(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _take_maintenance_lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [MAINTENANCE_LOCK])


def recalculate_mastery(*, user_ids: list[int], batch_size: int = 200, progress: Progress = None) -> int:
    """Recompute every given user's theme mastery from their applied sessions; returns rows written."""
    written = 0
    for batch in _batches(user_ids, batch_size):
        with transaction.atomic():
            _take_maintenance_lock()
            correct = SessionAnswer.objects.filter(
                session_id=OuterRef("session_id"), question_id=OuterRef("question_id"), is_correct=True
            )
            per_theme = (
                SessionQuestion.objects.filter(session__in=applied_sessions().filter(user_id__in=batch))
                .values("session__user_id", "question__theme_id")
                .annotate(
                    attempts=Count("id"),
                    correct=Count("id", filter=Q(Exists(correct))),
                    last=Max("session__submitted_at"),
                )
                .order_by()
            )
            rows = [
                UserThemeMastery(
                    user_id=row["session__user_id"],
                    theme_id=row["question__theme_id"],
                    attempts=row["attempts"],
                    correct=row["correct"],
                    mastery=(row["correct"] + 1) / (row["attempts"] + 2),
                    updated_at=row["last"],
                )
                for row in per_theme
            ]
            UserThemeMastery.objects.filter(user_id__in=batch).delete()
            UserThemeMastery.objects.bulk_create(rows)
            written += len(rows)
        if progress:
            progress(len(batch))
    return written


def rebuild_revision_queue(*, user_ids: list[int], progress: Progress = None) -> int:
    """Replay every given user's applied sessions, in grading order, through the scheduler."""
    sessions_replayed = 0
    for user_id in user_ids:
        with transaction.atomic():
            _take_maintenance_lock()
            RevisionQueueItem.objects.filter(user_id=user_id).delete()
            for session in applied_sessions().filter(user_id=user_id).order_by("submitted_at", "id"):
                _schedule_revisions(session, _attempts(session))
                sessions_replayed += 1
        if progress:
            progress(1)
    return sessions_replayed


def old_events(*, before: datetime) -> QuerySet[AttemptEvent]:
    # Served by analytics_ae_ts_idx.
    return AttemptEvent.objects.filter(event_ts__lt=before)


def purge_events(*, before: datetime, batch_size: int = 5000, progress: Progress = None) -> int:
    """Delete attempt events older than `before` in short transactions; mastery and the queue stay."""
    deleted = 0
    while True:
        ids = list(old_events(before=before).order_by("id").values_list("id", flat=True)[:batch_size])
        if not ids:
            return deleted
        count, _ = AttemptEvent.objects.filter(id__in=ids).delete()
        deleted += count
        if progress:
            progress(count)

"""Reads of learning analytics: a student's own, and the staff cohort view."""

from datetime import datetime

from django.db.models import Count, F, FloatField, Q, QuerySet, Window
from django.db.models.functions import Cast, RowNumber

from sessions_app.models import ExamSession

from .models import AttemptEvent, RevisionQueueItem, UserThemeMastery


def due_revisions(*, user_id: int, due_by: datetime) -> QuerySet[RevisionQueueItem]:
    # Served by analytics_rq_user_due_idx.
    return (
        RevisionQueueItem.objects.filter(user_id=user_id, status=RevisionQueueItem.Status.ACTIVE, due_at__lte=due_by)
        .select_related("question")
        .only("id", "question_id", "due_at", "reviews", "question__stem", "question__theme_id", "question__block_id")
        .order_by("due_at")
    )


def theme_mastery(*, user_id: int) -> QuerySet[UserThemeMastery]:
    # Served by analytics_utm_user_theme_uniq: one row per theme the student has met.
    return (
        UserThemeMastery.objects.filter(user_id=user_id)
        .select_related("theme__block")
        .order_by("theme__block__name", "theme__name")
    )


def graded_history(*, user_id: int) -> QuerySet[ExamSession]:
    # Served by sessions_es_user_created_idx (WHERE user_id = ? ORDER BY created_at).
    return ExamSession.objects.filter(
        user_id=user_id, status__in=[ExamSession.Status.SUBMITTED, ExamSession.Status.EXPIRED]
    ).only("id", "mode", "status", "question_count", "created_at", "submitted_at", "score")


def _attempts(*, since: datetime | None, block_id: int | None) -> QuerySet[AttemptEvent]:
    """One event per question a student met in a graded session (answered or skipped)."""
    events = AttemptEvent.objects.filter(
        event_type__in=[AttemptEvent.Type.ANSWERED, AttemptEvent.Type.SKIPPED], question__isnull=False
    )
    if since is not None:
        events = events.filter(event_ts__gte=since)  # analytics_ae_ts_idx
    if block_id is not None:
        events = events.filter(question__block_id=block_id)
    return events


def _correct_rate():
    return Cast("correct", FloatField()) / Cast("attempts", FloatField())


def cohort_themes(*, since: datetime | None = None, block_id: int | None = None) -> list[dict]:
    """Per theme: attempts, correct, distinct students. Scans every event in the window: heavy."""
    return list(
        _attempts(since=since, block_id=block_id)
        .values(
            theme=F("question__theme_id"),
            theme_name=F("question__theme__name"),
            block=F("question__block_id"),
            block_name=F("question__block__name"),
        )
        .annotate(
            attempts=Count("id"),
            correct=Count("id", filter=Q(payload__correct=True)),
            students=Count("user_id", distinct=True),
        )
        .order_by("block_name", "theme_name")
    )


def hardest_questions(
    *, per_theme: int, min_attempts: int, since: datetime | None = None, block_id: int | None = None
) -> list[dict]:
    """Each theme's `per_theme` questions with the lowest correct rate, in one query."""
    per_question = (
        _attempts(since=since, block_id=block_id)
        .values("question_id", theme=F("question__theme_id"), stem=F("question__stem"))
        .annotate(attempts=Count("id"), correct=Count("id", filter=Q(payload__correct=True)))
        .filter(attempts__gte=min_attempts)
        .annotate(correct_rate=_correct_rate())
    )
    ranked = per_question.annotate(
        rank=Window(
            RowNumber(),
            partition_by=F("question__theme_id"),
            order_by=[F("correct_rate").asc(), F("attempts").desc(), F("question_id").asc()],
        )
    )
    return list(ranked.filter(rank__lte=per_theme).order_by("theme", "rank"))


def cohort_overview(
    *, since: datetime | None, block_id: int | None, hardest: int, min_attempts: int
) -> list[dict]:
    """Two queries whatever the number of themes."""
    themes = cohort_themes(since=since, block_id=block_id)
    hard: dict[int, list[dict]] = {}
    for row in hardest_questions(per_theme=hardest, min_attempts=min_attempts, since=since, block_id=block_id):
        hard.setdefault(row["theme"], []).append(row)
    for theme in themes:
        theme["correct_rate"] = theme["correct"] / theme["attempts"] if theme["attempts"] else 0.0
        theme["hardest"] = hard.get(theme["theme"], [])
    return themes

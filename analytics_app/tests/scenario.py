"""A student's sessions replayed on a fixed clock, so two students can live the same history."""

from datetime import datetime, timedelta

from analytics_app.models import RevisionQueueItem, UserThemeMastery
from sessions_app import services

START = datetime.fromisoformat("2026-03-02T09:00:00+00:00")


def sit_session(*, user, theme_ids: list[int], count: int, day: int, pattern: int, run_on_commit) -> int:
    """Draw every question of the themes, answer them in id order at a varying pace, submit.

    `pattern` decides which questions are right, wrong, flagged-only or skipped. `run_on_commit` is
    pytest-django's django_capture_on_commit_callbacks: the apply that follows a real commit runs.
    """
    now = START + timedelta(days=day)
    started = services.start_session(user_id=user.pk, mode="tutor", count=count, theme_ids=theme_ids, now=now)
    for index, question in enumerate(sorted(started.questions, key=lambda q: q.pk)):
        now += timedelta(seconds=[10, 35, 75][(index + pattern) % 3])
        kind = (question.pk + pattern) % 5
        if kind == 4:
            continue  # skipped
        if kind == 3:
            services.record_answer(
                user_id=user.pk, session_id=started.session.pk, question_id=question.pk, now=now, flagged=True
            )
            continue
        option = "a" if kind == 2 else question.correct_option
        services.record_answer(
            user_id=user.pk, session_id=started.session.pk, question_id=question.pk, now=now, option=option
        )
    with run_on_commit(execute=True):
        services.submit_session(user_id=user.pk, session_id=started.session.pk, now=now + timedelta(seconds=5))
    return started.session.pk


def analytics_of(user) -> dict:
    """Everything a student's analytics hold, comparable across students."""
    mastery = [
        (m.theme_id, m.attempts, m.correct, m.mastery, m.updated_at)
        for m in UserThemeMastery.objects.filter(user=user).order_by("theme_id")
    ]
    queue = [
        (i.question_id, i.due_at, i.status, i.reviews, i.scheduler_state, i.updated_at)
        for i in RevisionQueueItem.objects.filter(user=user).order_by("question_id")
    ]
    return {"mastery": mastery, "queue": queue}

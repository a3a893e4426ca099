"""The server's deadline is the truth: a controlled clock on each side of the grace period."""

import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from analytics_app.models import AttemptEvent, PendingAnalytics
from examplatform.testing import ROOT, client_for, current_test_database_url
from sessions_app import services
from sessions_app.exceptions import DeadlinePassed
from sessions_app.models import ExamSession, IdempotencyKey, SessionAnswer, SessionResult
from sessions_app.tests.factories import QuestionFactory, ThemeFactory, UserFactory

GRACE = timedelta(seconds=30)


def timed_session() -> ExamSession:
    """A 10-minute timed session of 5 questions that started an hour ago."""
    theme = ThemeFactory()
    QuestionFactory.create_batch(5, theme=theme)
    user = UserFactory()
    started_at = timezone.now() - timedelta(hours=1)
    session = services.start_session(
        user_id=user.pk, mode="timed", count=5, theme_ids=[theme.pk], now=started_at, time_limit_seconds=600
    ).session
    assert session.deadline == started_at + timedelta(seconds=600)
    return session


@pytest.fixture
def timed(db, settings, answer_write_path):
    settings.EXAM_DEADLINE_GRACE_SECONDS = 30
    return timed_session()


def answer(session, *, now, option="b", question_index=0):
    question_id = session.session_questions.order_by("position")[question_index].question_id
    return services.record_answer(
        user_id=session.user_id, session_id=session.pk, question_id=question_id, option=option, now=now
    )


@pytest.mark.django_db
def test_an_answer_inside_the_grace_period_is_accepted(timed):
    recorded = answer(timed, now=timed.deadline + GRACE - timedelta(seconds=1))
    assert recorded.option == "b"
    assert services.submit_session(
        user_id=timed.user_id, session_id=timed.pk, now=timed.deadline + GRACE
    ).result.status == "submitted"


@pytest.mark.django_db
def test_an_answer_at_the_last_instant_of_the_grace_period_is_accepted(timed):
    # The one-statement write checks the deadline in SQL, the portable one in Python: same boundary.
    assert answer(timed, now=timed.deadline + GRACE).option == "b"


@pytest.mark.django_db
def test_an_answer_after_the_grace_period_is_refused_and_the_session_graded_with_what_was_saved(timed):
    answer(timed, now=timed.deadline - timedelta(seconds=5))
    with pytest.raises(DeadlinePassed):
        answer(timed, now=timed.deadline + GRACE + timedelta(seconds=1), question_index=1)
    timed.refresh_from_db()
    assert timed.status == "expired"
    result = SessionResult.objects.get(session=timed)
    assert (result.status, result.correct, result.answered) == ("expired", 1, 1)
    assert SessionAnswer.objects.filter(session=timed).count() == 1


@pytest.mark.django_db
def test_a_late_submit_is_refused_with_the_result_and_repeats_the_same(timed):
    late = timed.deadline + GRACE + timedelta(seconds=1)
    with pytest.raises(DeadlinePassed) as first:
        services.submit_session(user_id=timed.user_id, session_id=timed.pk, now=late)
    with pytest.raises(DeadlinePassed) as again:
        services.submit_session(user_id=timed.user_id, session_id=timed.pk, now=late + timedelta(minutes=1))
    assert first.value.extra["result"] == again.value.extra["result"]
    assert first.value.extra["result"]["status"] == "expired"


@pytest.mark.django_db
def test_the_grace_period_is_thirty_seconds_unless_configured(answer_write_path):
    from django.conf import settings

    # The setting as the test settings load it, not overridden: its default is what production runs with.
    assert settings.EXAM_DEADLINE_GRACE_SECONDS == 30
    session = timed_session()
    assert answer(session, now=session.deadline + GRACE).option == "b"
    with pytest.raises(DeadlinePassed):
        answer(session, now=session.deadline + GRACE + timedelta(seconds=1), question_index=1)


@pytest.mark.django_db
def test_the_grace_period_is_configurable(timed, settings):
    settings.EXAM_DEADLINE_GRACE_SECONDS = 0
    with pytest.raises(DeadlinePassed):
        answer(timed, now=timed.deadline + timedelta(seconds=1))


@pytest.mark.django_db
def test_reading_an_overdue_session_closes_it(timed):
    client = client_for(timed.user)
    body = client.get(f"/api/v1/sessions/{timed.pk}/").json()
    assert body["status"] == "expired"
    assert "correct_option" in body["questions"][0]  # closed sessions show the answers
    assert client.get("/api/v1/sessions/").json()["results"][0]["status"] == "expired"
    assert SessionResult.objects.filter(session=timed).count() == 1


@pytest.mark.django_db
def test_tutor_sessions_have_no_deadline(db):
    theme = ThemeFactory()
    QuestionFactory(theme=theme)
    session = services.start_session(
        user_id=UserFactory().pk, mode="tutor", count=1, now=timezone.now(), time_limit_seconds=60
    ).session
    assert session.deadline is None
    services.record_answer(
        user_id=session.user_id, session_id=session.pk, question_id=session.session_questions.get().question_id,
        option="a", now=timezone.now() + timedelta(days=30),
    )


def overdue_sessions(n: int) -> tuple:
    """`n` timed sessions of three questions, each a different student's, overdue by two hours."""
    theme = ThemeFactory()
    QuestionFactory.create_batch(3, theme=theme)
    long_ago = timezone.now() - timedelta(hours=2)
    return theme, [
        services.start_session(
            user_id=UserFactory().pk, mode="timed", count=3, theme_ids=[theme.pk], now=long_ago,
            time_limit_seconds=60,
        ).session
        for _ in range(n)
    ]


@pytest.mark.django_db(transaction=True)
def test_two_copies_of_expire_sessions_grade_each_overdue_session_once(db):
    theme, sessions = overdue_sessions(120)
    fresh = services.start_session(
        user_id=sessions[0].user_id, mode="timed", count=3, theme_ids=[theme.pk], now=timezone.now()
    ).session
    env = {"DATABASE_URL": current_test_database_url()}
    command = [sys.executable, "manage.py", "expire_sessions", "--batch-size", "10"]
    copies = [
        subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [copy.communicate(timeout=120)[0] for copy in copies]
    assert all(copy.returncode == 0 for copy in copies)
    counts = [int(out.split()[1]) for out in outputs]
    assert sum(counts) == 120, outputs
    assert SessionResult.objects.count() == 120
    assert set(ExamSession.objects.exclude(pk=fresh.pk).values_list("status", flat=True)) == {"expired"}
    assert ExamSession.objects.get(pk=fresh.pk).status == "active"
    # One set of attempt events per session: its 3 unanswered questions skipped, and one "expired" (whose
    # NULL question the events' unique constraint can't catch twice).
    per_session = AttemptEvent.objects.values("session").annotate(
        skipped=Count("pk", filter=Q(event_type=AttemptEvent.Type.SKIPPED)),
        expired=Count("pk", filter=Q(event_type="expired", question=None)),
        events=Count("pk"),
    )
    assert len(per_session) == 120
    assert {(row["skipped"], row["expired"], row["events"]) for row in per_session} == {(3, 1, 4)}
    assert not PendingAnalytics.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_expire_sessions_skips_sessions_locked_elsewhere_and_grades_the_others(db):
    _, sessions = overdue_sessions(6)
    held = [sessions[0].pk, sessions[3].pk]
    out = StringIO()
    with psycopg.connect(current_test_database_url()) as holder:
        # Another transaction (an answer, a submit, another copy of the command) has these rows locked.
        holder.execute(f"SELECT id FROM {ExamSession._meta.db_table} WHERE id = ANY(%s) FOR UPDATE", [held])
        with connection.cursor() as cursor:
            # Were the command to wait for the held rows, this fails the test instead of hanging it.
            cursor.execute("SET lock_timeout = '5s'")
            try:
                call_command("expire_sessions", "--batch-size", "2", stdout=out)
            finally:
                cursor.execute("RESET lock_timeout")
        holder.rollback()

    assert "expired 4 overdue sessions" in out.getvalue()
    statuses = dict(ExamSession.objects.values_list("pk", "status"))
    assert {pk for pk, status in statuses.items() if status == "active"} == set(held)
    assert set(SessionResult.objects.values_list("session_id", flat=True)) == set(statuses) - set(held)
    # Released, they are graded by the next run.
    call_command("expire_sessions", stdout=out)
    assert "expired 2 overdue sessions" in out.getvalue()
    assert set(ExamSession.objects.values_list("status", flat=True)) == {"expired"}


@pytest.mark.django_db
def test_expire_sessions_dry_run_changes_nothing(timed, capsys):
    call_command("expire_sessions", "--dry-run")
    assert "would expire 1 overdue sessions" in capsys.readouterr().out
    timed.refresh_from_db()
    assert timed.status == "active"


@pytest.mark.django_db
def test_old_idempotency_keys_are_purged(timed, settings, capsys):
    settings.IDEMPOTENCY_KEY_TTL_HOURS = 24
    now = timezone.now()
    IdempotencyKey.objects.create(user=timed.user, key="old", request_hash="x", created_at=now - timedelta(days=2))
    IdempotencyKey.objects.create(user=timed.user, key="new", request_hash="x", created_at=now)
    call_command("purge_idempotency_keys")
    assert "purged 1 idempotency keys" in capsys.readouterr().out
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]

"""Recalculating mastery and rebuilding the revision queue land where the live updates did."""

from contextlib import nullcontext
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from analytics_app.models import PendingAnalytics, RevisionQueueItem, UserThemeMastery
from analytics_app.tests.scenario import analytics_of, sit_session
from examplatform import exam_mode
from sessions_app.tests.factories import QuestionFactory, ThemeFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def themes(db):
    first = ThemeFactory()
    second = ThemeFactory(block=first.block)
    QuestionFactory.create_batch(4, theme=first)
    QuestionFactory.create_batch(4, theme=second)
    return [first.pk, second.pk]


@pytest.fixture
def students(themes, django_capture_on_commit_callbacks):
    users = UserFactory.create_batch(2)
    for user in users:
        for day in range(3):
            sit_session(user=user, theme_ids=themes, count=8, day=day, pattern=day + user.pk,
                        run_on_commit=django_capture_on_commit_callbacks)
    return users


def test_recalculation_and_rebuild_reproduce_the_live_analytics(students):
    expected = [analytics_of(user) for user in students]
    UserThemeMastery.objects.update(attempts=0, correct=0, mastery=0.5)
    RevisionQueueItem.objects.all().delete()
    out = StringIO()
    call_command("recalculate_mastery", stdout=out, stderr=StringIO())
    call_command("rebuild_revision_queue", stdout=out, stderr=StringIO())
    assert [analytics_of(user) for user in students] == expected
    assert "recomputed 4 mastery rows of 2 users" in out.getvalue()
    assert "rebuilt the revision queue of 2 users from 6 sessions" in out.getvalue()


def test_a_rebuild_leaves_pending_sessions_to_the_drain(students, themes, django_capture_on_commit_callbacks):
    user = students[0]
    exam_mode.turn_on(by="test", now=timezone.now())
    sit_session(user=user, theme_ids=themes, count=8, day=5, pattern=1,
                run_on_commit=django_capture_on_commit_callbacks)
    call_command("recalculate_mastery", "--force", "--user", str(user.pk), stdout=StringIO(), stderr=StringIO())
    call_command("rebuild_revision_queue", "--force", "--user", str(user.pk), stdout=StringIO(), stderr=StringIO())
    assert sum(m.attempts for m in UserThemeMastery.objects.filter(user=user)) == 3 * 8  # not the pending 4th
    call_command("drain_recalc", "--force", stdout=StringIO(), stderr=StringIO())
    assert sum(m.attempts for m in UserThemeMastery.objects.filter(user=user)) == 4 * 8
    assert not PendingAnalytics.objects.exists()


def test_dry_runs_change_nothing(students):
    UserThemeMastery.objects.all().delete()
    out = StringIO()
    call_command("recalculate_mastery", "--dry-run", stdout=out)
    call_command("rebuild_revision_queue", "--dry-run", "--user", str(students[0].pk), stdout=out)
    assert out.getvalue().splitlines() == [
        "would recompute the mastery of 2 users", "would rebuild the revision queue of 1 users"
    ]
    assert not UserThemeMastery.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_session_is_not_applied_half_way_through_a_rebuild_and_the_drain_applies_it_after(themes):
    import psycopg
    from django.db import connection

    from analytics_app.services import MAINTENANCE_LOCK, apply_session_analytics

    user = UserFactory()
    exam_mode.turn_on(by="test", now=timezone.now())
    # A transactional test: nothing to capture, commits are real.
    session_id = sit_session(user=user, theme_ids=themes, count=8, day=0, pattern=0,
                             run_on_commit=lambda execute: nullcontext())
    exam_mode.turn_off(by="test", now=timezone.now())
    s = connection.settings_dict
    with psycopg.connect(host=s["HOST"] or "127.0.0.1", port=s["PORT"] or 5432, user=s["USER"] or "postgres",
                         dbname=s["NAME"]) as rebuild:
        # Another process is rebuilding: it holds the maintenance lock in its transaction.
        rebuild.execute("SELECT pg_advisory_xact_lock(%s)", [MAINTENANCE_LOCK])
        assert apply_session_analytics(session_id=session_id) is False
        assert PendingAnalytics.objects.filter(session_id=session_id).exists()
        rebuild.rollback()
    assert apply_session_analytics(session_id=session_id) is True
    assert sum(m.attempts for m in UserThemeMastery.objects.filter(user=user)) == 8


"""Submit in exam mode leaves analytics pending; drain_recalc catches up to the same end state."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from analytics_app.models import AttemptEvent, PendingAnalytics, RevisionQueueItem, UserThemeMastery
from analytics_app.services import apply_session_analytics, drain_pending
from analytics_app.tests.scenario import analytics_of, sit_session
from examplatform import exam_mode
from sessions_app.tests.factories import QuestionFactory, ThemeFactory, UserFactory

pytestmark = pytest.mark.django_db

PATTERNS = [0, 1, 2, 3]


@pytest.fixture
def themes(db):
    first = ThemeFactory(name="Arrhythmias")
    second = ThemeFactory(name="Valves", block=first.block)
    QuestionFactory.create_batch(6, theme=first)
    QuestionFactory.create_batch(5, theme=second)
    return [first.pk, second.pk]


def history(user, themes, run_on_commit, *, exam_mode_for: set[int]) -> None:
    """Four sessions over the same questions; those whose index is in `exam_mode_for` sit in exam mode."""
    for day, pattern in enumerate(PATTERNS):
        if day in exam_mode_for:
            exam_mode.turn_on(by="test", now=timezone.now())
        else:
            exam_mode.turn_off(by="test", now=timezone.now())
        sit_session(user=user, theme_ids=themes, count=11, day=day, pattern=pattern, run_on_commit=run_on_commit)


def test_sessions_drained_after_exam_mode_end_where_inline_sessions_do(themes, django_capture_on_commit_callbacks):
    inline, deferred, mixed = UserFactory(), UserFactory(), UserFactory()
    history(inline, themes, django_capture_on_commit_callbacks, exam_mode_for=set())
    history(deferred, themes, django_capture_on_commit_callbacks, exam_mode_for={0, 1, 2, 3})
    # Exam mode ends before the last session: its inline apply waits behind the older pending ones.
    history(mixed, themes, django_capture_on_commit_callbacks, exam_mode_for={0, 1})

    assert UserThemeMastery.objects.filter(user=deferred).count() == 0
    assert PendingAnalytics.objects.filter(session__user=deferred).count() == 4
    assert PendingAnalytics.objects.filter(session__user=mixed).count() == 4

    exam_mode.turn_off(by="test", now=timezone.now())
    out = StringIO()
    call_command("drain_recalc", stdout=out, stderr=StringIO())
    assert "applied analytics of 8 sessions; 0 left" in out.getvalue()

    expected = analytics_of(inline)
    assert expected["mastery"] and expected["queue"]
    assert analytics_of(deferred) == expected
    assert analytics_of(mixed) == expected
    assert AttemptEvent.objects.filter(user=deferred).count() == AttemptEvent.objects.filter(user=inline).count()


def test_drain_is_idempotent_and_resumable(themes, django_capture_on_commit_callbacks):
    users = UserFactory.create_batch(3)
    exam_mode.turn_on(by="test", now=timezone.now())
    for day, user in enumerate(users):
        sit_session(user=user, theme_ids=themes, count=5, day=day, pattern=day,
                    run_on_commit=django_capture_on_commit_callbacks)
    exam_mode.turn_off(by="test", now=timezone.now())
    # Interrupted after the first batch of one session: the rest is still pending, nothing is half-done.
    calls = iter([False, True])
    assert drain_pending(batch_size=1, should_stop=lambda: next(calls)) == 1
    assert PendingAnalytics.objects.count() == 2
    first = analytics_of(users[0])
    assert first["mastery"]
    assert drain_pending() == 2
    after = [analytics_of(user) for user in users]
    events = AttemptEvent.objects.count()
    # Running again, or applying a session twice, changes nothing.
    assert drain_pending() == 0
    assert not any(apply_session_analytics(session_id=pk) for pk in range(1, 50))
    assert [analytics_of(user) for user in users] == after and after[0] == first
    assert AttemptEvent.objects.count() == events


def test_drain_recalc_waits_while_exam_mode_is_on_unless_forced(themes, django_capture_on_commit_callbacks):
    exam_mode.turn_on(by="test", now=timezone.now())
    sit_session(user=UserFactory(), theme_ids=themes, count=5, day=0, pattern=0,
                run_on_commit=django_capture_on_commit_callbacks)
    out = StringIO()
    call_command("drain_recalc", stdout=out)
    assert "exam mode is on: 1 sessions wait" in out.getvalue() and PendingAnalytics.objects.count() == 1
    out, err = StringIO(), StringIO()
    call_command("drain_recalc", "--dry-run", stdout=out)
    assert out.getvalue().strip() == "1 sessions pending"
    call_command("drain_recalc", "--force", stdout=out, stderr=err)
    assert PendingAnalytics.objects.count() == 0 and RevisionQueueItem.objects.exists()
    assert "1/1" in err.getvalue()  # the progress bar


def test_a_drain_stops_between_batches_when_exam_mode_is_turned_on(themes, django_capture_on_commit_callbacks):
    exam_mode.turn_on(by="test", now=timezone.now())
    for day in range(3):
        sit_session(user=UserFactory(), theme_ids=themes, count=3, day=day, pattern=day,
                    run_on_commit=django_capture_on_commit_callbacks)
    exam_mode.turn_off(by="test", now=timezone.now())

    def progress(n):
        exam_mode.turn_on(by="ops", now=timezone.now())

    assert drain_pending(batch_size=1, progress=progress, should_stop=exam_mode.is_on) == 1
    assert PendingAnalytics.objects.count() == 2


@pytest.fixture
def big_bank(db):
    theme = ThemeFactory()
    QuestionFactory.create_batch(40, theme=theme)
    return theme


@pytest.mark.parametrize("count", [5, 40])
def test_submit_runs_fewer_queries_in_exam_mode(
    api, big_bank, django_assert_num_queries, django_capture_on_commit_callbacks, count
):
    def answered_session() -> str:
        session = api.post("/api/v1/sessions/", {"count": count, "mode": "tutor"}, format="json").json()
        for question in session["questions"]:
            api.put(f"/api/v1/sessions/{session['id']}/answers/{question['id']}/", {"option": "a"}, format="json")
        return f"/api/v1/sessions/{session['id']}/submit/"

    off_url = answered_session()
    # Off: grade (lock, insert result, close session, enqueue, + begin/commit) and then, after commit, apply
    # (claim, session, answers, questions, events, mastery, revision lookup and upsert, done, + begin/commit).
    with django_assert_num_queries(17), django_capture_on_commit_callbacks(execute=True):
        assert api.post(off_url).status_code == 200
    exam_mode.turn_on(by="test", now=timezone.now())
    on_url = answered_session()
    with django_assert_num_queries(6), django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert api.post(on_url).status_code == 200
    assert callbacks == []
    assert PendingAnalytics.objects.count() == 1

import pytest
from django.core.management import call_command
from django.db.models import Count, Sum
from django.utils import timezone

from sessions_app import bulk_data
from sessions_app.invariants import check_invariants
from sessions_app.models import ExamSession, SessionAnswer, SessionQuestion, SessionResult
from sessions_app.tests.factories import QuestionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def bank(db):
    return QuestionFactory.create_batch(30)


def test_bulk_generate_adds_graded_sessions_that_keep_every_invariant(bank, capsys):
    call_command("bulk_generate", sessions=250, questions_per_session=10, users=7, batch_size=100)
    assert "250 sessions, 2500 answers" in capsys.readouterr().out
    assert ExamSession.objects.count() == SessionResult.objects.count() == 250
    assert SessionAnswer.objects.count() == SessionQuestion.objects.count() == 2500
    assert ExamSession.objects.values("user_id").distinct().count() == 7
    assert check_invariants(now=timezone.now()).ok
    # The grade agrees with the answers it was computed from.
    by_session = dict(
        SessionAnswer.objects.filter(is_correct=True).values_list("session_id").annotate(n=Count("id"))
    )
    for result in SessionResult.objects.all():
        assert result.correct == by_session.get(result.session_id, 0)
        assert result.session.score == result.score_percent
    assert SessionAnswer.objects.aggregate(n=Sum("seq"))["n"] == 2500


def test_open_sessions_are_answerable_through_the_api(bank, api, student):
    made = bulk_data.generate_sessions(
        user_ids=[student.pk], sessions=3, now=timezone.now(), closed=False, answered=False,
    )
    session = ExamSession.objects.get(pk=made.first_id)
    assert session.status == ExamSession.Status.ACTIVE and session.deadline > timezone.now()
    question = SessionQuestion.objects.filter(session=session).first().question_id
    reply = api.put(f"/api/v1/sessions/{session.pk}/answers/{question}/", {"option": "b", "seq": 1}, format="json")
    assert reply.status_code == 200
    assert api.post(f"/api/v1/sessions/{session.pk}/submit/").json()["correct"] == 1


def test_it_refuses_more_questions_per_session_than_the_bank_holds(db):
    QuestionFactory.create_batch(3)
    with pytest.raises(ValueError, match="fewer than 10"):
        bulk_data.generate_sessions(user_ids=[UserFactory().pk], sessions=1, now=timezone.now())

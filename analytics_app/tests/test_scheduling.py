"""The FSRS rating behind the revision queue: derived from correctness and time spent, no self-rating."""

from datetime import timedelta

import pytest
from fsrs import Rating

from analytics_app.models import RevisionQueueItem
from analytics_app.services import rating_for
from analytics_app.tests.scenario import START
from sessions_app import services
from sessions_app.tests.factories import QuestionFactory, UserFactory


@pytest.mark.parametrize(("correct", "seconds", "rating"), [
    (False, 5, Rating.Again),
    (False, None, Rating.Again),  # never answered: graded wrong
    (True, 5, Rating.Easy),
    (True, 20, Rating.Easy),
    (True, 21, Rating.Good),
    (True, 60, Rating.Good),
    (True, None, Rating.Good),  # no pace known: the neutral rating
    (True, 61, Rating.Hard),
    (True, 600, Rating.Hard),
])
def test_the_rating_comes_from_correctness_and_pace(correct, seconds, rating):
    spent = None if seconds is None else timedelta(seconds=seconds)
    assert rating_for(correct=correct, time_spent=spent) == rating


def sit(user, question, *, day: int, option: str, seconds: int, run_on_commit) -> None:
    now = START + timedelta(days=day)
    started = services.start_session(user_id=user.pk, mode="tutor", count=1, theme_ids=[question.theme_id], now=now)
    answered = now + timedelta(seconds=seconds)
    services.record_answer(user_id=user.pk, session_id=started.session.pk, question_id=question.pk, now=answered,
                           option=option)
    with run_on_commit(execute=True):
        services.submit_session(user_id=user.pk, session_id=started.session.pk, now=answered + timedelta(seconds=1))


@pytest.mark.django_db
def test_a_quick_right_answer_pushes_the_next_review_further_than_a_slow_one(django_capture_on_commit_callbacks):
    question = QuestionFactory(correct_option="b")
    due = {}
    for seconds in (10, 45, 300):
        student = UserFactory()
        sit(student, question, day=0, option="a", seconds=30, run_on_commit=django_capture_on_commit_callbacks)
        sit(student, question, day=3, option="b", seconds=seconds, run_on_commit=django_capture_on_commit_callbacks)
        item = RevisionQueueItem.objects.get(user=student, question=question)
        assert item.reviews == 2
        due[seconds] = item.due_at
    assert due[10] > due[45] > due[300]  # Easy, Good, Hard

"""Student analytics (mastery, history), the staff cohort view, and the exam-mode gate on it."""

import pytest
from django.utils import timezone

from analytics_app.models import AttemptEvent
from analytics_app.tests.scenario import sit_session
from examplatform import exam_mode
from examplatform.testing import client_for
from sessions_app.tests.factories import QuestionFactory, ThemeFactory, UserFactory

pytestmark = pytest.mark.django_db

MASTERY, HISTORY, COHORT = "/api/v1/analytics/mastery/", "/api/v1/analytics/history/", "/api/v1/analytics/cohort/"


@pytest.fixture
def themes(db):
    first = ThemeFactory(name="Arrhythmias")
    second = ThemeFactory(name="Valves", block=first.block)
    QuestionFactory.create_batch(5, theme=first)
    QuestionFactory.create_batch(5, theme=second)
    return [first, second]


@pytest.fixture
def staff_api(db):
    return client_for(UserFactory(username="staffer", is_staff=True))


def sessions_of(user, themes, run_on_commit, n: int) -> list[int]:
    return [
        sit_session(user=user, theme_ids=[t.pk for t in themes], count=10, day=day, pattern=day,
                    run_on_commit=run_on_commit)
        for day in range(n)
    ]


def test_mastery_lists_my_themes_only(api, student, other_student, themes, django_capture_on_commit_callbacks):
    sessions_of(student, themes, django_capture_on_commit_callbacks, 2)
    sessions_of(other_student, themes[:1], django_capture_on_commit_callbacks, 1)
    rows = api.get(MASTERY).json()
    assert [(r["theme_name"], r["attempts"]) for r in rows] == [("Arrhythmias", 10), ("Valves", 10)]
    for row in rows:
        assert row["mastery"] == pytest.approx((row["correct"] + 1) / (row["attempts"] + 2))
        assert row["block_name"] == themes[0].block.name


def test_history_lists_my_graded_sessions_with_scores_newest_first(
    api, student, other_student, themes, django_capture_on_commit_callbacks
):
    mine = sessions_of(student, themes, django_capture_on_commit_callbacks, 3)
    sessions_of(other_student, themes, django_capture_on_commit_callbacks, 1)
    api.post("/api/v1/sessions/", {"count": 2, "mode": "tutor"}, format="json")  # still active: not history
    body = api.get(HISTORY, {"page_size": 2}).json()
    assert [r["session"] for r in body["results"]] == mine[::-1][:2]
    assert all(r["status"] == "submitted" and 0 <= r["score"] <= 100 for r in body["results"])
    assert [r["session"] for r in api.get(body["next"]).json()["results"]] == mine[:1]


@pytest.mark.parametrize("sessions", [1, 4])
def test_mastery_and_history_run_one_query(api, student, themes, django_assert_num_queries,
                                           django_capture_on_commit_callbacks, sessions):
    sessions_of(student, themes, django_capture_on_commit_callbacks, sessions)
    api.get(MASTERY)  # warm the token check
    with django_assert_num_queries(1):
        assert len(api.get(MASTERY).json()) == 2
    with django_assert_num_queries(1):
        assert len(api.get(HISTORY).json()["results"]) == sessions


def test_mastery_and_history_stay_open_in_exam_mode(api, student, themes, django_capture_on_commit_callbacks):
    sessions_of(student, themes, django_capture_on_commit_callbacks, 1)
    exam_mode.turn_on(by="test", now=timezone.now())
    assert api.get(MASTERY).status_code == 200 and len(api.get(HISTORY).json()["results"]) == 1


def test_cohort_shows_per_theme_rates_and_the_hardest_questions(
    staff_api, themes, django_capture_on_commit_callbacks
):
    arrhythmias = list(themes[0].questions.order_by("id"))
    for user in UserFactory.create_batch(3):
        sessions_of(user, themes, django_capture_on_commit_callbacks, 2)
    body = staff_api.get(COHORT, {"hardest": 2, "min_attempts": 1}).json()
    assert [t["theme_name"] for t in body] == ["Arrhythmias", "Valves"]
    first = body[0]
    assert first["attempts"] == 3 * 2 * 5 and first["students"] == 3
    assert first["correct_rate"] == pytest.approx(first["correct"] / first["attempts"])
    hardest = first["hardest"]
    assert len(hardest) == 2 and {h["question"] for h in hardest} <= {q.pk for q in arrhythmias}
    assert hardest[0]["correct_rate"] <= hardest[1]["correct_rate"]
    rates = []
    for question in arrhythmias:
        events = AttemptEvent.objects.filter(question=question)
        rates.append(sum(bool(e.payload.get("correct")) for e in events) / events.count())
    assert hardest[0]["correct_rate"] == pytest.approx(min(rates))


def test_cohort_filters_by_block_and_window_and_minimum_attempts(staff_api, themes, django_capture_on_commit_callbacks):
    sessions_of(UserFactory(), themes, django_capture_on_commit_callbacks, 1)  # sat on 2026-03-02: long ago
    other = ThemeFactory(name="Stroke")
    QuestionFactory.create_batch(2, theme=other)
    assert staff_api.get(COHORT, {"days": 30}).json() == []
    assert [t["theme_name"] for t in staff_api.get(COHORT, {"block": other.block_id}).json()] == []
    assert all(t["hardest"] == [] for t in staff_api.get(COHORT, {"min_attempts": 2}).json())
    bad = staff_api.get(COHORT, {"hardest": 99, "days": 0})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid"
    assert set(bad.json()["errors"]) == {"hardest", "days"}


@pytest.mark.parametrize("themes_count", [1, 6])
def test_cohort_runs_a_fixed_number_of_queries(staff_api, django_assert_num_queries,
                                               django_capture_on_commit_callbacks, themes_count):
    block = ThemeFactory().block
    themes = [ThemeFactory(block=block) for _ in range(themes_count)]
    for theme in themes:
        # Five questions with consecutive ids: sit_session's pattern (id mod 5) answers three of them, so
        # every theme has attempts; the session draws them all.
        QuestionFactory.create_batch(5, theme=theme)
    sit_session(user=UserFactory(), theme_ids=[t.pk for t in themes], count=5 * themes_count, day=0, pattern=0,
                run_on_commit=django_capture_on_commit_callbacks)
    staff_api.get(COHORT)
    with django_assert_num_queries(3):  # staff check, per-theme totals, hardest questions
        assert len(staff_api.get(COHORT, {"min_attempts": 1}).json()) == themes_count


def test_cohort_is_for_staff_only(api, client):
    assert api.get(COHORT).status_code == 403
    assert client.get(COHORT).status_code == 401


def test_cohort_answers_503_with_retry_after_in_exam_mode_and_200_after(staff_api, api):
    exam_mode.turn_on(by="test", now=timezone.now())
    response = staff_api.get(COHORT)
    assert response.status_code == 503
    assert response.json()["code"] == "exam_mode" and "Exam mode is on" in response.json()["detail"]
    assert response["Retry-After"] == str(exam_mode.DEFAULT_RETRY_AFTER)
    assert api.get(COHORT).status_code == 403  # a student still learns it is not for them
    exam_mode.turn_off(by="test", now=timezone.now())
    assert staff_api.get(COHORT).status_code == 200


def test_cohort_retry_after_counts_down_to_the_end_of_exam_mode(staff_api):
    exam_mode.turn_on(by="test", now=timezone.now(), until=timezone.now() + timezone.timedelta(minutes=10))
    retry_after = int(staff_api.get(COHORT)["Retry-After"])
    assert 590 <= retry_after <= 600


def test_the_student_exam_path_is_untouched_by_exam_mode(api, themes):
    exam_mode.turn_on(by="test", now=timezone.now())
    session = api.post("/api/v1/sessions/", {"count": 3, "mode": "timed"}, format="json")
    assert session.status_code == 201
    sid, question = session.json()["id"], session.json()["questions"][0]["id"]
    assert api.put(f"/api/v1/sessions/{sid}/answers/{question}/", {"option": "b"}, format="json").status_code == 200
    assert api.get(f"/api/v1/sessions/{sid}/").status_code == 200
    assert api.post(f"/api/v1/sessions/{sid}/submit/").status_code == 200
    assert api.get(f"/api/v1/sessions/{sid}/review/").status_code == 200
    assert api.get("/api/v1/sessions/").status_code == 200
    assert api.get("/api/v1/revision-queue/").status_code == 200

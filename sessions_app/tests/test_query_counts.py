"""Each endpoint runs a fixed number of queries, whatever the size of the session.

Inside a test's transaction a service's transaction shows as SAVEPOINT and
RELEASE: they stand for the BEGIN and COMMIT it costs in production, so they count.
The first request of a test looks the token up in the blacklist table; later
ones hit the cache, so each test warms it first.
"""

import pytest
from rest_framework.test import APIClient

from analytics_app.tests.factories import revision_items
from sessions_app.tests.factories import QuestionFactory, ThemeFactory

pytestmark = pytest.mark.django_db

LOGIN, REFRESH, LOGOUT = "/api/v1/auth/token/", "/api/v1/auth/token/refresh/", "/api/v1/auth/logout/"


@pytest.fixture
def big_bank(db):
    theme = ThemeFactory()
    QuestionFactory.create_batch(40, theme=theme)
    return theme


def started(api, count: int) -> dict:
    response = api.post("/api/v1/sessions/", {"count": count, "mode": "tutor"}, format="json")
    assert response.status_code == 201
    return response.json()


def answered(api, session: dict) -> dict:
    for question in session["questions"]:
        api.put(f"/api/v1/sessions/{session['id']}/answers/{question['id']}/", {"option": "a"}, format="json")
    return session


@pytest.mark.parametrize("count", [5, 40])
def test_create_runs_three_queries_in_a_transaction(api, big_bank, django_assert_num_queries, count):
    started(api, 1)
    with django_assert_num_queries(5):  # draw, insert session, insert its questions (+ begin/commit)
        started(api, count)


@pytest.mark.parametrize("count", [5, 40])
def test_create_with_an_idempotency_key_runs_two_more(api, big_bank, django_assert_num_queries, count):
    started(api, 1)
    with django_assert_num_queries(7):  # + insert key, + link key to session
        api.post("/api/v1/sessions/", {"count": count, "mode": "tutor"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")


@pytest.mark.parametrize("count", [5, 40])
def test_an_idempotent_create_replay_reads_the_first_session(api, big_bank, django_assert_num_queries, count):
    body = {"count": count, "mode": "tutor"}
    first = api.post("/api/v1/sessions/", body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    # key insert (conflicts), stored key with its session, the questions (+ begin/commit); then the answers
    with django_assert_num_queries(6):
        replay = api.post("/api/v1/sessions/", body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert replay["Idempotent-Replayed"] == "true" and replay.json() == first.json()


def test_login_runs_two_queries(student, django_assert_num_queries):
    with django_assert_num_queries(2):  # the user, its new refresh token recorded for the blacklist
        response = APIClient().post(LOGIN, {"username": "alice", "password": "pass-word-1"}, format="json")
    assert response.status_code == 200


def test_refresh_runs_two_queries(api, django_assert_num_queries):
    with django_assert_num_queries(2):  # is the login blacklisted, is the user still active
        response = APIClient().post(REFRESH, {"refresh": api.refresh_token}, format="json")
    assert response.status_code == 200


def test_logout_runs_a_fixed_number_of_queries(api, django_assert_num_queries):
    # is it blacklisted already, the user, its outstanding token, its blacklist row (get, then
    # insert in a savepoint); a second logout stops at the first check
    with django_assert_num_queries(7):
        assert APIClient().post(LOGOUT, {"refresh": api.refresh_token}, format="json").status_code == 205
    with django_assert_num_queries(1):
        assert APIClient().post(LOGOUT, {"refresh": api.refresh_token}, format="json").status_code == 401


@pytest.mark.parametrize("count", [5, 40])
def test_detail_runs_three_queries(api, big_bank, django_assert_num_queries, count):
    session = answered(api, started(api, count))
    with django_assert_num_queries(3):  # session, its questions, its answers
        api.get(f"/api/v1/sessions/{session['id']}/")


@pytest.mark.parametrize("count", [5, 40])
def test_answer_runs_one_statement(api, big_bank, django_assert_num_queries, count):
    session = started(api, count)
    url = f"/api/v1/sessions/{session['id']}/answers/{session['questions'][-1]['id']}/"
    with django_assert_num_queries(1):  # session+question read, checked and upserted in one statement
        assert api.put(url, {"option": "b", "seq": 1}, format="json").status_code == 200
    with django_assert_num_queries(2):  # a stale write: + read the stored answer
        assert api.put(url, {"option": "c", "seq": 1}, format="json").json()["stale"] is True


@pytest.mark.parametrize("count", [5, 40])
def test_submit_runs_a_constant_number_of_queries(
    api, big_bank, django_assert_num_queries, django_capture_on_commit_callbacks, count
):
    session = answered(api, started(api, count))
    url = f"/api/v1/sessions/{session['id']}/submit/"
    # lock, grade+insert result, close session, enqueue analytics (+ begin/commit); then after
    # commit the analytics: claim, session, answers, questions, events, mastery, revision lookup
    # and upsert, done (+ begin/commit)
    with django_assert_num_queries(17), django_capture_on_commit_callbacks(execute=True):
        assert api.post(url).status_code == 200
    with django_assert_num_queries(5):  # replay: lock, conflicting insert, read stored result
        assert api.post(url).status_code == 200


@pytest.mark.parametrize("count", [5, 40])
def test_review_runs_four_queries(api, big_bank, django_assert_num_queries, count):
    session = answered(api, started(api, count))
    api.post(f"/api/v1/sessions/{session['id']}/submit/")
    with django_assert_num_queries(4):  # session, questions, answers, result
        api.get(f"/api/v1/sessions/{session['id']}/review/")


@pytest.mark.parametrize("sessions", [1, 6])
def test_history_runs_one_query(api, big_bank, django_assert_num_queries, sessions):
    for _ in range(sessions):
        started(api, 3)
    with django_assert_num_queries(1):
        assert len(api.get("/api/v1/sessions/").json()["results"]) == sessions


@pytest.mark.parametrize("themes", [1, 5])
def test_blocks_and_themes_run_one_query_each(api, django_assert_num_queries, themes):
    for _ in range(themes):
        QuestionFactory(theme=ThemeFactory())
    api.get("/api/v1/blocks/")
    with django_assert_num_queries(1):
        api.get("/api/v1/blocks/")
    with django_assert_num_queries(1):
        api.get("/api/v1/themes/")


@pytest.mark.parametrize("items", [1, 10])
def test_revision_queue_runs_two_queries(api, student, big_bank, django_assert_num_queries, items):
    revision_items(user=student, count=items)
    api.get("/api/v1/revision-queue/")
    with django_assert_num_queries(2):  # count, page
        assert api.get("/api/v1/revision-queue/").json()["count"] == items

import pytest
from rest_framework.test import APIClient

from analytics_app.models import AttemptEvent, RevisionQueueItem, UserThemeMastery
from sessions_app.models import ExamSession, SessionAnswer, SessionResult

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("answer_write_path")]


def test_a_student_walks_the_whole_exam_journey(student, bank, django_capture_on_commit_callbacks):
    client = APIClient()
    login = client.post("/api/v1/auth/token/", {"username": "alice", "password": "pass-word-1"}, format="json")
    assert login.status_code == 200
    access, refresh = login.json()["access"], login.json()["refresh"]
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")

    refreshed = client.post("/api/v1/auth/token/refresh/", {"refresh": refresh}, format="json")
    assert refreshed.status_code == 200 and refreshed.json()["access"]

    blocks = client.get("/api/v1/blocks/").json()
    assert blocks == [{"id": bank["block"].pk, "name": bank["block"].name, "description": "", "question_count": 20}]
    themes = client.get(f"/api/v1/themes/?block={bank['block'].pk}").json()
    assert [t["question_count"] for t in themes] == [10, 10]

    created = client.post(
        "/api/v1/sessions/", {"themes": [themes[0]["id"]], "count": 5, "mode": "timed"}, format="json"
    )
    assert created.status_code == 201
    session = created.json()
    assert session["status"] == "active" and session["deadline"] is not None
    assert len(session["questions"]) == 5
    first = session["questions"][0]
    assert set(first) == {"id", "position", "stem", "options", "answer", "flagged"}
    assert first["answer"] is None and first["flagged"] is False
    assert {"id", "text"} == set(first["options"][0])
    url = f"/api/v1/sessions/{session['id']}"

    # Answer everything wrong, then change one answer to the right one and flag another.
    for question in session["questions"]:
        answered = client.put(f"{url}/answers/{question['id']}/", {"option": "a"}, format="json")
        assert answered.status_code == 200
        assert answered.json()["answer"] == "a"
        assert "correct_option" not in answered.json()  # timed: no feedback while active
    changed = client.put(f"{url}/answers/{first['id']}/", {"option": "b"}, format="json")
    assert changed.json()["answer"] == "b"
    flagged = client.put(f"{url}/answers/{session['questions'][1]['id']}/", {"flagged": True}, format="json")
    assert flagged.json() | {"answered_at": None} == {
        "question": session["questions"][1]["id"], "answer": "a", "flagged": True, "seq": None,
        "answered_at": None, "stale": False,
    }
    assert SessionAnswer.objects.filter(session_id=session["id"]).count() == 5

    detail = client.get(f"{url}/").json()
    assert detail["questions"][0]["answer"] == "b" and detail["questions"][1]["flagged"] is True
    assert "correct_option" not in detail["questions"][0]

    with django_capture_on_commit_callbacks(execute=True):
        submitted = client.post(f"{url}/submit/")
    assert submitted.status_code == 200
    assert submitted["Idempotent-Replayed"] == "false"
    result = submitted.json()
    assert result | {"submitted_at": None} == {
        "session": session["id"], "status": "submitted", "correct": 1, "answered": 5, "total": 5,
        "score": 20.0, "submitted_at": None,
    }

    with django_capture_on_commit_callbacks(execute=True):
        again = client.post(f"{url}/submit/")
    assert again.status_code == 200 and again.json() == result
    assert again["Idempotent-Replayed"] == "true"
    assert SessionResult.objects.count() == 1
    assert AttemptEvent.objects.filter(session_id=session["id"]).count() == 6  # 5 answers + submitted

    review = client.get(f"{url}/review/").json()
    assert review["result"] == result
    assert review["questions"][0]["is_correct"] is True
    assert review["questions"][0]["correct_option"] == "b"
    assert review["questions"][1]["explanation"]

    mastery = UserThemeMastery.objects.get(user=student, theme_id=themes[0]["id"])
    assert (mastery.attempts, mastery.correct) == (5, 1)
    assert RevisionQueueItem.objects.filter(user=student).count() == 4

    queue = client.get("/api/v1/revision-queue/?horizon_hours=1").json()
    assert queue["count"] == 4
    assert {item["question"] for item in queue["results"]} == {q["id"] for q in session["questions"][1:]}

    history = client.get("/api/v1/sessions/").json()
    assert [s["id"] for s in history["results"]] == [session["id"]]
    assert history["results"][0]["score"] == 20.0

    logout = client.post("/api/v1/auth/logout/", {"refresh": refresh}, format="json")
    assert logout.status_code == 205
    refused = client.get("/api/v1/sessions/")
    assert refused.status_code == 401 and refused.json()["code"] == "token_not_valid"
    refused_refresh = client.post("/api/v1/auth/token/refresh/", {"refresh": refresh}, format="json")
    assert refused_refresh.status_code == 401


def test_tutor_mode_gives_feedback_right_after_each_answer(api, bank):
    session = api.post("/api/v1/sessions/", {"block": bank["block"].pk, "count": 2, "mode": "tutor"}, format="json")
    body = session.json()
    assert body["deadline"] is None
    question = body["questions"][0]
    answered = api.put(
        f"/api/v1/sessions/{body['id']}/answers/{question['id']}/", {"option": "b"}, format="json"
    ).json()
    assert answered["is_correct"] is True
    assert answered["correct_option"] == "b" and answered["explanation"] == "Because B."
    detail = api.get(f"/api/v1/sessions/{body['id']}/").json()
    assert detail["questions"][0]["is_correct"] is True
    assert "correct_option" not in detail["questions"][1]  # not answered yet


def test_drawing_prefers_unseen_questions_then_missed_ones(api, student, bank):
    theme = bank["themes"][0]
    first = api.post("/api/v1/sessions/", {"themes": [theme.pk], "count": 5, "mode": "tutor"}, format="json").json()
    for question in first["questions"]:
        api.put(f"/api/v1/sessions/{first['id']}/answers/{question['id']}/", {"option": "b"}, format="json")
    second = api.post("/api/v1/sessions/", {"themes": [theme.pk], "count": 5, "mode": "tutor"}, format="json").json()
    assert not {q["id"] for q in first["questions"]} & {q["id"] for q in second["questions"]}
    # Answer the second set wrong: a third draw of 10 brings those back before the first (right) set.
    for question in second["questions"]:
        api.put(f"/api/v1/sessions/{second['id']}/answers/{question['id']}/", {"option": "a"}, format="json")
    third = api.post("/api/v1/sessions/", {"themes": [theme.pk], "count": 5, "mode": "tutor"}, format="json").json()
    assert {q["id"] for q in third["questions"]} == {q["id"] for q in second["questions"]}


def test_history_is_paginated_newest_first(api, bank):
    ids = [
        api.post("/api/v1/sessions/", {"count": 1, "mode": "tutor"}, format="json").json()["id"] for _ in range(3)
    ]
    page = api.get("/api/v1/sessions/?page_size=2").json()
    assert [s["id"] for s in page["results"]] == ids[::-1][:2]
    rest = api.get(page["next"]).json()
    assert [s["id"] for s in rest["results"]] == ids[:1]
    assert ExamSession.objects.count() == 3


def test_openapi_schema_is_valid_without_warnings(tmp_path):
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))


def test_openapi_schema_and_swagger_ui_are_served():
    client = APIClient()
    schema = client.get("/api/v1/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/sessions/{session_id}/answers/{question_id}/" in schema.content
    assert client.get("/api/docs/").status_code == 200


def test_health_answers_without_auth():
    response = APIClient().get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}

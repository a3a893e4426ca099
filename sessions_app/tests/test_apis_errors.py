"""Every bad input gets a 4xx with {"detail", "code"}, never a 500, and stored data stays as it was."""

import pytest
from django.utils import timezone

from sessions_app.models import ExamSession, SessionAnswer

# Every answer case runs through both write paths (see conftest.answer_write_path).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("answer_write_path")]


def start(api, **body):
    response = api.post("/api/v1/sessions/", {"count": 3, "mode": "timed", **body}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def assert_error(response, status: int, code: str):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code and body["detail"]


def test_malformed_json_is_a_400_parse_error(api, bank):
    response = api.generic("POST", "/api/v1/sessions/", "{not json", content_type="application/json")
    assert_error(response, 400, "parse_error")


@pytest.mark.parametrize(
    "body",
    [
        {"count": "5", "mode": "timed"},
        {"count": 5.0, "mode": "timed"},
        {"count": 0, "mode": "timed"},
        {"count": 201, "mode": "timed"},
        {"count": 5, "mode": "exam"},
        {"count": 5},
        {"count": 5, "mode": "timed", "themes": "1"},
        {"count": 5, "mode": "timed", "themes": [True]},
        {"count": 5, "mode": "timed", "block": "x"},
        ["not", "an", "object"],
    ],
)
def test_wrong_types_on_create_are_a_400_with_field_errors(api, bank, body):
    response = api.post("/api/v1/sessions/", body, format="json")
    assert_error(response, 400, "invalid")
    assert ExamSession.objects.count() == 0


def test_unknown_block_or_theme_outside_the_block_is_refused(api, bank):
    assert_error(api.post("/api/v1/sessions/", {"count": 3, "mode": "timed", "block": 999999}, format="json"),
                 400, "no_questions")
    other = bank["themes"][0].__class__.objects.create(
        block=bank["block"].__class__.objects.create(name="Other"), name="Elsewhere"
    )
    response = api.post(
        "/api/v1/sessions/", {"count": 3, "mode": "timed", "block": bank["block"].pk, "themes": [other.pk]},
        format="json",
    )
    assert_error(response, 400, "invalid_filter")


def test_answering_a_question_outside_the_session_is_a_404(api, bank):
    session = start(api)
    outside = next(q for q in bank["questions"] if q.pk not in {x["id"] for x in session["questions"]})
    response = api.put(f"/api/v1/sessions/{session['id']}/answers/{outside.pk}/", {"option": "a"}, format="json")
    assert_error(response, 404, "question_not_in_session")
    assert_error(
        api.put(f"/api/v1/sessions/{session['id']}/answers/987654/", {"option": "a"}, format="json"),
        404, "question_not_in_session",
    )


def test_an_unknown_option_or_a_bad_body_is_refused_and_the_stored_answer_kept(api, bank):
    session = start(api)
    url = f"/api/v1/sessions/{session['id']}/answers/{session['questions'][0]['id']}/"
    api.put(url, {"option": "b", "seq": 3}, format="json")
    assert_error(api.put(url, {"option": "z"}, format="json"), 400, "invalid_option")
    assert_error(api.put(url, {}, format="json"), 400, "invalid")
    assert_error(api.put(url, {"option": "a", "seq": "4"}, format="json"), 400, "invalid")
    assert_error(api.put(url, {"option": "a", "seq": 0}, format="json"), 400, "invalid")
    assert_error(api.put(url, {"option": ["a"]}, format="json"), 400, "invalid")
    stored = SessionAnswer.objects.get()
    assert (stored.chosen_option, stored.seq) == ("b", 3)


def test_a_withdrawn_question_cannot_be_answered(api, bank):
    session = start(api)
    question_id = session["questions"][0]["id"]
    bank["questions"][0].__class__.objects.filter(pk=question_id).update(is_active=False)
    response = api.put(f"/api/v1/sessions/{session['id']}/answers/{question_id}/", {"option": "a"}, format="json")
    assert_error(response, 409, "question_inactive")


def test_a_submitted_session_refuses_answers_but_replays_submit(api, bank):
    session = start(api)
    url = f"/api/v1/sessions/{session['id']}"
    question_id = session["questions"][0]["id"]
    api.put(f"{url}/answers/{question_id}/", {"option": "b"}, format="json")
    first = api.post(f"{url}/submit/")
    assert first.status_code == 200
    assert_error(api.put(f"{url}/answers/{question_id}/", {"option": "a"}, format="json"), 409, "session_submitted")
    assert SessionAnswer.objects.get().chosen_option == "b"
    assert api.post(f"{url}/submit/").json() == first.json()


def test_an_expired_session_refuses_answers_and_submit_with_deadline_passed(api, bank):
    session = start(api)
    ExamSession.objects.filter(pk=session["id"]).update(deadline=timezone.now() - timezone.timedelta(minutes=5))
    url = f"/api/v1/sessions/{session['id']}"
    response = api.put(f"{url}/answers/{session['questions'][0]['id']}/", {"option": "b"}, format="json")
    assert_error(response, 409, "deadline_passed")
    submit = api.post(f"{url}/submit/")
    assert_error(submit, 409, "deadline_passed")
    assert submit.json()["result"]["status"] == "expired"
    assert ExamSession.objects.get().status == "expired"


def test_another_users_session_is_a_404_everywhere(api, other_api, bank):
    session = start(api)
    url = f"/api/v1/sessions/{session['id']}"
    question_id = session["questions"][0]["id"]
    assert_error(other_api.get(f"{url}/"), 404, "session_not_found")
    assert_error(other_api.put(f"{url}/answers/{question_id}/", {"option": "a"}, format="json"), 404,
                 "session_not_found")
    assert_error(other_api.post(f"{url}/submit/"), 404, "session_not_found")
    assert_error(other_api.get(f"{url}/review/"), 404, "session_not_found")
    assert SessionAnswer.objects.count() == 0
    assert ExamSession.objects.get().status == "active"


SESSION_URLS = [
    ("get", "/api/v1/sessions/{session}/"),
    ("put", "/api/v1/sessions/{session}/answers/{question}/"),
    ("post", "/api/v1/sessions/{session}/submit/"),
    ("get", "/api/v1/sessions/{session}/review/"),
]
BIGINT_MAX = 2**63 - 1


def request(api, method: str, url: str):
    return api.put(url, {"option": "a"}, format="json") if method == "put" else getattr(api, method)(url)


@pytest.mark.parametrize("too_big", [BIGINT_MAX + 1, 10**20])
@pytest.mark.parametrize(("method", "url", "which"), [
    *[(method, url, "session") for method, url in SESSION_URLS],
    ("put", "/api/v1/sessions/{session}/answers/{question}/", "question"),
])
def test_an_id_beyond_bigint_is_a_404_not_a_500(api, bank, method, url, which, too_big):
    session = start(api)
    ids = {"session": session["id"], "question": session["questions"][0]["id"], which: too_big}
    assert_error(request(api, method, url.format(**ids)), 404, "not_found")
    assert SessionAnswer.objects.count() == 0
    assert ExamSession.objects.get().status == "active"


@pytest.mark.parametrize(("method", "url"), SESSION_URLS)
def test_the_largest_bigint_id_reaches_the_view_and_is_an_unknown_session(api, bank, method, url):
    assert_error(request(api, method, url.format(session=BIGINT_MAX, question=BIGINT_MAX)), 404, "session_not_found")


def test_the_largest_bigint_question_id_is_not_in_the_session(api, bank):
    session = start(api)
    url = f"/api/v1/sessions/{session['id']}/answers/{BIGINT_MAX}/"
    assert_error(request(api, "put", url), 404, "question_not_in_session")


def test_review_of_an_active_session_is_a_409(api, bank):
    session = start(api)
    assert_error(api.get(f"/api/v1/sessions/{session['id']}/review/"), 409, "session_active")


def test_unknown_urls_and_missing_auth_answer_in_json(api, bank):
    from rest_framework.test import APIClient

    assert_error(APIClient().get("/api/v1/sessions/"), 401, "not_authenticated")
    anonymous = APIClient()
    anonymous.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert_error(anonymous.get("/api/v1/sessions/"), 401, "token_not_valid")
    assert_error(api.get("/api/v1/nope/"), 404, "not_found")
    assert_error(api.get("/api/v1/sessions/12345/"), 404, "session_not_found")
    assert_error(api.get("/api/v1/themes/?block=abc"), 400, "invalid")
    assert_error(api.delete("/api/v1/blocks/"), 405, "method_not_allowed")


def test_a_host_not_allowed_is_a_json_400(api):
    assert_error(api.get("/api/v1/blocks/", HTTP_HOST="evil.example"), 400, "bad_request")


def test_bad_login_and_logout_inputs(db, student):
    from rest_framework.test import APIClient

    client = APIClient()
    assert_error(client.post("/api/v1/auth/token/", {"username": "alice", "password": "wrong"}, format="json"),
                 401, "no_active_account")
    assert_error(client.post("/api/v1/auth/token/", {"username": "alice"}, format="json"), 400, "invalid")
    assert_error(client.post("/api/v1/auth/logout/", {"refresh": "garbage"}, format="json"), 401, "token_not_valid")
    assert_error(client.post("/api/v1/auth/token/refresh/", {"refresh": "garbage"}, format="json"),
                 401, "token_not_valid")


def test_a_token_verified_once_is_still_refused_when_tampered_expired_or_logged_out(api, student, monkeypatch):
    """Each worker remembers tokens it verified (examplatform/auth.py); none of that may let a bad one in."""
    from datetime import UTC, datetime

    from rest_framework.test import APIClient

    from examplatform import auth

    assert api.get("/api/v1/sessions/").status_code == 200  # verified and remembered
    raw = api._credentials["HTTP_AUTHORIZATION"].split()[1]
    assert auth.verified_tokens.get(raw.encode()) is not None

    tampered = APIClient()
    tampered.credentials(HTTP_AUTHORIZATION=f"Bearer {raw[:-3]}{'AAA' if raw[-3:] != 'AAA' else 'BBB'}")
    assert_error(tampered.get("/api/v1/sessions/"), 401, "token_not_valid")

    # Past the token's expiry the remembered copy is dropped and verification refuses it.
    exp = auth.verified_tokens.get(raw.encode())["exp"]
    monkeypatch.setattr(auth.time, "time", lambda: exp + 1)
    monkeypatch.setattr("rest_framework_simplejwt.tokens.aware_utcnow",
                        lambda: datetime.fromtimestamp(exp + 1, tz=UTC))
    assert_error(api.get("/api/v1/sessions/"), 401, "token_not_valid")
    monkeypatch.undo()

    # Logging out ends it at once: the blacklist is checked on every request, remembered or not.
    assert api.get("/api/v1/sessions/").status_code == 200
    assert api.post("/api/v1/auth/logout/", {"refresh": api.refresh_token}, format="json").status_code == 205
    assert_error(api.get("/api/v1/sessions/"), 401, "token_not_valid")

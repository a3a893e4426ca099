"""PUT /sessions/<id>/answers/<question_id>/: sequence numbers, last write wins, flags, bad bodies."""

import pytest

from sessions_app.models import SessionAnswer

# Every case runs through both write paths (see conftest.answer_write_path).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("answer_write_path")]


@pytest.fixture
def session(api, bank) -> dict:
    return api.post("/api/v1/sessions/", {"count": 3, "mode": "timed"}, format="json").json()


@pytest.fixture
def answer_url(session) -> str:
    return f"/api/v1/sessions/{session['id']}/answers/{session['questions'][0]['id']}/"


def stored_row() -> tuple:
    answer = SessionAnswer.objects.get()
    return answer.chosen_option, answer.seq, answer.flagged, answer.answered_at


def test_an_older_seq_is_ignored_and_the_reply_shows_the_stored_answer(api, answer_url):
    newer = api.put(answer_url, {"option": "b", "seq": 5}, format="json").json()
    assert (newer["answer"], newer["seq"], newer["stale"]) == ("b", 5, False)
    before = stored_row()

    late = api.put(answer_url, {"option": "c", "seq": 3}, format="json")

    assert late.status_code == 200
    assert late.json() == newer | {"stale": True}
    assert stored_row() == before


def test_an_equal_seq_is_a_retry_and_changes_nothing(api, answer_url):
    api.put(answer_url, {"option": "b", "seq": 5}, format="json")
    before = stored_row()
    retry = api.put(answer_url, {"option": "c", "seq": 5}, format="json").json()
    assert (retry["answer"], retry["stale"]) == ("b", True)
    assert stored_row() == before


def test_a_write_without_seq_overwrites_whatever_came_before(api, answer_url):
    api.put(answer_url, {"option": "b", "seq": 5}, format="json")
    api.put(answer_url, {"option": "c", "seq": 3}, format="json")

    last = api.put(answer_url, {"option": "d"}, format="json").json()

    assert (last["answer"], last["stale"]) == ("d", False)
    # The stored seq stays the newest seen, so a later retry of seq 3 or 4 still can't undo "d".
    assert stored_row()[:2] == ("d", 5)
    assert api.put(answer_url, {"option": "a", "seq": 4}, format="json").json()["answer"] == "d"


def test_a_question_can_be_flagged_and_unflagged_without_touching_the_answer(api, session, answer_url):
    api.put(answer_url, {"option": "b"}, format="json")
    flagged = api.put(answer_url, {"flagged": True}, format="json").json()
    assert (flagged["answer"], flagged["flagged"]) == ("b", True)

    unflagged = api.put(answer_url, {"flagged": False}, format="json")

    assert unflagged.status_code == 200
    assert (unflagged.json()["answer"], unflagged.json()["flagged"]) == ("b", False)
    assert stored_row()[:3] == ("b", None, False)
    detail = api.get(f"/api/v1/sessions/{session['id']}/").json()
    assert detail["questions"][0]["flagged"] is False and detail["questions"][0]["answer"] == "b"


def test_a_flag_alone_on_an_unanswered_question_leaves_it_unanswered(api, answer_url):
    assert api.put(answer_url, {"flagged": True}, format="json").json()["answer"] is None
    assert api.put(answer_url, {"flagged": False}, format="json").json()["flagged"] is False
    assert stored_row()[:3] == (None, None, False)


def test_malformed_json_on_an_answer_is_a_400_and_the_stored_answer_is_kept(api, answer_url):
    api.put(answer_url, {"option": "b", "seq": 2}, format="json")
    before = stored_row()

    response = api.generic("PUT", answer_url, '{"option": "c", "seq": ', content_type="application/json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "parse_error" and body["detail"]
    assert stored_row() == before

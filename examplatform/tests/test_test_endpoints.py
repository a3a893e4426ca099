import pytest
from rest_framework.test import APIClient

from examplatform.testing import app_server, http_json
from sessions_app.models import SessionAnswer, SessionQuestion
from sessions_app.tests.factories import ExamSessionFactory, QuestionFactory


def test_the_bench_endpoints_are_not_served_by_default(db):
    assert APIClient().put("/test/bench/upsert/1/1/", {"option": "a"}, format="json").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_the_upsert_ceiling_writes_one_answer_row_when_enabled():
    question = QuestionFactory()
    session = ExamSessionFactory(question_count=1)
    SessionQuestion.objects.create(session=session, question=question, position=1)
    with app_server(env={"ENABLE_TEST_ENDPOINTS": "true"}, workers=1) as server:
        url = f"{server.url}/test/bench/upsert/{session.pk}/{question.pk}/"
        assert http_json("PUT", url, body={"option": "a"}).body == {"question": question.pk, "answer": "a"}
        assert http_json("PUT", url, body={"option": "c"}).status == 200
    assert list(SessionAnswer.objects.values_list("session_id", "chosen_option")) == [(session.pk, "c")]

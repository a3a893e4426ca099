from datetime import UTC, datetime

import pytest

from sessions_app.models import ExamSession, Question
from sessions_app.serializers import AnswerSerializer, answer_body
from sessions_app.services import RecordedAnswer


def recorded(*, mode: str, option, seq=3, stale=False) -> RecordedAnswer:
    question = Question(pk=7, correct_option="b", explanation="Because B.", options=[])
    session = ExamSession(pk=1, mode=mode, status=ExamSession.Status.ACTIVE)
    answered_at = datetime(2026, 5, 4, 9, 30, 1, 123456, tzinfo=UTC)
    return RecordedAnswer(question, session, option, option == "b", True, seq, answered_at, stale=stale)


@pytest.mark.parametrize(
    "answer",
    [
        recorded(mode="timed", option="a"),
        recorded(mode="timed", option=None, seq=None, stale=True),
        recorded(mode="tutor", option="b"),
        recorded(mode="tutor", option=None),
    ],
)
def test_the_answer_body_is_byte_for_byte_what_the_serializer_renders(answer):
    body = {"question": answer.question.pk, "answer": answer.option, "flagged": answer.flagged, "seq": answer.seq,
            "answered_at": answer.answered_at, "stale": answer.stale}
    if answer.session.mode == "tutor" and answer.option is not None:
        body.update(is_correct=answer.is_correct, correct_option="b", explanation="Because B.")
    expected = AnswerSerializer(body).data
    assert answer_body(answer) == expected
    assert list(answer_body(answer)) == list(expected)  # same key order, so the same JSON bytes

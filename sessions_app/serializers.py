"""Input and output shapes of the student API; no logic beyond what to show when."""

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .models import ExamSession


class StrictIntegerField(serializers.IntegerField):
    """An integer, not a string or a float that looks like one."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class BlockSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    question_count = serializers.IntegerField()


class ThemeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    block = serializers.IntegerField(source="block_id")
    name = serializers.CharField()
    question_count = serializers.IntegerField()


class ThemeQuerySerializer(serializers.Serializer):
    block = serializers.IntegerField(required=False, min_value=1)


class SessionCreateSerializer(serializers.Serializer):
    block = StrictIntegerField(required=False, allow_null=True, min_value=1)
    themes = serializers.ListField(child=StrictIntegerField(min_value=1), required=False, max_length=100)
    count = StrictIntegerField(min_value=1)
    mode = serializers.ChoiceField(choices=ExamSession.Mode.choices)
    time_limit = StrictIntegerField(required=False, allow_null=True, min_value=30, max_value=24 * 3600)

    def validate_count(self, count: int) -> int:
        if count > settings.EXAM_MAX_QUESTIONS:
            raise serializers.ValidationError(f"At most {settings.EXAM_MAX_QUESTIONS} questions.", code="max_value")
        return count


class AnswerInputSerializer(serializers.Serializer):
    option = serializers.CharField(required=False, allow_null=True, max_length=8)
    flagged = serializers.BooleanField(required=False)
    seq = StrictIntegerField(required=False, min_value=1, max_value=2**31 - 1)

    def validate(self, attrs):
        if "option" not in attrs and "flagged" not in attrs:
            raise serializers.ValidationError("Send `option`, `flagged` or both.", code="empty_answer")
        return attrs


@extend_schema_field(
    {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "string"}, "text": {"type": "string"}}}}
)
class OptionsField(serializers.JSONField):
    pass


class SessionQuestionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    position = serializers.IntegerField()
    stem = serializers.CharField()
    options = OptionsField()
    answer = serializers.CharField(allow_null=True)
    flagged = serializers.BooleanField()
    # Shown in tutor mode once answered, and for every question after submit.
    is_correct = serializers.BooleanField(required=False)
    correct_option = serializers.CharField(required=False)
    explanation = serializers.CharField(required=False)


class SessionSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = ExamSession
        fields = [
            "id", "mode", "status", "question_count", "created_at", "time_limit_seconds", "deadline",
            "submitted_at", "score",
        ]


class SessionSerializer(SessionSummarySerializer):
    filters = serializers.JSONField()
    questions = SessionQuestionSerializer(many=True)

    class Meta(SessionSummarySerializer.Meta):
        fields = [*SessionSummarySerializer.Meta.fields, "filters", "questions"]


class AnswerSerializer(serializers.Serializer):
    question = serializers.IntegerField()
    answer = serializers.CharField(allow_null=True)
    flagged = serializers.BooleanField()
    seq = serializers.IntegerField(allow_null=True)
    answered_at = serializers.DateTimeField()
    stale = serializers.BooleanField(help_text="True when a newer write was already stored; this one was ignored.")
    is_correct = serializers.BooleanField(required=False)
    correct_option = serializers.CharField(required=False)
    explanation = serializers.CharField(required=False)


class ResultSerializer(serializers.Serializer):
    session = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ExamSession.Status.choices)
    correct = serializers.IntegerField()
    answered = serializers.IntegerField()
    total = serializers.IntegerField()
    score = serializers.FloatField()
    submitted_at = serializers.DateTimeField()


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()


def reveals_answers(session: ExamSession, *, answered: bool) -> bool:
    """Correct option and explanation: after the session closes, or in tutor mode once answered."""
    return session.status != ExamSession.Status.ACTIVE or (session.mode == ExamSession.Mode.TUTOR and answered)


def question_rows(session: ExamSession, questions, answers) -> list[dict]:
    rows = []
    for question in questions:
        answer = answers.get(question.pk)
        chosen = answer.chosen_option if answer else None
        row = {
            "id": question.pk,
            "position": question.position,
            "stem": question.stem,
            "options": question.options,
            "answer": chosen,
            "flagged": answer.flagged if answer else False,
        }
        if reveals_answers(session, answered=chosen is not None):
            row.update(
                is_correct=answer.is_correct if answer else False,
                correct_option=question.correct_option,
                explanation=question.explanation,
            )
        rows.append(row)
    return rows


def _datetime(value) -> str:
    """What DRF's DateTimeField renders: ISO 8601 in the current time zone, UTC as "Z"."""
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def answer_body(recorded) -> dict:
    """AnswerSerializer's output, built directly: the answer is the hottest path and a DRF
    serializer instance deep-copies its fields on every use (~5% of the request's CPU)."""
    body = {
        "question": recorded.question.pk,
        "answer": None if recorded.option is None else str(recorded.option),
        "flagged": bool(recorded.flagged),
        "seq": recorded.seq,
        "answered_at": _datetime(recorded.answered_at),
        "stale": bool(recorded.stale),
    }
    if reveals_answers(recorded.session, answered=recorded.option is not None):
        body.update(
            is_correct=bool(recorded.is_correct),
            correct_option=str(recorded.question.correct_option),
            explanation=str(recorded.question.explanation),
        )
    return body

from rest_framework import serializers


class RevisionQuerySerializer(serializers.Serializer):
    horizon_hours = serializers.IntegerField(required=False, min_value=0, max_value=24 * 365, default=0)


class RevisionItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    question = serializers.IntegerField(source="question_id")
    stem = serializers.CharField(source="question.stem")
    theme = serializers.IntegerField(source="question.theme_id")
    block = serializers.IntegerField(source="question.block_id")
    due_at = serializers.DateTimeField()
    reviews = serializers.IntegerField()


class MasterySerializer(serializers.Serializer):
    theme = serializers.IntegerField(source="theme_id")
    theme_name = serializers.CharField(source="theme.name")
    block = serializers.IntegerField(source="theme.block_id")
    block_name = serializers.CharField(source="theme.block.name")
    attempts = serializers.IntegerField()
    correct = serializers.IntegerField()
    mastery = serializers.FloatField()
    updated_at = serializers.DateTimeField()


class HistoryItemSerializer(serializers.Serializer):
    session = serializers.IntegerField(source="id")
    mode = serializers.CharField()
    status = serializers.CharField()
    question_count = serializers.IntegerField()
    score = serializers.FloatField()
    created_at = serializers.DateTimeField()
    submitted_at = serializers.DateTimeField()


class CohortQuerySerializer(serializers.Serializer):
    days = serializers.IntegerField(required=False, min_value=1, max_value=3650, help_text="only the last N days")
    block = serializers.IntegerField(required=False, min_value=1)
    hardest = serializers.IntegerField(required=False, min_value=0, max_value=20, default=3)
    min_attempts = serializers.IntegerField(required=False, min_value=1, max_value=100000, default=5)


class HardQuestionSerializer(serializers.Serializer):
    question = serializers.IntegerField(source="question_id")
    stem = serializers.CharField()
    attempts = serializers.IntegerField()
    correct = serializers.IntegerField()
    correct_rate = serializers.FloatField()


class CohortThemeSerializer(serializers.Serializer):
    theme = serializers.IntegerField()
    theme_name = serializers.CharField()
    block = serializers.IntegerField()
    block_name = serializers.CharField()
    attempts = serializers.IntegerField()
    correct = serializers.IntegerField()
    correct_rate = serializers.FloatField()
    students = serializers.IntegerField()
    hardest = HardQuestionSerializer(many=True)

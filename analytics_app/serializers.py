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

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.pagination import CursorPagination, LimitOffsetPagination
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from examplatform import exam_mode
from sessions_app.serializers import ErrorSerializer

from . import selectors
from .serializers import (
    CohortQuerySerializer,
    CohortThemeSerializer,
    HistoryItemSerializer,
    MasterySerializer,
    RevisionItemSerializer,
    RevisionQuerySerializer,
)


class IsStaff(IsAdminUser):
    """IsAdminUser checked against the users table: access tokens carry no staff claim, and losing
    staff status must take effect at once, not when the token expires."""

    def has_permission(self, request, view):
        user = request.user
        if user is None or not user.is_authenticated:
            return False
        return get_user_model().objects.filter(pk=user.id, is_staff=True, is_active=True).exists()


class PausedInExamMode:
    """A heavy view: 503 with code "exam_mode" and Retry-After while exam mode is on.

    Checked after authentication and permissions, so a student still gets the 403 that tells the truth.
    """

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        exam_mode.ensure_off()


class RevisionQueueApi(APIView):
    """What is due for me now (or within `horizon_hours`), soonest first."""

    @extend_schema(parameters=[RevisionQuerySerializer], responses=RevisionItemSerializer(many=True))
    def get(self, request):
        query = RevisionQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        due_by = timezone.now() + timedelta(hours=query.validated_data["horizon_hours"])
        paginator = LimitOffsetPagination()
        paginator.default_limit = 50
        paginator.max_limit = 200
        items = selectors.due_revisions(user_id=request.user.id, due_by=due_by)
        page = paginator.paginate_queryset(items, request, view=self)
        return paginator.get_paginated_response(RevisionItemSerializer(page, many=True).data)


class MasteryApi(APIView):
    """My mastery of each theme I have met. One indexed query of a few rows: served in exam mode too.

    While exam mode is on, sessions submitted since it started are counted once drain_recalc has run.
    """

    @extend_schema(responses=MasterySerializer(many=True))
    def get(self, request):
        return Response(MasterySerializer(selectors.theme_mastery(user_id=request.user.id), many=True).data)


class HistoryPagination(CursorPagination):
    ordering = "-created_at"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class HistoryApi(APIView):
    """My graded sessions with their scores, newest first. One indexed page read: served in exam mode too."""

    @extend_schema(responses=HistoryItemSerializer(many=True))
    def get(self, request):
        paginator = HistoryPagination()
        page = paginator.paginate_queryset(selectors.graded_history(user_id=request.user.id), request, view=self)
        return paginator.get_paginated_response(HistoryItemSerializer(page, many=True).data)


class CohortApi(PausedInExamMode, APIView):
    """Staff: per theme, attempts, correct rate, students and the hardest questions. Heavy: paused in exam mode."""

    permission_classes = [IsStaff]

    @extend_schema(
        parameters=[CohortQuerySerializer],
        responses={200: CohortThemeSerializer(many=True), 403: ErrorSerializer, 503: ErrorSerializer},
    )
    def get(self, request):
        query = CohortQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        since = timezone.now() - timedelta(days=data["days"]) if "days" in data else None
        themes = selectors.cohort_overview(
            since=since, block_id=data.get("block"), hardest=data["hardest"], min_attempts=data["min_attempts"]
        )
        return Response(CohortThemeSerializer(themes, many=True).data)

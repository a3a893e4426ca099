from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.views import APIView

from . import selectors
from .serializers import RevisionItemSerializer, RevisionQuerySerializer


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

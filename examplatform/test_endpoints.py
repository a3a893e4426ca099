"""Endpoints for tests and benchmarks only, mounted under /test/ when ENABLE_TEST_ENDPOINTS is true.

Never enable them in production: they skip authentication on purpose.
"""

import time

from django.db import connection
from django.http import JsonResponse
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from sessions_app.models import SessionAnswer


class UpsertCeilingApi(APIView):
    """The benchmark's ceiling: DRF routing, JSON in and out, and exactly one upsert, nothing else.

    It writes the same table and conflict target as the answer endpoint, so the
    answer's throughput divided by this one's is the price of everything else
    the answer path does (auth, ownership and state checks, validation).
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def put(self, request, session_id: int, question_id: int):
        option = str(request.data.get("option", "a"))[:8]
        table = SessionAnswer._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (session_id, question_id, chosen_option, is_correct, flagged, seq,"
                " first_answered_at, answered_at) VALUES (%s, %s, %s, false, false, NULL, now(), now())"
                " ON CONFLICT (session_id, question_id) DO UPDATE SET chosen_option = EXCLUDED.chosen_option,"
                " answered_at = EXCLUDED.answered_at RETURNING chosen_option",
                [session_id, question_id, option],
            )
            stored = cursor.fetchone()[0]
        return Response({"question": question_id, "answer": stored})


def slow(request):
    """Answers after ?seconds= (at most 60): a request still in flight for shutdown, timeout and shedding tests."""
    try:
        seconds = min(max(float(request.GET.get("seconds", "1")), 0.0), 60.0)
    except ValueError:
        return JsonResponse({"detail": "seconds must be a number", "code": "invalid"}, status=400)
    time.sleep(seconds)
    return JsonResponse({"slept": seconds})


def slow_sql(request):
    """Runs pg_sleep(?seconds=) (at most 5) beside an inlined literal and a bound parameter.

    The slow_sql log record must show the query's shape and neither of the two values.
    """
    try:
        seconds = min(max(float(request.GET.get("seconds", "0.2")), 0.0), 5.0)
    except ValueError:
        return JsonResponse({"detail": "seconds must be a number", "code": "invalid"}, status=400)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s), 'inlined-secret' <> %s", [seconds, request.GET.get("secret", "")])
    return JsonResponse({"slept": seconds})


urlpatterns = [
    path("slow/", slow, name="test-slow"),
    path("slow-sql/", slow_sql, name="test-slow-sql"),
    path("bench/upsert/<int:session_id>/<int:question_id>/", UpsertCeilingApi.as_view(), name="bench-upsert"),
]

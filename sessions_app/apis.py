"""Student API: validate, call one service or selector, serialize."""

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors, services
from .exceptions import SessionNotSubmitted
from .models import ExamSession
from .serializers import (
    AnswerInputSerializer,
    AnswerSerializer,
    BlockSerializer,
    ErrorSerializer,
    ResultSerializer,
    SessionCreateSerializer,
    SessionSerializer,
    SessionSummarySerializer,
    ThemeQuerySerializer,
    ThemeSerializer,
    answer_body,
    question_rows,
)

REPLAY_HEADER = "Idempotent-Replayed"


class BlockListApi(APIView):
    @extend_schema(responses=BlockSerializer(many=True))
    def get(self, request):
        return Response(BlockSerializer(selectors.blocks_with_counts(), many=True).data)


class ThemeListApi(APIView):
    @extend_schema(parameters=[ThemeQuerySerializer], responses=ThemeSerializer(many=True))
    def get(self, request):
        query = ThemeQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        themes = selectors.themes_with_counts(block_id=query.validated_data.get("block"))
        return Response(ThemeSerializer(themes, many=True).data)


class HistoryPagination(CursorPagination):
    ordering = "-created_at"
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


def _close_if_overdue(session: ExamSession, *, now) -> ExamSession:
    """Reading an overdue session closes it: the deadline holds even if cron is late."""
    if session.status == ExamSession.Status.ACTIVE and services.is_overdue(session, now=now):
        services.expire_session(session_id=session.pk, now=now)
        session.refresh_from_db()
    return session


def session_body(session: ExamSession, questions=None) -> dict:
    if questions is None:
        questions = selectors.session_questions(session_id=session.pk)
    answers = selectors.session_answers(session_id=session.pk)
    session.questions = question_rows(session, questions, answers)
    return SessionSerializer(session).data


class SessionListCreateApi(APIView):
    @extend_schema(responses=SessionSummarySerializer(many=True))
    def get(self, request):
        paginator = HistoryPagination()
        page = paginator.paginate_queryset(selectors.session_history(user_id=request.user.id), request, view=self)
        now = timezone.now()
        page = [_close_if_overdue(session, now=now) for session in page]
        return paginator.get_paginated_response(SessionSummarySerializer(page, many=True).data)

    @extend_schema(
        request=SessionCreateSerializer,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        responses={201: SessionSerializer, 400: ErrorSerializer, 422: ErrorSerializer},
    )
    def post(self, request):
        payload = SessionCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        key = request.headers.get("Idempotency-Key", "").strip()[:255] or None
        started = services.start_session(
            user_id=request.user.id,
            mode=data["mode"],
            count=data["count"],
            block_id=data.get("block"),
            theme_ids=data.get("themes"),
            time_limit_seconds=data.get("time_limit"),
            now=timezone.now(),
            idempotency_key=key,
            request_hash=services.request_fingerprint(data) if key else "",
        )
        if started.replayed:
            body = session_body(started.session, started.questions)
        else:
            started.session.questions = question_rows(started.session, started.questions, {})
            body = SessionSerializer(started.session).data
        response = Response(body, status=status.HTTP_201_CREATED)
        if key:
            response[REPLAY_HEADER] = str(started.replayed).lower()
        return response


class SessionDetailApi(APIView):
    @extend_schema(responses={200: SessionSerializer, 404: ErrorSerializer})
    def get(self, request, session_id: int):
        session = selectors.session_for_user(user_id=request.user.id, session_id=session_id)
        return Response(session_body(_close_if_overdue(session, now=timezone.now())))


class AnswerApi(APIView):
    @extend_schema(
        request=AnswerInputSerializer,
        responses={200: AnswerSerializer, 404: ErrorSerializer, 409: ErrorSerializer},
    )
    def put(self, request, session_id: int, question_id: int):
        payload = AnswerInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        recorded = services.record_answer(
            user_id=request.user.id,
            session_id=session_id,
            question_id=question_id,
            now=timezone.now(),
            **payload.validated_data,
        )
        return Response(answer_body(recorded))


class SubmitApi(APIView):
    @extend_schema(
        request=None,
        responses={200: ResultSerializer, 404: ErrorSerializer, 409: ErrorSerializer},
    )
    def post(self, request, session_id: int):
        graded = services.submit_session(user_id=request.user.id, session_id=session_id, now=timezone.now())
        response = Response(services.result_body(graded.result))
        response[REPLAY_HEADER] = str(not graded.created).lower()
        return response


class ReviewApi(APIView):
    @extend_schema(
        responses={200: SessionSerializer, 404: ErrorSerializer, 409: ErrorSerializer},
    )
    def get(self, request, session_id: int):
        session = selectors.session_for_user(user_id=request.user.id, session_id=session_id)
        session = _close_if_overdue(session, now=timezone.now())
        if session.status == ExamSession.Status.ACTIVE:
            raise SessionNotSubmitted()
        body = session_body(session)
        body["result"] = services.result_body(selectors.session_result(session_id=session.pk))
        return Response(body)

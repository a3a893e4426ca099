"""Writes on the student path: start a session, record an answer, submit, expire.

Every invariant that a race could break is held by the database: one answer row
per (session, question) and one result per session are unique constraints that
the writes upsert against; an answer can't land in a session being graded
because the answer's upsert takes a share lock on the session row that grading
holds exclusively.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from examplatform.db import db_datetime, insert_ignore_conflict

from . import answer_sql, selectors
from .exceptions import (
    DeadlinePassed,
    IdempotencyKeyReused,
    InvalidFilter,
    InvalidOption,
    NoQuestions,
    QuestionInactive,
    QuestionNotInSession,
    SessionNotFound,
    SessionSubmitted,
)
from .models import ExamSession, IdempotencyKey, Question, SessionAnswer, SessionQuestion, SessionResult, Theme


def grace() -> timedelta:
    return timedelta(seconds=settings.EXAM_DEADLINE_GRACE_SECONDS)


def is_overdue(session: ExamSession, *, now: datetime) -> bool:
    """Past the deadline plus the grace that covers requests already in flight."""
    return session.deadline is not None and now > session.deadline + grace()


# --- Starting a session -----------------------------------------------------


@dataclass(frozen=True)
class StartedSession:
    session: ExamSession
    questions: list[Question]
    replayed: bool


def request_fingerprint(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def _check_filter(*, block_id: int | None, theme_ids: list[int]) -> None:
    if not theme_ids:
        return
    themes = Theme.objects.filter(pk__in=theme_ids)
    if block_id is not None:
        themes = themes.filter(block_id=block_id)
    if themes.count() != len(set(theme_ids)):
        raise InvalidFilter()


@transaction.atomic
def start_session(
    *,
    user_id: int,
    mode: str,
    count: int,
    now: datetime,
    block_id: int | None = None,
    theme_ids: list[int] | None = None,
    time_limit_seconds: int | None = None,
    idempotency_key: str | None = None,
    request_hash: str = "",
) -> StartedSession:
    """Draw questions and open a session; a retry with the same key returns the first session."""
    theme_ids = sorted(set(theme_ids or []))
    if idempotency_key:
        key_id = insert_ignore_conflict(
            IdempotencyKey,
            conflict=("user", "key"),
            values={"user": user_id, "key": idempotency_key, "request_hash": request_hash, "created_at": now},
        )
        if key_id is None:
            return _replay_start(user_id=user_id, key=idempotency_key, request_hash=request_hash)

    questions = selectors.draw_questions(user_id=user_id, block_id=block_id, theme_ids=theme_ids, count=count)
    if not questions:
        _check_filter(block_id=block_id, theme_ids=theme_ids)
        raise NoQuestions()
    if mode == ExamSession.Mode.TIMED and time_limit_seconds is None:
        time_limit_seconds = len(questions) * settings.EXAM_SECONDS_PER_QUESTION
    if mode == ExamSession.Mode.TUTOR:
        time_limit_seconds = None
    session = ExamSession.objects.create(
        user_id=user_id,
        mode=mode,
        filters={"block": block_id, "themes": theme_ids, "count": count},
        question_count=len(questions),
        created_at=now,
        time_limit_seconds=time_limit_seconds,
        deadline=now + timedelta(seconds=time_limit_seconds) if time_limit_seconds else None,
    )
    SessionQuestion.objects.bulk_create(
        SessionQuestion(session=session, question=question, position=position)
        for position, question in enumerate(questions, start=1)
    )
    for position, question in enumerate(questions, start=1):
        question.position = position
    if idempotency_key:
        IdempotencyKey.objects.filter(pk=key_id).update(session=session)
    return StartedSession(session=session, questions=questions, replayed=False)


def _replay_start(*, user_id: int, key: str, request_hash: str) -> StartedSession:
    stored = IdempotencyKey.objects.select_related("session").get(user_id=user_id, key=key)
    if stored.request_hash != request_hash:
        raise IdempotencyKeyReused()
    return StartedSession(
        session=stored.session,
        questions=selectors.session_questions(session_id=stored.session_id),
        replayed=True,
    )


def purge_idempotency_keys(*, now: datetime, dry_run: bool = False) -> int:
    expired = IdempotencyKey.objects.filter(
        created_at__lt=now - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    )
    return expired.count() if dry_run else expired.delete()[0]


# --- Answering ---------------------------------------------------------------


@dataclass(frozen=True)
class RecordedAnswer:
    question: Question
    session: ExamSession
    option: str | None
    is_correct: bool
    flagged: bool
    seq: int | None
    answered_at: datetime
    # True when the write was older than the stored one and so ignored.
    stale: bool


_UNSET = object()


def record_answer(
    *,
    user_id: int,
    session_id: int,
    question_id: int,
    now: datetime,
    option: str | None | object = _UNSET,
    flagged: bool | None = None,
    seq: int | None = None,
) -> RecordedAnswer:
    """Upsert the student's answer and/or flag: one statement on PostgreSQL, no transaction.

    A write with a `seq` no newer than the stored one changes nothing and
    returns the stored answer, so a late retry can't undo a newer choice.
    """
    write = answer_sql.AnswerWrite(
        user_id=user_id, session_id=session_id, question_id=question_id, now=now, cutoff=now - grace(),
        set_option=option is not _UNSET, option=None if option is _UNSET else option, flagged=flagged, seq=seq,
    )
    if connection.vendor == "postgresql":
        target, row = answer_sql.check_and_upsert(write)
    else:
        target, row = _upsert_after_checks(write)
    if target is None:
        selectors.session_for_user(user_id=user_id, session_id=session_id)  # 404 for a foreign session
        raise QuestionNotInSession()
    session, question = target
    if row is not None:
        return RecordedAnswer(question, session, *_from_db(row), stale=False)

    # Nothing written: the session or question refuses writes, or the write was stale.
    _ensure_writable(session, question, write)
    stored = SessionAnswer.objects.get(session_id=session.pk, question_id=question.pk)
    return RecordedAnswer(
        question, session, stored.chosen_option, stored.is_correct, stored.flagged, stored.seq,
        stored.answered_at, stale=True,
    )


def _ensure_writable(session: ExamSession, question: Question, write: answer_sql.AnswerWrite) -> None:
    """Raise the reason an answer can't be written (answer_sql.check_and_upsert mirrors these checks in SQL)."""
    _ensure_open(session, now=write.now)
    if not question.is_active:
        raise QuestionInactive()
    if write.option_to_check is not None and write.option_to_check not in question.option_ids:
        raise InvalidOption()


def _upsert_after_checks(write: answer_sql.AnswerWrite):
    """Other databases (the embedded SQLite demo): read the target, check it, then upsert."""
    target = selectors.answer_target(user_id=write.user_id, session_id=write.session_id, question_id=write.question_id)
    if target is None:
        return None, None
    session, question = target
    _ensure_writable(session, question, write)
    row = answer_sql.upsert(write, question=question)
    if row is None:  # the session closed under us, or the write was stale
        session.refresh_from_db(fields=["status", "deadline"])
    return target, row


def _from_db(row) -> tuple:
    option, is_correct, flagged, seq, answered_at = row
    return option, bool(is_correct), bool(flagged), seq, db_datetime(answered_at)


def _ensure_open(session: ExamSession, *, now: datetime) -> None:
    """Raise unless the session takes writes; an overdue session is graded on the way."""
    if session.status == ExamSession.Status.SUBMITTED:
        raise SessionSubmitted()
    if session.status == ExamSession.Status.EXPIRED:
        raise DeadlinePassed()
    if is_overdue(session, now=now):
        expire_session(session_id=session.pk, now=now)
        raise DeadlinePassed()


# --- Grading -----------------------------------------------------------------


@dataclass(frozen=True)
class Graded:
    result: SessionResult
    # False when the session had already been graded: this call is a replay.
    created: bool


def _grade_locked(*, session: ExamSession, status: str, now: datetime) -> Graded:
    """Grade a session whose row the caller has locked; the unique result row decides who grades.

    The result is computed and inserted in one statement; if a result exists
    the insert does nothing and the stored one is returned.
    """
    results, answers = SessionResult._meta.db_table, SessionAnswer._meta.db_table
    sql = (
        f"INSERT INTO {results} (session_id, status, correct, answered, total, submitted_at)"
        " SELECT %s, %s, COALESCE(SUM(CASE WHEN is_correct THEN 1 ELSE 0 END), 0), COUNT(chosen_option), %s, %s"
        f" FROM {answers} WHERE session_id = %s"
        " ON CONFLICT (session_id) DO NOTHING RETURNING id, correct, answered"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [session.pk, status, session.question_count, now, session.pk])
        row = cursor.fetchone()
    if row is None:
        return Graded(result=selectors.session_result(session_id=session.pk), created=False)
    result = SessionResult(
        id=row[0], session=session, status=status, correct=row[1], answered=row[2],
        total=session.question_count, submitted_at=now,
    )
    ExamSession.objects.filter(pk=session.pk).update(
        status=status, submitted_at=now, score=result.score_percent
    )
    session.status, session.submitted_at, session.score = status, now, result.score_percent
    from analytics_app.services import enqueue_session_analytics

    enqueue_session_analytics(session=session, now=now)
    return Graded(result=result, created=True)


def submit_session(*, user_id: int, session_id: int, now: datetime) -> Graded:
    """Grade the session once; every repeat returns the same result.

    A submit past the deadline plus grace grades the session as expired and
    raises DeadlinePassed carrying the result.
    """
    with transaction.atomic():
        session = selectors.session_for_user(user_id=user_id, session_id=session_id, for_update=True)
        late = session.status == ExamSession.Status.ACTIVE and is_overdue(session, now=now)
        status = ExamSession.Status.EXPIRED if late else ExamSession.Status.SUBMITTED
        graded = _grade_locked(session=session, status=status, now=now)
    if graded.result.status == ExamSession.Status.EXPIRED:
        raise DeadlinePassed(extra={"result": result_body(graded.result)})
    return graded


def expire_session(*, session_id: int, now: datetime) -> Graded | None:
    """Grade an overdue session as expired; None when it is not overdue or already closed."""
    with transaction.atomic():
        try:
            session = ExamSession.objects.select_for_update().get(pk=session_id)
        except ExamSession.DoesNotExist:
            raise SessionNotFound() from None
        if session.status != ExamSession.Status.ACTIVE or not is_overdue(session, now=now):
            return None
        return _grade_locked(session=session, status=ExamSession.Status.EXPIRED, now=now)


def expire_overdue_sessions(*, now: datetime, batch_size: int = 500, dry_run: bool = False) -> int:
    """Close every session past its deadline plus grace; safe to run in several copies at once.

    Each batch claims its sessions with SKIP LOCKED, so concurrent runs split the
    work instead of waiting on (or grading) the same rows.
    """
    overdue = ExamSession.objects.filter(status=ExamSession.Status.ACTIVE, deadline__lt=now - grace())
    if dry_run:
        return overdue.count()
    expired = 0
    while True:
        with transaction.atomic():
            batch = list(overdue.select_for_update(skip_locked=True).order_by("deadline")[:batch_size])
            for session in batch:
                _grade_locked(session=session, status=ExamSession.Status.EXPIRED, now=now)
        expired += len(batch)
        if len(batch) < batch_size:
            return expired


def result_body(result: SessionResult) -> dict:
    """The submit reply: the same bytes for the first submit and every replay."""
    return {
        "session": result.session_id,
        "status": result.status,
        "correct": result.correct,
        "answered": result.answered,
        "total": result.total,
        "score": result.score_percent,
        "submitted_at": result.submitted_at.isoformat().replace("+00:00", "Z"),
    }


# --- Staff -------------------------------------------------------------------


def set_questions_active(*, question_ids: list[int], active: bool) -> int:
    return Question.objects.filter(pk__in=question_ids).update(is_active=active)

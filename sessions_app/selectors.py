"""Reads for the student path; each returns what its caller needs in a fixed number of queries."""

import json

from django.db import connection
from django.db.models import Count, Q, QuerySet

from examplatform.db import db_datetime

from .exceptions import SessionNotFound
from .models import Block, ExamSession, Question, SessionAnswer, SessionQuestion, SessionResult, Theme


def blocks_with_counts() -> QuerySet[Block]:
    return Block.objects.annotate(question_count=Count("questions", filter=Q(questions__is_active=True)))


def themes_with_counts(*, block_id: int | None = None) -> QuerySet[Theme]:
    themes = Theme.objects.annotate(question_count=Count("questions", filter=Q(questions__is_active=True)))
    return themes.filter(block_id=block_id) if block_id is not None else themes


def session_history(*, user_id: int) -> QuerySet[ExamSession]:
    # Served by sessions_es_user_created_idx.
    return ExamSession.objects.filter(user_id=user_id).defer("filters")


def session_for_user(*, user_id: int, session_id: int, for_update: bool = False) -> ExamSession:
    """The user's session; another user's session is indistinguishable from a missing one."""
    sessions = ExamSession.objects.select_for_update() if for_update else ExamSession.objects
    try:
        return sessions.get(pk=session_id, user_id=user_id)
    except ExamSession.DoesNotExist:
        raise SessionNotFound() from None


def session_questions(*, session_id: int) -> list[Question]:
    """The session's questions in the order drawn, each with its `position`."""
    rows = SessionQuestion.objects.filter(session_id=session_id).select_related("question").order_by("position")
    questions = []
    for row in rows:
        row.question.position = row.position
        questions.append(row.question)
    return questions


def session_answers(*, session_id: int) -> dict[int, SessionAnswer]:
    return {answer.question_id: answer for answer in SessionAnswer.objects.filter(session_id=session_id)}


def session_result(*, session_id: int) -> SessionResult:
    return SessionResult.objects.get(session_id=session_id)


# Also the first half of the answer's one statement on PostgreSQL (answer_sql.check_and_upsert).
ANSWER_TARGET_SQL = f"""
    SELECT s.mode, s.status, s.deadline, q.options, q.correct_option, q.explanation, q.is_active
    FROM {SessionQuestion._meta.db_table} sq
    JOIN {ExamSession._meta.db_table} s ON s.id = sq.session_id
    JOIN {Question._meta.db_table} q ON q.id = sq.question_id
    WHERE sq.session_id = %(session)s AND sq.question_id = %(question)s AND s.user_id = %(user)s
"""


def answer_target(*, user_id: int, session_id: int, question_id: int) -> tuple[ExamSession, Question] | None:
    """The session and question an answer is about, in one query (None if either is missing).

    Hand-written SQL: this is the hottest read of exam day, and building the
    equivalent select_related query cost more Python time (~0.9 ms) than the
    query itself. Served by sessions_sq_session_question_uniq. On PostgreSQL the
    answer's write runs it inside its upsert instead (answer_sql.check_and_upsert).
    """
    with connection.cursor() as cursor:
        cursor.execute(ANSWER_TARGET_SQL, {"session": session_id, "question": question_id, "user": user_id})
        row = cursor.fetchone()
    if row is None:
        return None
    return answer_target_from_row(row, user_id=user_id, session_id=session_id, question_id=question_id)


def answer_target_from_row(row, *, user_id: int, session_id: int, question_id: int) -> tuple[ExamSession, Question]:
    """(mode, status, deadline, options, correct_option, explanation, is_active) as the session and question."""
    mode, status, deadline, options, correct_option, explanation, is_active = row
    if isinstance(options, str):  # SQLite and psycopg's jsonb text both come back unparsed
        options = json.loads(options)
    session = ExamSession(id=session_id, user_id=user_id, mode=mode, status=status, deadline=db_datetime(deadline))
    question = Question(
        id=question_id, options=options, correct_option=correct_option, explanation=explanation,
        is_active=bool(is_active),
    )
    return session, question


def draw_questions(
    *, user_id: int, block_id: int | None, theme_ids: list[int], count: int
) -> list[Question]:
    """Random active questions, unseen ones first, then ones never answered right, then the rest.

    The student's own answers are aggregated in a derived table first (their
    sessions by sessions_es_user_created_idx, then those sessions' answers by
    sessions_sa_session_idx), so the cost follows one student's history, not the
    answers table. On PostgreSQL the session ids go in as an array: with a join
    there, stale statistics let the planner hash-join every answer in the table
    (18 ms at 100k answers, 8 creates/s at 500k; 1-2 ms this way).
    """
    where, params = ["q.is_active"], [user_id]
    if block_id is not None:
        where.append("q.block_id = %s")
        params.append(block_id)
    if theme_ids:
        where.append(f"q.theme_id IN ({', '.join(['%s'] * len(theme_ids))})")
        params.extend(theme_ids)
    own_sessions = (_OWN_SESSIONS_PG if connection.vendor == "postgresql" else _OWN_SESSIONS).format(
        sessions=ExamSession._meta.db_table
    )
    sql = _DRAW_SQL.format(own_sessions=own_sessions, where=" AND ".join(where))
    return list(Question.objects.raw(sql, [*params, count]))


_OWN_SESSIONS = "IN (SELECT s.id FROM {sessions} s WHERE s.user_id = %s)"
_OWN_SESSIONS_PG = "= ANY(ARRAY(SELECT s.id FROM {sessions} s WHERE s.user_id = %s))"
_DRAW_SQL = f"""
    SELECT q.id, q.stem, q.options, q.theme_id, q.block_id
    FROM {Question._meta.db_table} q
    LEFT JOIN (
        SELECT a.question_id, MAX(CASE WHEN a.is_correct THEN 1 ELSE 0 END) AS answered_right
        FROM {SessionAnswer._meta.db_table} a
        WHERE a.session_id {{own_sessions}}
        GROUP BY a.question_id
    ) mine ON mine.question_id = q.id
    WHERE {{where}}
    ORDER BY mine.question_id IS NOT NULL, COALESCE(mine.answered_right, 0), RANDOM()
    LIMIT %s
"""

"""EXPLAIN (ANALYZE, BUFFERS) of the student path's queries on the bench database, for docs/performance.md.

Picks a real session of a user with many sessions, runs each query as the app
builds it, and prints the plans; writes (the answer upsert, grading) run inside a
transaction that is rolled back. Usage: python explain.py
"""

import contextlib
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examplatform.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from examplatform.errors import DomainError  # noqa: E402
from sessions_app import selectors, services  # noqa: E402
from sessions_app.models import ExamSession, SessionAnswer, SessionQuestion, SessionResult  # noqa: E402

OPTIONS = {"analyze": True, "buffers": True}


def sql_plan(sql: str, params) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def captured_plan(call, *, index: int = -1) -> str:
    """The plan of a query `call` runs (its last by default), as the app built it."""
    # A refusal (e.g. the session is closed) comes after the statement we want, which ran all the same.
    with CaptureQueriesContext(connection) as queries, contextlib.suppress(DomainError):
        call()
    return sql_plan(queries.captured_queries[index]["sql"], None)


def main() -> None:
    heavy = ExamSession.objects.values("user_id").annotate(n=Count("id")).order_by("-n").first()
    session = ExamSession.objects.filter(user_id=heavy["user_id"]).order_by("-id").first()
    question = SessionQuestion.objects.filter(session=session).first().question_id
    counts = {m.__name__: m.objects.count() for m in (ExamSession, SessionQuestion, SessionAnswer, SessionResult)}
    print(f"rows: {counts}; user {heavy['user_id']} has {heavy['n']} sessions; session {session.pk}\n")
    plans = {
        "detail/review: the session's questions (session_questions)": SessionQuestion.objects.filter(
            session_id=session.pk).select_related("question").order_by("position").explain(**OPTIONS),
        "detail/review: the session's answers (session_answers)": SessionAnswer.objects.filter(
            session_id=session.pk).explain(**OPTIONS),
        "history page (session_history)": selectors.session_history(user_id=session.user_id).order_by(
            "-created_at")[:21].explain(**OPTIONS),
        "create: draw questions (draw_questions)": captured_plan(
            lambda: selectors.draw_questions(user_id=session.user_id, block_id=None, theme_ids=[], count=10)),
        "expire_sessions: overdue active sessions": ExamSession.objects.filter(
            status="active", deadline__lt=timezone.now() - services.grace()).order_by("deadline")[:500].explain(
            **OPTIONS),
    }
    with transaction.atomic():
        t = SessionAnswer._meta.db_table
        # The statement record_answer runs, analysed (so executed) inside this rolled-back transaction.
        plans["answer: read, check and upsert in one statement (record_answer)"] = captured_plan(
            lambda: services.record_answer(user_id=session.user_id, session_id=session.pk, question_id=question,
                                           option="a", seq=2**31 - 1, now=timezone.now()), index=0)
        plans["submit: grade and insert the result"] = sql_plan(
            f"INSERT INTO {SessionResult._meta.db_table} (session_id, status, correct, answered, total, submitted_at)"
            " SELECT %s, 'submitted', COALESCE(SUM(CASE WHEN is_correct THEN 1 ELSE 0 END), 0), COUNT(chosen_option),"
            f" 10, now() FROM {t} WHERE session_id = %s ON CONFLICT (session_id) DO NOTHING RETURNING id",
            [session.pk, session.pk])
        transaction.set_rollback(True)
    for title, plan in plans.items():
        if plan:
            print(f"### {title}\n```\n{plan}\n```\n")


if __name__ == "__main__":
    main()

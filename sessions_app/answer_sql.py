"""The statements that write an answer (sessions_app.services.record_answer runs them).

Hand-written SQL: the answer is exam day's hottest write. On PostgreSQL one
statement reads the session and question, checks them and upserts; the portable
upsert serves the embedded SQLite demo after services has checked in Python.
Either way the upsert only lands while the session row is active (share-locked
on PostgreSQL, so grading, which locks it exclusively, can't run in between), and
a write with a `seq` no newer than the stored one changes nothing.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from examplatform.db import row_lock_clause

from . import selectors
from .models import ExamSession, Question, SessionAnswer


@dataclass(frozen=True)
class AnswerWrite:
    user_id: int
    session_id: int
    question_id: int
    now: datetime
    # The oldest deadline that still takes writes: now minus the grace for requests in flight.
    cutoff: datetime
    set_option: bool
    option: str | None
    flagged: bool | None
    seq: int | None

    @property
    def option_to_check(self) -> str | None:
        return self.option if self.set_option else None


def _upsert_sql(*, write: AnswerWrite, source: str, guard: str) -> str:
    """INSERT ... SELECT FROM `source` WHERE `guard` ON CONFLICT DO UPDATE, newer seq only."""
    table = SessionAnswer._meta.db_table
    updates = ["seq = COALESCE(EXCLUDED.seq, {t}.seq)", "answered_at = EXCLUDED.answered_at"]
    if write.set_option:
        updates += ["chosen_option = EXCLUDED.chosen_option", "is_correct = EXCLUDED.is_correct"]
    if write.flagged is not None:
        updates.append("flagged = EXCLUDED.flagged")
    return (
        f"INSERT INTO {table} (session_id, question_id, chosen_option, is_correct, flagged, seq,"
        " first_answered_at, answered_at)"
        f" SELECT %(session)s, %(question)s, %(option)s, {{is_correct}}, %(flagged)s, %(seq)s, %(now)s, %(now)s"
        f" FROM {source} WHERE {guard}"
        f" ON CONFLICT (session_id, question_id) DO UPDATE SET {', '.join(updates).format(t=table)}"
        f" WHERE EXCLUDED.seq IS NULL OR {table}.seq IS NULL OR EXCLUDED.seq > {table}.seq"
        " RETURNING chosen_option, is_correct, flagged, seq, answered_at"
    )


def _params(write: AnswerWrite, **extra) -> dict:
    return {
        "user": write.user_id, "session": write.session_id, "question": write.question_id,
        "option": write.option, "flagged": bool(write.flagged), "seq": write.seq, "now": write.now, **extra,
    }


# Share-locks the session row for the statement: grading locks it exclusively.
_TARGET = selectors.ANSWER_TARGET_SQL + " FOR SHARE OF s"
# services._ensure_writable's checks, in SQL: open, not overdue, question active, option of the question.
_WRITABLE = (
    "t.status = 'active' AND t.is_active AND (t.deadline IS NULL OR t.deadline >= %(cutoff)s)"
    " AND (%(check)s::text IS NULL OR t.options @> jsonb_build_array(jsonb_build_object('id', %(check)s::text)))"
)


def check_and_upsert(write: AnswerWrite):
    """PostgreSQL: ((session, question) or None, the written row or None), in one statement.

    Served by sessions_sq_session_question_uniq; the upsert's arbiter is
    sessions_sa_session_question_uniq. None for the row means nothing was
    written: the caller finds out why from the target.
    """
    upsert = _upsert_sql(write=write, source="target t", guard=_WRITABLE).format(
        is_correct="COALESCE(t.correct_option = %(option)s, FALSE)"
    )
    sql = (
        f"WITH target AS ({_TARGET}), written AS ({upsert})"
        " SELECT t.mode, t.status, t.deadline, t.options, t.correct_option, t.explanation, t.is_active,"
        " w.chosen_option, w.is_correct, w.flagged, w.seq, w.answered_at"
        " FROM target t LEFT JOIN written w ON TRUE"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, _params(write, cutoff=write.cutoff, check=write.option_to_check))
        row = cursor.fetchone()
    if row is None:
        return None, None
    target = selectors.answer_target_from_row(
        row[:7], user_id=write.user_id, session_id=write.session_id, question_id=write.question_id
    )
    return target, (row[7:] if row[11] is not None else None)


def upsert(write: AnswerWrite, *, question: Question):
    """Any database: the upsert alone, for a target already read and checked; None when nothing was written."""
    sql = _upsert_sql(
        write=write, source=f"{ExamSession._meta.db_table} s",
        guard=f"s.id = %(session)s AND s.status = 'active'{row_lock_clause()}",
    ).format(is_correct="%(is_correct)s")
    with connection.cursor() as cursor:
        cursor.execute(sql, _params(write, is_correct=write.option == question.correct_option))
        return cursor.fetchone()

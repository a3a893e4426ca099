"""Bulk sessions and answers for benchmarks: millions of rows generated inside PostgreSQL.

Rows are made by `INSERT ... SELECT generate_series(...)` in batches, so nothing
crosses the wire but the batch bounds: faster than COPY, which would still
format and send every row from Python. The data obeys the exam invariants by
construction (one result per closed session, one answer per session question,
scores that match the answers), which `check_exam_invariants` confirms after.

Run it while the application is idle: it reserves a block of ids from the
sequences and skips the per-row foreign-key triggers of the load
(session_replication_role = replica) when the role may.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection, transaction

from .models import ExamSession, Question, SessionAnswer, SessionQuestion, SessionResult

# Share of answers that are right, and of closed sessions that expired rather than being submitted.
RIGHT_OUT_OF_5 = 3
EXPIRED_ONE_IN = 20
TIME_LIMIT_SECONDS = 900


@dataclass(frozen=True)
class Generated:
    first_id: int
    last_id: int

    @property
    def session_ids(self) -> range:
        return range(self.first_id, self.last_id + 1)


def ensure_users(*, count: int, prefix: str = "benchuser", password: str = "bench-pass") -> list[int]:  # noqa: S107
    """`count` users named prefix000001.., created in one statement with one shared hash; their ids."""
    User = get_user_model()
    table = User._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (username, password, is_superuser, is_staff, is_active, first_name, last_name,"
            " email, date_joined)"
            " SELECT %s || lpad(n::text, 6, '0'), %s, false, false, true, '', '', '', now()"
            " FROM generate_series(1, %s) n ON CONFLICT (username) DO NOTHING",
            [prefix, make_password(password), count],
        )
    names = [f"{prefix}{n:06d}" for n in range(1, count + 1)]
    return list(User.objects.filter(username__in=names).order_by("id").values_list("id", flat=True))


def _reserve_ids(model, count: int) -> int:
    """The first of `count` consecutive ids taken from the model's sequence."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [model._meta.db_table])
        sequence = cursor.fetchone()[0]
        cursor.execute("SELECT nextval(%s)", [sequence])
        first = cursor.fetchone()[0]
        cursor.execute("SELECT setval(%s, %s)", [sequence, first + count - 1])
    return first


def _step(n_questions: int, per_session: int) -> int:
    """A stride coprime with the bank size: a session's questions (k * stride mod n) are all distinct."""
    step = 37
    while math.gcd(step, n_questions) != 1:
        step += 2
    return step


def generate_sessions(
    *,
    user_ids: list[int],
    sessions: int,
    now: datetime,
    questions_per_session: int = 10,
    closed: bool = True,
    answered: bool = True,
    time_limit_seconds: int = TIME_LIMIT_SECONDS,
    batch_size: int = 20_000,
    progress: Callable[[int], None] | None = None,
) -> Generated:
    """`sessions` timed sessions spread over `user_ids`, each with its questions and (if `answered`) answers.

    Closed sessions are graded (result row, score), created over the past year;
    open ones start at `now` and stay open for `time_limit_seconds`.
    """
    bank = list(Question.objects.filter(is_active=True).order_by("id").values_list("id", "correct_option"))
    if len(bank) < questions_per_session:
        raise ValueError(f"the bank has {len(bank)} active questions, fewer than {questions_per_session}")
    qids, right = [q for q, _ in bank], [c for _, c in bank]
    n, q = len(bank), questions_per_session
    first = _reserve_ids(ExamSession, sessions)
    _reserve_ids(SessionQuestion, sessions * q)  # keep the other sequences ahead of the rows we add
    _reserve_ids(SessionAnswer, sessions * q)
    _reserve_ids(SessionResult, sessions)
    t = {
        "es": ExamSession._meta.db_table, "sq": SessionQuestion._meta.db_table,
        "sa": SessionAnswer._meta.db_table, "sr": SessionResult._meta.db_table,
    }
    idx = f"(1 + mod(g * 13 + k * {_step(n, q)}, {n}))"
    is_right = f"(mod(g * 7 + k * 3, 5) < {RIGHT_OUT_OF_5})"
    question, right_option = f"(%(qids)s::bigint[])[{idx}]", f"(%(right)s::text[])[{idx}]"
    chosen = f"CASE WHEN {is_right} THEN {right_option} WHEN {right_option} = 'a' THEN 'b' ELSE 'a' END"
    n_right = f"(SELECT COUNT(*) FROM generate_series(0, {q - 1}) k WHERE {is_right})"
    created = "%(now)s - make_interval(secs => mod(g * 7919, 31536000))" if closed else "%(now)s"
    status = f"CASE WHEN mod(g, {EXPIRED_ONE_IN}) = 0 THEN 'expired' ELSE 'submitted' END" if closed else "'active'"
    ended = f"{created} + make_interval(secs => {time_limit_seconds // 2})"
    batch = "generate_series(%(lo)s::bigint, %(hi)s::bigint) g"
    sql = [
        f"INSERT INTO {t['es']} (id, user_id, mode, status, filters, question_count, created_at, time_limit_seconds,"
        " deadline, submitted_at, score)"
        f" SELECT g, (%(users)s::bigint[])[1 + mod(g, %(n_users)s)], 'timed', {status},"
        f" '{{\"block\": null, \"themes\": [], \"count\": {q}}}'::jsonb, {q}, {created}, {time_limit_seconds},"
        f" {created} + make_interval(secs => {time_limit_seconds}),"
        + (f" {ended}, round(100.0 * {n_right} / {q}, 1)" if closed else " NULL, NULL")
        + f" FROM {batch}",
        f"INSERT INTO {t['sq']} (session_id, question_id, position)"
        f" SELECT g, {question}, k + 1 FROM {batch}, generate_series(0, {q - 1}) k",
    ]
    if answered:
        sql.append(
            f"INSERT INTO {t['sa']} (session_id, question_id, chosen_option, is_correct, flagged, seq,"
            " first_answered_at, answered_at)"
            f" SELECT g, {question}, {chosen}, {is_right}, k = 0, 1,"
            f" {created} + make_interval(secs => 30 * (k + 1)), {created} + make_interval(secs => 30 * (k + 1))"
            f" FROM {batch}, generate_series(0, {q - 1}) k"
        )
    if closed:
        sql.append(
            f"INSERT INTO {t['sr']} (session_id, status, correct, answered, total, submitted_at)"
            f" SELECT g, {status}, {n_right if answered else 0}, {q if answered else 0}, {q}, {ended}"
            f" FROM {batch}"
        )
    params = {"users": user_ids, "n_users": len(user_ids), "qids": qids, "right": right, "now": now}
    last = first + sessions - 1
    for lo in range(first, last + 1, batch_size):
        hi = min(lo + batch_size - 1, last)
        with transaction.atomic(), connection.cursor() as cursor:
            _skip_fk_triggers(cursor)
            for statement in sql:
                cursor.execute(statement, {**params, "lo": lo, "hi": hi})
        if progress:
            progress(hi - lo + 1)
    return Generated(first, last)


def _skip_fk_triggers(cursor) -> None:
    """Per-row FK checks dominate a bulk insert; the rows reference only ids read above."""
    cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    if cursor.fetchone()[0]:
        cursor.execute("SET LOCAL session_replication_role = replica")


def analyze() -> None:
    with connection.cursor() as cursor:
        for model in (ExamSession, SessionQuestion, SessionAnswer, SessionResult):
            cursor.execute(f"ANALYZE {model._meta.db_table}")

"""Exam-day invariants, checked against the live database after a load test or an incident.

Each check is one set-based query, so it runs in seconds on millions of rows and
reports every offender (up to a sample) rather than stopping at the first.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.db import connection

from . import services
from .models import ExamSession, SessionAnswer, SessionQuestion, SessionResult

SAMPLE = 20


@dataclass(frozen=True)
class Ack:
    """An answer the server acknowledged (HTTP 200): what it said it stored."""

    session: int
    question: int
    option: str | None
    seq: int | None


@dataclass
class Violation:
    check: str
    count: int
    sample: list = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.check}: {self.count} (e.g. {self.sample[:5]})"


@dataclass
class InvariantReport:
    checked: dict[str, int]
    violations: list[Violation]

    @property
    def ok(self) -> bool:
        return not self.violations


def _rows(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _violation(check: str, rows: list[tuple]) -> Violation | None:
    return Violation(check, len(rows), [list(row) for row in rows[:SAMPLE]]) if rows else None


def _tables() -> dict[str, str]:
    return {
        "es": ExamSession._meta.db_table,
        "sa": SessionAnswer._meta.db_table,
        "sq": SessionQuestion._meta.db_table,
        "sr": SessionResult._meta.db_table,
    }


def graded_twice() -> list[Violation]:
    """One result per session, and the session's status agrees with it."""
    t = _tables()
    checks = {
        "session graded more than once": (
            f"SELECT session_id, COUNT(*) FROM {t['sr']} GROUP BY session_id HAVING COUNT(*) > 1"
        ),
        "session graded but still active": (
            f"SELECT es.id FROM {t['es']} es JOIN {t['sr']} sr ON sr.session_id = es.id WHERE es.status = 'active'"
        ),
        "session closed without a result": (
            f"SELECT es.id, es.status FROM {t['es']} es WHERE es.status <> 'active'"
            f" AND NOT EXISTS (SELECT 1 FROM {t['sr']} sr WHERE sr.session_id = es.id)"
        ),
        "session status differs from its result": (
            f"SELECT es.id, es.status, sr.status FROM {t['es']} es JOIN {t['sr']} sr ON sr.session_id = es.id"
            " WHERE es.status <> 'active' AND es.status <> sr.status"
        ),
    }
    return [v for name, sql in checks.items() if (v := _violation(name, _rows(sql)))]


def duplicate_answers() -> list[Violation]:
    """One answer row per (session, question), and only for the session's own questions."""
    t = _tables()
    checks = {
        "duplicate answer rows": (
            f"SELECT session_id, question_id, COUNT(*) FROM {t['sa']}"
            " GROUP BY session_id, question_id HAVING COUNT(*) > 1"
        ),
        "answer to a question not in the session": (
            f"SELECT sa.session_id, sa.question_id FROM {t['sa']} sa WHERE NOT EXISTS"
            f" (SELECT 1 FROM {t['sq']} sq WHERE sq.session_id = sa.session_id AND sq.question_id = sa.question_id)"
        ),
    }
    return [v for name, sql in checks.items() if (v := _violation(name, _rows(sql)))]


def overdue_active(*, now: datetime) -> list[Violation]:
    """No session still active past its deadline plus grace (expire_sessions closes them)."""
    overdue = ExamSession.objects.filter(status=ExamSession.Status.ACTIVE, deadline__lt=now - services.grace())
    rows = list(overdue.values_list("id", "deadline")[: SAMPLE + 1])
    if not rows:
        return []
    return [Violation("session active past deadline + grace", overdue.count(), [[i, str(d)] for i, d in rows])]


def newest_acks(acks: Iterable[Ack]) -> dict[tuple[int, int], Ack]:
    """Per (session, question), the acknowledged write with the highest seq (the last one without seq)."""
    newest: dict[tuple[int, int], Ack] = {}
    for ack in acks:
        key = (ack.session, ack.question)
        held = newest.get(key)
        if held is None or ack.seq is None or (held.seq is not None and ack.seq >= held.seq):
            newest[key] = ack
    return newest


def lost_answers(acks: Iterable[Ack], *, chunk: int = 5000) -> tuple[int, list[Violation]]:
    """Every acknowledged answer is stored: the stored row holds the newest acked write, or a newer seq.

    A stored seq above the newest acknowledged one is a later write whose reply
    the client never saw (a timeout): not a loss.
    """
    newest = newest_acks(acks)
    keys = sorted(newest)
    missing, overwritten = [], []
    for start in range(0, len(keys), chunk):
        part = keys[start : start + chunk]
        sessions = sorted({session for session, _ in part})
        stored = {
            (row[0], row[1]): row[2:]
            for row in SessionAnswer.objects.filter(session_id__in=sessions).values_list(
                "session_id", "question_id", "chosen_option", "seq"
            )
        }
        for key in part:
            ack = newest[key]
            if key not in stored:
                missing.append([*key, ack.option, ack.seq])
                continue
            option, seq = stored[key]
            newer = ack.seq is not None and seq is not None and seq > ack.seq
            if not newer and (seq != ack.seq or option != ack.option):
                overwritten.append([*key, ack.option, ack.seq, option, seq])
    violations = [
        Violation("acknowledged answer missing", len(missing), missing[:SAMPLE]) if missing else None,
        Violation("acknowledged answer overwritten by an older one", len(overwritten), overwritten[:SAMPLE])
        if overwritten
        else None,
    ]
    return len(keys), [v for v in violations if v]


def read_acks(path: Path) -> list[Ack]:
    """The load test's ack log: one JSON object per line ({"session","question","option","seq"})."""
    acks = []
    with path.open() as lines:
        for line in lines:
            if line.strip():
                row = json.loads(line)
                acks.append(Ack(int(row["session"]), int(row["question"]), row.get("option"), row.get("seq")))
    return acks


def check_invariants(*, now: datetime, acks: Iterable[Ack] | None = None) -> InvariantReport:
    violations = [*graded_twice(), *duplicate_answers(), *overdue_active(now=now)]
    checked = {
        "sessions": ExamSession.objects.count(),
        "results": SessionResult.objects.count(),
        "answers": SessionAnswer.objects.count(),
    }
    if acks is not None:
        checked["acknowledged answers"], lost = lost_answers(acks)
        violations += lost
    return InvariantReport(checked=checked, violations=violations)

"""Learning analytics of graded sessions: attempt events, theme mastery, the revision queue.

Grading enqueues a PendingAnalytics row in its own transaction; the work is
applied after commit (or later by drain_recalc while exam mode is on), in a
transaction that deletes that row, so it happens exactly once per session.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import BooleanField, Exists, OuterRef, QuerySet
from django.db.models.expressions import RawSQL
from fsrs import Card, Rating, Scheduler

from examplatform import exam_mode
from sessions_app.models import ExamSession, SessionAnswer, SessionQuestion

from .models import AttemptEvent, PendingAnalytics, RevisionQueueItem, UserThemeMastery

# No fuzzing: the same reviews must give the same schedule whether applied
# inline or drained later.
SCHEDULER = Scheduler(enable_fuzzing=False)
# pg advisory lock key: rebuilds take it exclusively, applying a session takes it shared.
MAINTENANCE_LOCK = 0x45584D41  # "EXMA"
FAST_ANSWER = timedelta(seconds=20)
SLOW_ANSWER = timedelta(seconds=60)


def enqueue_session_analytics(*, session: ExamSession, now: datetime) -> None:
    """Called inside the grading transaction."""
    PendingAnalytics.objects.create(session_id=session.pk, created_at=now)
    if not exam_mode.is_on():
        transaction.on_commit(lambda: apply_session_analytics(session_id=session.pk))


def rating_for(*, correct: bool, time_spent: timedelta | None) -> Rating:
    """The FSRS rating a student would have given, derived from correctness and time taken."""
    if not correct:
        return Rating.Again
    if time_spent is not None and time_spent <= FAST_ANSWER:
        return Rating.Easy
    if time_spent is None or time_spent <= SLOW_ANSWER:
        return Rating.Good
    return Rating.Hard


@dataclass(frozen=True)
class Attempt:
    question_id: int
    theme_id: int
    answer: SessionAnswer | None
    time_spent: timedelta | None

    @property
    def correct(self) -> bool:
        return self.answer is not None and self.answer.is_correct


def _attempts(session: ExamSession) -> list[Attempt]:
    """Every question of the session with its answer and the time spent reaching it."""
    answers = {a.question_id: a for a in SessionAnswer.objects.filter(session_id=session.pk)}
    previous = session.created_at
    time_spent = {}
    for answer in sorted(answers.values(), key=lambda a: a.first_answered_at):
        time_spent[answer.question_id] = answer.first_answered_at - previous
        previous = answer.first_answered_at
    rows = SessionQuestion.objects.filter(session_id=session.pk).values_list("question_id", "question__theme_id")
    return [Attempt(qid, theme_id, answers.get(qid), time_spent.get(qid)) for qid, theme_id in rows]


def _claimable() -> QuerySet[PendingAnalytics]:
    """Pending rows this transaction may apply now, locked; one query whatever the filter.

    A row is left alone while another transaction holds it, while a user's older
    session is still pending (a student's sessions apply in grading order, so the
    revision schedule is the same whether applied inline or drained later), and
    while a rebuild holds the maintenance lock (see rebuilds.py); drain_recalc
    applies what is left.
    """
    older = PendingAnalytics.objects.filter(id__lt=OuterRef("id"), session__user_id=OuterRef("session__user_id"))
    rows = PendingAnalytics.objects.select_for_update(skip_locked=True, of=("self",)).exclude(Exists(older))
    if connection.vendor == "postgresql":
        rows = rows.alias(
            free=RawSQL("pg_try_advisory_xact_lock_shared(%s)", (MAINTENANCE_LOCK,), output_field=BooleanField())
        ).filter(free=True)
    return rows


def apply_session_analytics(*, session_id: int) -> bool:
    """Apply one graded session's analytics; False if it is done, being done, or must wait its turn."""
    with transaction.atomic():
        claimed = list(_claimable().filter(session_id=session_id))
        if not claimed:
            return False
        session = ExamSession.objects.get(pk=session_id)
        attempts = _attempts(session)
        _record_events(session, attempts)
        _update_mastery(session, attempts)
        _schedule_revisions(session, attempts)
        PendingAnalytics.objects.filter(pk=claimed[0].pk).delete()
    return True


def _record_events(session: ExamSession, attempts: list[Attempt]) -> None:
    events = [
        AttemptEvent(
            user_id=session.user_id,
            session_id=session.pk,
            question_id=a.question_id,
            event_type=AttemptEvent.Type.ANSWERED if a.answer else AttemptEvent.Type.SKIPPED,
            event_ts=a.answer.answered_at if a.answer else session.submitted_at,
            payload={"option": a.answer.chosen_option, "correct": a.correct} if a.answer else {},
        )
        for a in attempts
    ]
    events.append(
        AttemptEvent(
            user_id=session.user_id,
            session_id=session.pk,
            event_type=session.status,
            event_ts=session.submitted_at,
            payload={"score": session.score},
        )
    )
    AttemptEvent.objects.bulk_create(events, ignore_conflicts=True)


def _update_mastery(session: ExamSession, attempts: list[Attempt]) -> None:
    per_theme: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for a in attempts:
        per_theme[a.theme_id][0] += 1
        per_theme[a.theme_id][1] += a.correct
    if not per_theme:
        return
    table = UserThemeMastery._meta.db_table
    rows = [
        (session.user_id, theme_id, n, c, (c + 1) / (n + 2), session.submitted_at)
        for theme_id, (n, c) in sorted(per_theme.items())
    ]
    values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(rows))
    sql = (
        f"INSERT INTO {table} (user_id, theme_id, attempts, correct, mastery, updated_at) VALUES {values}"
        " ON CONFLICT (user_id, theme_id) DO UPDATE SET"
        f" attempts = {table}.attempts + EXCLUDED.attempts,"
        f" correct = {table}.correct + EXCLUDED.correct,"
        # Double precision like the Python division above, so every path gives the same bits.
        f" mastery = CAST({table}.correct + EXCLUDED.correct + 1 AS double precision)"
        f" / CAST({table}.attempts + EXCLUDED.attempts + 2 AS double precision),"
        " updated_at = EXCLUDED.updated_at"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [value for row in rows for value in row])


def _schedule_revisions(session: ExamSession, attempts: list[Attempt]) -> None:
    """Missed questions enter the queue; queued questions answered again are re-scheduled."""
    existing = {
        item.question_id: item
        for item in RevisionQueueItem.objects.filter(
            user_id=session.user_id, question_id__in=[a.question_id for a in attempts]
        )
    }
    items = []
    for a in attempts:
        item = existing.get(a.question_id)
        if item is None and a.correct:
            continue
        reviewed_at = a.answer.answered_at if a.answer else session.submitted_at
        card = Card.from_dict(item.scheduler_state) if item else Card(card_id=a.question_id, due=reviewed_at)
        card, _log = SCHEDULER.review_card(card, rating_for(correct=a.correct, time_spent=a.time_spent), reviewed_at)
        items.append(
            RevisionQueueItem(
                user_id=session.user_id,
                question_id=a.question_id,
                due_at=card.due,
                status=RevisionQueueItem.Status.ACTIVE,
                scheduler_state=card.to_dict(),
                reviews=(item.reviews if item else 0) + 1,
                updated_at=session.submitted_at,
            )
        )
    RevisionQueueItem.objects.bulk_create(
        items,
        update_conflicts=True,
        unique_fields=["user", "question"],
        update_fields=["due_at", "status", "scheduler_state", "reviews", "updated_at"],
    )


def drain_pending(*, batch_size: int = 100, progress=None, should_stop=None) -> int:
    """Apply every pending session's analytics in grading order; resumable and safe in parallel.

    Each session applies in its own transaction, so an interrupted drain loses
    nothing and the next run carries on; `should_stop()` is asked between batches.
    """
    done = 0
    while True:
        if should_stop and should_stop():
            return done
        ids = list(PendingAnalytics.objects.order_by("id").values_list("session_id", flat=True)[:batch_size])
        if not ids:
            return done
        applied_any = False
        for session_id in ids:
            if apply_session_analytics(session_id=session_id):
                done += 1
                applied_any = True
                if progress:
                    progress(1)
        if not applied_any:  # everything left is being applied by another run
            return done


def pending_count() -> int:
    return PendingAnalytics.objects.count()

"""Retries and double clicks against the real server and PostgreSQL, with real threads and processes."""

import http.client
import os
import random
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from django.utils import timezone

from analytics_app.models import AttemptEvent, PendingAnalytics, RevisionQueueItem, UserThemeMastery
from examplatform.testing import access_token_for, app_server, current_test_database_url, http_json, wait_for
from sessions_app import services
from sessions_app.models import ExamSession, SessionAnswer, SessionResult
from sessions_app.tests.factories import QuestionFactory, ThemeFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def theme(db):
    theme = ThemeFactory()
    QuestionFactory.create_batch(120, theme=theme)
    return theme


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    # Sync workers, whatever the environment picks: one request per worker at a time, which the killed
    # worker test relies on.
    with django_db_blocker.unblock(), app_server(workers=4, env={"SERVER_WORKER_CLASS": "sync"}) as server:
        yield server


def at_once(count: int, call):
    """Run `call(i)` in `count` threads released together by a barrier."""
    barrier = threading.Barrier(count)

    def run(i):
        barrier.wait()
        return call(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def new_session(user, theme, *, count=10, mode="timed"):
    return services.start_session(
        user_id=user.pk, mode=mode, count=count, theme_ids=[theme.pk], now=timezone.now()
    ).session


def test_fifty_concurrent_submits_grade_once_and_return_one_body(server, theme):
    user = UserFactory()
    session = new_session(user, theme)
    token = access_token_for(user)
    question_ids = list(session.session_questions.values_list("question_id", flat=True))
    for qid in question_ids[:6]:
        http_json("PUT", f"{server.url}/api/v1/sessions/{session.pk}/answers/{qid}/", token=token,
                  body={"option": "b"})

    replies = at_once(50, lambda _: http_json("POST", f"{server.url}/api/v1/sessions/{session.pk}/submit/",
                                              token=token))

    assert {r.status for r in replies} == {200}
    assert len({repr(r.body) for r in replies}) == 1
    assert sorted(r.headers["Idempotent-Replayed"] for r in replies) == ["false"] + ["true"] * 49
    assert replies[0].body["correct"] == 6 and replies[0].body["total"] == 10
    assert SessionResult.objects.filter(session=session).count() == 1
    # Side effects exactly once: one event per question plus "submitted", mastery counted once.
    assert AttemptEvent.objects.filter(session=session).count() == 11
    assert UserThemeMastery.objects.get(user=user).attempts == 10
    # The 4 unanswered questions are queued for revision once: a second scheduling would count 2 reviews.
    queued = RevisionQueueItem.objects.filter(user=user)
    assert sorted(queued.values_list("question_id", "reviews")) == sorted((qid, 1) for qid in question_ids[6:])
    assert not PendingAnalytics.objects.exists()


def test_fifty_concurrent_answers_leave_one_row_and_the_highest_seq_wins(server, theme):
    user = UserFactory()
    session = new_session(user, theme)
    token = access_token_for(user)
    qid = session.session_questions.first().question_id
    url = f"{server.url}/api/v1/sessions/{session.pk}/answers/{qid}/"
    seqs = list(range(1, 51))
    random.shuffle(seqs)

    replies = at_once(50, lambda i: http_json("PUT", url, token=token, body={"option": "abcd"[seqs[i] % 4],
                                                                              "seq": seqs[i]}))

    assert {r.status for r in replies} == {200}
    stored = SessionAnswer.objects.get(session=session)
    assert (stored.seq, stored.chosen_option) == (50, "abcd"[50 % 4])
    # Every reply shows what was stored at that moment: never a seq older than its own write.
    assert all(r.body["seq"] >= seqs[i] for i, r in enumerate(replies))


def test_fifty_concurrent_answers_without_seq_leave_one_row(server, theme):
    user = UserFactory()
    session = new_session(user, theme)
    token = access_token_for(user)
    qid = session.session_questions.first().question_id
    url = f"{server.url}/api/v1/sessions/{session.pk}/answers/{qid}/"
    replies = at_once(50, lambda i: http_json("PUT", url, token=token, body={"option": "abcd"[i % 4]}))
    assert {r.status for r in replies} == {200}
    assert SessionAnswer.objects.filter(session=session).count() == 1


def test_twenty_creates_with_one_idempotency_key_make_one_session(server, theme):
    user = UserFactory()
    token = access_token_for(user)
    body = {"themes": [theme.pk], "count": 5, "mode": "timed"}
    replies = at_once(20, lambda _: http_json("POST", f"{server.url}/api/v1/sessions/", token=token, body=body,
                                              headers={"Idempotency-Key": "tap-1"}))
    assert {r.status for r in replies} == {201}
    assert len({r.body["id"] for r in replies}) == 1
    assert len({repr(r.body["questions"]) for r in replies}) == 1
    assert ExamSession.objects.filter(user=user).count() == 1

    reused = http_json("POST", f"{server.url}/api/v1/sessions/", token=token, body={**body, "count": 6},
                       headers={"Idempotency-Key": "tap-1"})
    assert reused.status == 422 and reused.body["code"] == "idempotency_key_reused"
    other = http_json("POST", f"{server.url}/api/v1/sessions/", token=token, body=body,
                      headers={"Idempotency-Key": "tap-2"})
    assert other.status == 201 and other.body["id"] != replies[0].body["id"]
    # A key is the student's own: another student sending the same one gets a session of their own.
    stranger = http_json("POST", f"{server.url}/api/v1/sessions/", token=access_token_for(UserFactory()),
                         body=body, headers={"Idempotency-Key": "tap-1"})
    assert stranger.status == 201 and stranger.body["id"] not in {replies[0].body["id"], other.body["id"]}
    assert stranger.headers.get("Idempotent-Replayed", "false") == "false"


def answers_waiting_on_a_lock(monitor) -> int:
    """Answer statements of the test database waiting on a lock, seen from an autocommit connection."""
    return monitor.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        " AND query LIKE %s",
        [f"%INSERT INTO {SessionAnswer._meta.db_table}%"],
    ).fetchone()[0]


def test_a_killed_worker_loses_no_acknowledged_answer(server, theme):
    """Four clients stream answers; a worker is SIGKILLed while it is in the middle of one of them."""
    lanes = 4
    assert len(server.worker_pids()) == lanes
    user = UserFactory()
    session = new_session(user, theme, count=100, mode="tutor")
    token = access_token_for(user)
    question_ids = list(session.session_questions.order_by("position").values_list("question_id", flat=True))
    acked: dict[int, tuple[int, str]] = {}
    lost = []
    lock = threading.Lock()
    # Set once, under the same lock that counts the acks: a count checked outside it could skip 40.
    forty_acked = threading.Event()
    victim = server.worker_pids()[0]

    def stream(lane: int):
        mine = question_ids[lane::lanes] * 3
        for n, qid in enumerate(mine):
            seq, option = n + 1, "abcd"[(n + lane) % 4]
            try:
                reply = http_json("PUT", f"{server.url}/api/v1/sessions/{session.pk}/answers/{qid}/",
                                  token=token, body={"option": option, "seq": seq}, timeout=10)
            except (OSError, http.client.HTTPException):  # the reply died with the worker: not acknowledged
                with lock:
                    lost.append(qid)
                continue
            if 200 <= reply.status < 300:
                with lock:
                    acked[qid] = (seq, option)
                    if len(acked) >= 40:
                        forty_acked.set()

    def kill_a_worker_mid_answer():
        """Hold the session row so that every answer in flight waits on it inside its statement, then kill.

        Sync workers serve one request each, so once four answers wait (one per lane) every worker,
        the victim too, is in the middle of one when it dies.
        """
        assert forty_acked.wait(timeout=60)
        url = current_test_database_url()
        with psycopg.connect(url, autocommit=True) as monitor, psycopg.connect(url) as holder:
            holder.execute(f"SELECT id FROM {ExamSession._meta.db_table} WHERE id = %s FOR UPDATE", [session.pk])
            wait_for(lambda: answers_waiting_on_a_lock(monitor) == lanes, timeout=20, what="an answer per worker")
            os.kill(victim, signal.SIGKILL)
            holder.rollback()

    with ThreadPoolExecutor(lanes + 1) as pool:
        killer = pool.submit(kill_a_worker_mid_answer)
        list(pool.map(stream, range(lanes)))
        killer.result()

    assert lost, "the killed worker was serving an answer: its client got no reply"
    wait_for(lambda: victim not in server.worker_pids(), what="the killed worker reaped")
    assert len(acked) == 100
    stored = {a.question_id: (a.seq, a.chosen_option) for a in SessionAnswer.objects.filter(session=session)}
    # Every acknowledged write is stored, or a newer acknowledged one of the same question replaced it.
    assert all(stored[qid][0] >= seq for qid, (seq, _) in acked.items())
    assert all(stored[qid] == acked[qid] for qid in acked if stored[qid][0] == acked[qid][0])

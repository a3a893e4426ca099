"""PostgreSQL trouble under the real server: fast 503s, recovery without a restart, a capped pool."""

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import psycopg
import pytest

from examplatform.testing import ROOT, app_server, http_json, throwaway_postgres


@dataclass
class Database:
    pg: object
    url: str

    def sql(self, query: str) -> str:
        return self.pg.psql(query, database="exam")


@pytest.fixture(scope="module")
def database():
    """A throwaway cluster with the app's schema (migrate) and the demo logins and questions (seed_demo)."""
    with throwaway_postgres() as pg:
        pg.psql("CREATE DATABASE exam")
        url = f"postgres://postgres@127.0.0.1:{pg.port}/exam"
        env = {**os.environ, "DATABASE_URL": url}
        for command in (["migrate", "--noinput", "-v0"], ["seed_demo"]):
            subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True,
                           capture_output=True)
        yield Database(pg=pg, url=url)


def log_in(server) -> str:
    reply = http_json("POST", f"{server.url}/api/v1/auth/token/",
                      body={"username": "student", "password": "student-pass"})
    assert reply.status == 200, reply.body
    return reply.body["access"]


def new_session(server, token: str, count: int) -> tuple[int, list[int]]:
    reply = http_json("POST", f"{server.url}/api/v1/sessions/", token=token, body={"mode": "tutor", "count": count})
    assert reply.status == 201, reply.body
    return reply.body["id"], [q["id"] for q in reply.body["questions"]]


@dataclass
class Call:
    started: float
    seconds: float
    status: int
    question: int
    option: str
    seq: int


def test_it_answers_503_quickly_while_postgres_restarts_and_recovers_without_losing_an_answer(database):
    with app_server(env={"DATABASE_URL": database.url}, workers=2) as server:
        pids = sorted(server.worker_pids())
        token = log_in(server)
        session_id, questions = new_session(server, token, count=40)
        calls: list[Call] = []
        stop = threading.Event()

        def stream():
            seq = 0
            while not stop.is_set():
                seq += 1
                question, option = questions[seq % len(questions)], "abcd"[seq % 4]
                started = time.monotonic()
                reply = http_json("PUT", f"{server.url}/api/v1/sessions/{session_id}/answers/{question}/",
                                  token=token, body={"option": option, "seq": seq}, timeout=40)
                calls.append(Call(started, time.monotonic() - started, reply.status, question, option, seq))
                if reply.status == 503:
                    assert reply.body["code"] == "database_unavailable" and reply.body["detail"]
                    assert int(reply.headers["Retry-After"]) > 0
                time.sleep(0.01)

        streamer = threading.Thread(target=stream)
        streamer.start()
        try:
            time.sleep(1.5)
            database.pg.stop(fast=True)
            down_at = time.monotonic()  # from here on PostgreSQL is gone
            time.sleep(3)
            up_at = time.monotonic()  # until here
            database.pg.start()
            deadline = up_at + 20
            while time.monotonic() < deadline and not (
                len(calls) > 20 and all(c.status == 200 for c in calls[-20:]) and calls[-20].started > up_at
            ):
                time.sleep(0.1)
        finally:
            stop.set()
            streamer.join()

        assert {c.status for c in calls} <= {200, 503}
        during = [c for c in calls if down_at <= c.started < up_at]
        assert during and {c.status for c in during} == {503}, [(c.started - down_at, c.status) for c in during]
        # Quickly: the first request of the outage finds out within a wait slice, the rest at once.
        assert max(c.seconds for c in during) < 2.0
        assert sorted(c.seconds for c in during)[len(during) // 2] < 0.1
        assert all(c.status == 200 for c in calls[-20:])
        assert sorted(server.worker_pids()) == pids  # recovered without restarting a worker

    stored = dict(
        (int(q), (int(seq), option))
        for q, seq, option in (line.split("|") for line in database.sql(
            f"SELECT question_id, seq, chosen_option FROM sessions_app_sessionanswer WHERE session_id = {session_id}"
        ).splitlines())
    )
    acknowledged = {}
    for call in calls:
        if call.status == 200:
            acknowledged[call.question] = (call.seq, call.option)
    assert acknowledged
    for question, (seq, option) in acknowledged.items():
        stored_seq, stored_option = stored[question]
        assert stored_seq > seq or (stored_seq, stored_option) == (seq, option)


def server_connections(database) -> int:
    """The app's connections to the database, as the server counts them (not ours, not the lock holder's)."""
    return int(database.sql(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = 'exam'"
        " AND backend_type = 'client backend' AND application_name NOT IN ('lock-holder', 'psql')"
        " AND pid <> pg_backend_pid()"
    ))


def test_a_small_pool_held_by_slow_requests_answers_503_within_the_wait_and_caps_server_connections(database):
    # Two workers, each with a pool of one connection and threads enough to take every request at once.
    # Whichever worker each request lands on, at most workers x max_size of them get a connection; the
    # rest wait the configured second for one and get a 503.
    workers, max_size, requests = 2, 1, 6
    env = {"DATABASE_URL": database.url, "SERVER_WORKER_CLASS": "gthread", "GUNICORN_THREADS": str(requests),
           "DB_POOL_SIZE": str(max_size), "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "1"}
    with app_server(env=env, workers=workers) as server:
        token = log_in(server)
        session_id, questions = new_session(server, token, count=3)
        peak = [0]
        sampling = threading.Event()

        def sample():
            while not sampling.is_set():
                peak[0] = max(peak[0], server_connections(database))
                time.sleep(0.05)

        def answer(replies: list) -> None:
            started = time.monotonic()
            reply = http_json("PUT", f"{server.url}/api/v1/sessions/{session_id}/answers/{questions[0]}/",
                              token=token, body={"option": "a"}, timeout=30)
            replies.append((time.monotonic() - started, reply))

        sampler = threading.Thread(target=sample)
        sampler.start()
        replies: list = []
        try:
            with psycopg.connect(database.url, application_name="lock-holder") as holder:
                # An answer reads the session row FOR SHARE: while this lock is held, each answer that got a
                # connection waits on it, holding that pooled connection.
                holder.execute("SELECT id FROM sessions_app_examsession WHERE id = %s FOR UPDATE", [session_id])
                threads = [threading.Thread(target=answer, args=(replies,)) for _ in range(requests)]
                for thread in threads:
                    thread.start()
                deadline = time.monotonic() + 15
                while len(replies) < requests - workers * max_size and time.monotonic() < deadline:
                    time.sleep(0.05)
                holder.rollback()
                for thread in threads:
                    thread.join(timeout=15)
            after = http_json("GET", f"{server.url}/api/v1/blocks/", token=token)
        finally:
            sampling.set()
            sampler.join()

    refused = [(seconds, reply) for seconds, reply in replies if reply.status == 503]
    served = [reply for _, reply in replies if reply.status == 200]
    assert len(replies) == requests and len(refused) + len(served) == requests
    assert 1 <= len(served) <= workers * max_size and len(refused) >= requests - workers * max_size
    for seconds, reply in refused:
        assert reply.body["code"] == "database_unavailable" and int(reply.headers["Retry-After"]) > 0
        assert 0.9 <= seconds < 3.0, seconds  # the configured 1 s wait, not a hang
    assert after.status == 200
    assert 1 <= peak[0] <= workers * max_size


def test_pooled_connections_killed_by_the_server_are_replaced_before_use(database):
    """The pool checks a connection before handing it out (CONN_HEALTH_CHECKS wires check_connection)."""
    with app_server(env={"DATABASE_URL": database.url}, workers=2) as server:
        token = log_in(server)
        for _ in range(10):  # warm both workers' pools
            assert http_json("GET", f"{server.url}/api/v1/blocks/", token=token).status == 200
        assert server_connections(database) >= 1
        database.sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = 'exam'"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        statuses = [http_json("GET", f"{server.url}/api/v1/blocks/", token=token).status for _ in range(20)]
    assert statuses == [200] * 20

"""Redis dead or hung under the real server: students never wait on it, logout and rate limits still hold."""

import subprocess
import time
from dataclasses import dataclass

import pytest
from django.utils import timezone

from examplatform.testing import access_token_for, app_server, http_json, throwaway_redis
from sessions_app import services
from sessions_app.tests.factories import QuestionFactory, ThemeFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

BREAKER_SECONDS = 1.0
# The bound is "at most one request per breaker window over 1.1 s". A request that waited on a
# hung Redis at all takes about the 1 s socket timeout, so count everything over 0.9 s as slow.
SLOW = 0.9


@pytest.fixture
def redis():
    with throwaway_redis() as redis:
        yield redis


@pytest.fixture
def server(redis, django_db_blocker):
    env = {"REDIS_URL": redis.url, "REDIS_BREAKER_RESET_SECONDS": str(BREAKER_SECONDS)}
    with django_db_blocker.unblock(), app_server(env=env, workers=2) as server:
        yield server


@pytest.fixture
def student_session(db):
    user = UserFactory()
    theme = ThemeFactory()
    QuestionFactory.create_batch(10, theme=theme)
    session = services.start_session(user_id=user.pk, mode="tutor", count=10, theme_ids=[theme.pk],
                                     now=timezone.now()).session
    return user, session, list(session.session_questions.values_list("question_id", flat=True))


@dataclass
class Call:
    started: float
    seconds: float
    status: int


def stream(server, user, session, questions, *, count: int, at: int, outage, recovery=None) -> list[Call]:
    """`count` API requests one after another (the student API's mix), `outage()` before request `at`."""
    token = access_token_for(user)
    calls = []
    for i in range(count):
        if i == at:
            outage()
        if recovery and i == count - 40:
            recovery()
        path, method, body = [
            (f"/api/v1/sessions/{session.pk}/", "GET", None),
            (f"/api/v1/sessions/{session.pk}/answers/{questions[i % len(questions)]}/", "PUT",
             {"option": "abcd"[i % 4], "seq": i + 1}),
            ("/api/v1/blocks/", "GET", None),
        ][i % 3]
        started = time.monotonic()
        reply = http_json(method, f"{server.url}{path}", token=token, body=body)
        calls.append(Call(started, time.monotonic() - started, reply.status))
        time.sleep(0.02)
    return calls


def assert_at_most_one_slow_request_per_window(calls: list[Call]) -> list[float]:
    slow = [c.started for c in calls if c.seconds > SLOW]
    # A slow request is the failure that opens the breaker or the one probe after a window: the next
    # one can only start a whole window (plus the 1 s it waited) later.
    assert all(later - earlier >= BREAKER_SECONDS for earlier, later in zip(slow, slow[1:], strict=False)), slow
    return slow


def redis_keys(redis) -> int:
    out = subprocess.run(["redis-cli", "-p", str(redis.port), "dbsize"], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def test_redis_killed_during_a_stream_of_200_requests_fails_no_request_and_slows_none(
    server, redis, student_session
):
    user, session, questions = student_session
    calls = stream(server, user, session, questions, count=200, at=50, outage=redis.kill)

    assert [c.status for c in calls] == [200] * 200
    assert assert_at_most_one_slow_request_per_window(calls) == []  # a refused connection costs nothing
    assert "redis circuit open" in server.log()


def test_redis_hung_during_a_stream_of_200_requests_fails_none_and_slows_one_per_breaker_window(
    server, redis, student_session
):
    user, session, questions = student_session
    calls = stream(server, user, session, questions, count=200, at=50, outage=redis.pause, recovery=redis.resume)

    assert [c.status for c in calls] == [200] * 200
    slow = assert_at_most_one_slow_request_per_window(calls)
    assert slow  # the hang was noticed, and only once per window for the whole server (both workers)
    assert max(c.seconds for c in calls) < 1.5  # the 1 s socket timeout holds: no retries stretch it
    # After Redis came back the probe closed the breaker and the cache is written again.
    assert redis_keys(redis) > 0


def test_a_token_logged_out_before_a_redis_outage_stays_refused_during_it(server, redis, db, settings):
    # The server checks passwords with the production hashers, not the tests' fast one.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    user = UserFactory(username="carol")
    login = http_json("POST", f"{server.url}/api/v1/auth/token/", body={"username": "carol", "password": "pass-word-1"})
    assert login.status == 200
    access = login.body["access"]
    assert http_json("GET", f"{server.url}/api/v1/blocks/", token=access).status == 200
    assert http_json("POST", f"{server.url}/api/v1/auth/logout/", body={"refresh": login.body["refresh"]}).status == 205

    redis.kill()

    for _ in range(6):  # both workers, breaker closed then open
        refused = http_json("GET", f"{server.url}/api/v1/blocks/", token=access)
        assert refused.status == 401 and refused.body["code"] == "token_not_valid"
    assert http_json("GET", f"{server.url}/api/v1/blocks/", token=access_token_for(user)).status == 200


@pytest.fixture
def throttled_server(redis, django_db_blocker):
    env = {"REDIS_URL": redis.url, "REDIS_BREAKER_RESET_SECONDS": str(BREAKER_SECONDS),
           "THROTTLE_USER_RATE": "5/day"}
    with django_db_blocker.unblock(), app_server(env=env, workers=2) as server:
        yield server


def test_throttling_is_off_while_redis_is_down_and_resumes_after_it_returns(throttled_server, redis, db):
    server = throttled_server
    token = access_token_for(UserFactory())

    def statuses(n):
        return [http_json("GET", f"{server.url}/api/v1/blocks/", token=token).status for _ in range(n)]

    assert statuses(7) == [200] * 5 + [429] * 2
    limited = http_json("GET", f"{server.url}/api/v1/blocks/", token=token)
    assert limited.body["code"] == "throttled" and limited.body["detail"]
    assert int(limited.headers["Retry-After"]) > 0

    redis.kill()
    assert statuses(10) == [200] * 10  # fail-open: a rate limit never refuses a student because Redis is down
    assert "not enforced" in server.log()

    redis.restart()
    time.sleep(BREAKER_SECONDS + 0.2)
    assert statuses(7) == [200] * 5 + [429] * 2

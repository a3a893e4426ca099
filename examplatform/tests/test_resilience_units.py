"""The breaker's state machine, the fail-open cache, the login limit and the 503 mapping, in process."""

import json
import time

import pytest
import redis as redis_py
from django.core.cache import caches
from django.db import OperationalError
from django.test import Client, RequestFactory
from psycopg_pool import PoolTimeout
from rest_framework.test import APIClient

from examplatform.redis_client import CircuitBreaker, CircuitOpen, breaker
from examplatform.resilience import DatabaseUnavailableMiddleware
from examplatform.testing import throwaway_redis


@pytest.fixture
def shared_path(tmp_path):
    return tmp_path / "breaker"


def fail():
    raise redis_py.exceptions.ConnectionError("refused")


def test_it_opens_after_one_failure_and_then_skips_the_call(shared_path):
    cb = CircuitBreaker(name="t", path=shared_path, reset_timeout=60, probe_timeout=5)
    with pytest.raises(redis_py.exceptions.ConnectionError):
        cb.call(fail)
    assert cb.current_state == "open"
    calls = []
    with pytest.raises(CircuitOpen):
        cb.call(calls.append, 1)
    assert calls == []


def test_it_lets_exactly_one_probe_through_after_the_cool_down(shared_path):
    cb = CircuitBreaker(name="t", path=shared_path, reset_timeout=0.05, probe_timeout=5)
    with pytest.raises(redis_py.exceptions.ConnectionError):
        cb.call(fail)
    time.sleep(0.06)
    assert cb.allow() is True
    assert cb.current_state == "half-open"
    assert cb.allow() is False  # everyone else keeps skipping Redis while the probe runs
    cb.record_success()
    assert cb.current_state == "closed" and cb.allow() is True


def test_a_failed_probe_opens_it_for_another_window(shared_path):
    cb = CircuitBreaker(name="t", path=shared_path, reset_timeout=0.05, probe_timeout=5)
    with pytest.raises(redis_py.exceptions.ConnectionError):
        cb.call(fail)
    time.sleep(0.06)
    with pytest.raises(redis_py.exceptions.ConnectionError):
        cb.call(fail)
    assert cb.current_state == "open" and cb.allow() is False


def test_a_probe_that_never_reports_is_taken_over_after_the_probe_timeout(shared_path):
    cb = CircuitBreaker(name="t", path=shared_path, reset_timeout=0.0, probe_timeout=0.05)
    cb.record_failure(redis_py.exceptions.TimeoutError("hung"))
    assert cb.allow() is True and cb.allow() is False
    time.sleep(0.06)
    assert cb.allow() is True


def test_breakers_on_one_state_file_share_it_like_sibling_workers(shared_path):
    first = CircuitBreaker(name="t", path=shared_path, reset_timeout=60, probe_timeout=5)
    second = CircuitBreaker(name="t", path=shared_path, reset_timeout=60, probe_timeout=5)
    first.record_failure(redis_py.exceptions.TimeoutError("hung"))
    assert second.current_state == "open" and second.allow() is False


def test_business_errors_from_redis_do_not_open_it(shared_path):
    cb = CircuitBreaker(name="t", path=shared_path, reset_timeout=60, probe_timeout=5)

    def wrong_type():
        raise redis_py.exceptions.ResponseError("WRONGTYPE")

    with pytest.raises(redis_py.exceptions.ResponseError):
        cb.call(wrong_type)
    assert cb.current_state == "closed"


@pytest.fixture
def hung_cache(settings):
    """The default cache's configuration pointed at a throwaway Redis the test can kill or hang."""
    with throwaway_redis() as server:
        settings.CACHES = {"default": settings.CACHES["default"],
                           "hung": {**settings.CACHES["default"], "LOCATION": server.url}}
        breaker.reset()
        yield server, caches["hung"]
        breaker.reset()


def test_the_cache_fails_open_within_the_socket_timeout_and_then_without_waiting(hung_cache):
    server, cache = hung_cache
    cache.set("k", "v")
    server.pause()

    started = time.monotonic()
    assert cache.get("k", "default") == "default"
    first = time.monotonic() - started
    started = time.monotonic()
    assert cache.set("k", "w") is None and cache.get("k", "default") == "default"
    after = time.monotonic() - started

    assert 0.9 < first < 1.5  # 1 s socket timeout, retries off (redis-py's default retries made it ~6 s)
    assert after < 0.05  # breaker open: Redis isn't touched
    assert breaker.current_state == "open"


@pytest.mark.parametrize("backend", ["redis", "locmem"])  # production, and the embedded demo
def test_logins_beyond_the_per_ip_rate_get_429_with_the_json_error_shape(settings, db, backend):
    if backend == "locmem":
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"user": "1000/day", "login": "2/day"}}
    client = APIClient()
    body = {"username": "nobody", "password": "wrong-password"}
    statuses = [client.post("/api/v1/auth/token/", body, format="json").status_code for _ in range(3)]
    assert statuses == [401, 401, 429]
    limited = client.post("/api/v1/auth/token/", body, format="json")
    assert limited.json()["code"] == "throttled" and limited.json()["detail"]
    assert int(limited["Retry-After"]) > 0
    # Another address has its own allowance.
    assert client.post("/api/v1/auth/token/", body, format="json", REMOTE_ADDR="10.0.0.9").status_code == 401
    if backend == "redis":  # each window's counter expires with the window (plus a second)
        from django_redis import get_redis_connection

        redis_client = get_redis_connection("default")
        keys = redis_client.keys("*throttle_login_*")
        assert len(keys) == 2
        assert all(0 < redis_client.ttl(key) <= 24 * 3600 + 1 for key in keys)


@pytest.mark.parametrize("error", [OperationalError("server closed the connection"), PoolTimeout("no connection")])
def test_database_errors_become_503_with_retry_after_and_the_json_error_shape(error):
    middleware = DatabaseUnavailableMiddleware(lambda request: None)
    response = middleware.process_exception(RequestFactory().get("/api/v1/blocks/"), error)
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert json.loads(response.content) == {"detail": "The database is unavailable or busy. Retry shortly.",
                               "code": "database_unavailable"}


class FailsOnTheWayOut:
    """A middleware whose response step finds the database gone, as SessionMiddleware saving a session would."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        self.get_response(request)
        raise OperationalError("the connection was lost saving the session")


class FailsWithABug(FailsOnTheWayOut):
    def __call__(self, request):
        self.get_response(request)
        raise ValueError("a bug")


@pytest.mark.django_db
def test_a_database_error_outside_the_view_is_a_503_too(settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.FailsOnTheWayOut"]
    response = Client(raise_request_exception=False).get("/api/v1/blocks/")
    assert response.status_code == 503 and int(response["Retry-After"]) > 0
    assert response.json()["code"] == "database_unavailable"
    assert "X-Response-Time-ms" in response  # still measured by the outermost middleware


@pytest.mark.django_db
def test_a_bug_outside_the_view_is_still_a_json_500(settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.FailsWithABug"]
    response = Client(raise_request_exception=False).get("/api/v1/blocks/")
    assert response.status_code == 500 and response.json()["code"] == "server_error"


def test_other_errors_are_left_alone():
    middleware = DatabaseUnavailableMiddleware(lambda request: None)
    assert middleware.process_exception(RequestFactory().get("/"), ValueError("bug")) is None

"""/metrics: what it exports, who may read it, several workers summed; the alert rules refer to real metrics."""

import json
import os
import re
import signal
import threading
import time
import urllib.request
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.db import connection
from django.test import Client
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from examplatform import exam_mode
from examplatform.observability.metrics import current_pool
from examplatform.testing import app_server, http_json, throwaway_redis, wait_for

pytestmark = pytest.mark.django_db

ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(parsed, name: str, **labels) -> float:
    return parsed.get((name, frozenset(labels.items())), 0.0)


def scrape(client=None, **extra) -> dict:
    response = (client or Client()).get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return samples(response.content.decode())


def test_it_counts_requests_by_route_pattern_and_status(api, bank):
    before = scrape()
    session = api.post("/api/v1/sessions/", {"count": 2, "mode": "tutor"}, format="json").json()
    question = session["questions"][0]["id"]
    api.put(f"/api/v1/sessions/{session['id']}/answers/{question}/", {"option": "a"}, format="json")
    Client().get("/no/such/page")
    after = scrape()

    route = "api/v1/sessions/<id:session_id>/answers/<id:question_id>/"
    answer = {"method": "PUT", "route": route, "status": "200"}
    assert value(after, "examplatform_http_requests_total", **answer) - value(
        before, "examplatform_http_requests_total", **answer) == 1
    assert value(after, "examplatform_http_request_duration_seconds_count", **answer) - value(
        before, "examplatform_http_request_duration_seconds_count", **answer) == 1
    unmatched = {"method": "GET", "route": "<unmatched>", "status": "404"}
    assert value(after, "examplatform_http_requests_total", **unmatched) - value(
        before, "examplatform_http_requests_total", **unmatched) == 1
    assert value(after, "examplatform_db_queries_total", route=route) > value(
        before, "examplatform_db_queries_total", route=route)
    assert value(after, "examplatform_http_request_db_seconds_count", route=route) > value(
        before, "examplatform_http_request_db_seconds_count", route=route)


def test_it_reports_the_pool_and_the_breaker(api, bank):
    api.get("/api/v1/blocks/")
    parsed = scrape()
    assert value(parsed, "examplatform_db_pool_max") >= 1
    assert value(parsed, "examplatform_db_pool_size") >= 1
    assert ("examplatform_db_pool_in_use", frozenset()) in parsed
    assert ("examplatform_db_pool_waiting", frozenset()) in parsed
    assert value(parsed, "examplatform_redis_breaker_state") in {0, 1, 2}


def test_it_reports_exam_mode_and_when_it_ends():
    now = timezone.now()
    until = now + timedelta(hours=2)
    exam_mode.turn_on(by="test", now=now, until=until)
    try:
        parsed = scrape()
    finally:
        exam_mode.forget()
    assert value(parsed, "examplatform_exam_mode_on") == 1
    assert value(parsed, "examplatform_exam_mode_expires_at_seconds") == pytest.approx(until.timestamp())


def test_exam_mode_off_has_no_end_time():
    exam_mode.forget()
    parsed = scrape()
    assert value(parsed, "examplatform_exam_mode_on") == 0
    assert value(parsed, "examplatform_exam_mode_expires_at_seconds") == 0


def _alert_rules() -> dict[str, str]:
    return {rule["alert"]: rule["expr"] for group in yaml.safe_load(ALERTS.read_text())["groups"]
            for rule in group["rules"]}


def _exam_mode_values() -> tuple[float, float, float]:
    exam_mode.forget()  # read the switch as a worker whose cache expired does
    parsed = scrape()
    return tuple(value(parsed, f"examplatform_exam_mode_{name}")
                 for name in ("on", "expires_at_seconds", "switched_on_at_seconds"))


def test_a_switch_past_its_end_time_reads_as_off_so_nothing_is_left_paused():
    now = timezone.now()
    exam_mode.turn_on(by="test", now=now - timedelta(hours=3), until=now - timedelta(hours=1))
    assert _exam_mode_values() == (0, 0, 0)
    assert not exam_mode.is_on()


def test_exam_mode_on_longer_than_the_alert_allows_exports_what_the_alert_fires_on():
    expr = _alert_rules()["ExamModeOnTooLong"]
    allowed = int(re.search(r"time\(\) - (\d+)", expr).group(1))
    now = timezone.now()
    # Turned on long ago with an end time typed a day too late: heavy jobs would stay paused.
    switched_on = now - timedelta(seconds=allowed + 600)
    until = now + timedelta(days=1)
    exam_mode.turn_on(by="test", now=switched_on, until=until)
    on, expires_at, switched_on_at = _exam_mode_values()
    assert on == 1 and expires_at == pytest.approx(until.timestamp())
    assert switched_on_at == pytest.approx(switched_on.timestamp())
    # The rule's conditions on these values, with time() as Prometheus evaluates it.
    assert on == 1 and expires_at > 0 and switched_on_at > 0 and switched_on_at < time.time() - allowed

    exam_mode.turn_on(by="test", now=timezone.now(), until=until)  # turned on again just now: no longer too long
    assert not _exam_mode_values()[2] < time.time() - allowed


@pytest.mark.parametrize(
    ("remote", "headers", "allowed"),
    [
        ("127.0.0.1", {}, True),
        ("203.0.113.9", {}, False),
        # Relayed by a proxy on this host: the real client is someone on the internet.
        ("127.0.0.1", {"HTTP_X_FORWARDED_FOR": "198.51.100.7"}, False),
        ("203.0.113.9", {"HTTP_AUTHORIZATION": "Bearer s3cret-scrape-token"}, True),
        ("203.0.113.9", {"HTTP_AUTHORIZATION": "Bearer wrong"}, False),
    ],
)
def test_it_is_closed_to_the_public(settings, remote, headers, allowed):
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    response = Client().get("/metrics", REMOTE_ADDR=remote, **headers)
    if allowed:
        assert response.status_code == 200
    else:
        assert response.status_code == 403
        assert response.json() == {"detail": "Metrics are not public.", "code": "forbidden"}


def test_the_allowed_networks_come_from_the_environment(settings):
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
    assert Client().get("/metrics", REMOTE_ADDR="10.20.30.40").status_code == 200
    assert Client().get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


# --- Several worker processes ---------------------------------------------------------------


def _json_lines(log: str) -> list[dict]:
    lines = []
    for raw in log.splitlines():
        if raw.startswith("{"):
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue
    return lines


def _served_by(log: str, route: str) -> list[int]:
    return [line["pid"] for line in _json_lines(log) if line.get("event") == "request" and line.get("route") == route]


def _scrape_count(server, route: str) -> float:
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:  # noqa: S310 - loopback
        parsed = samples(response.read().decode())
    return sum(v for (name, labels), v in parsed.items()
               if name == "examplatform_http_requests_total" and ("route", route) in labels)


@pytest.mark.django_db(transaction=True)
def test_a_scrape_of_any_worker_sums_every_workers_counts_even_after_one_dies():
    env = {"ENABLE_TEST_ENDPOINTS": "true", "SLOW_SQL_WARN_MS": "50"}
    with app_server(env=env, workers=3) as server:
        sent = 0
        # Three concurrent half-second requests on three sync workers land on three different workers.
        for _ in range(5):
            threads = [threading.Thread(target=http_json, args=("GET", f"{server.url}/test/slow/?seconds=0.5"))
                       for _ in range(3)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            sent += 3
            wait_for(lambda n=sent: len(_served_by(server.log(), "test/slow/")) == n, timeout=10, what="request logs")
            if len(set(_served_by(server.log(), "test/slow/"))) == 3:
                break
        assert len(set(_served_by(server.log(), "test/slow/"))) == 3

        # Each scrape is answered by whichever worker accepts it; every one reports the total.
        assert {_scrape_count(server, "test/slow/") for _ in range(6)} == {sent}

        # A killed worker's counts stay in the totals; gunicorn replaces it.
        victim = server.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: victim not in server.worker_pids() and len(server.worker_pids()) == 3, timeout=30,
                 what="replacement worker")
        assert _scrape_count(server, "test/slow/") == sent

        # The slowest queries are one grep away in the server's log.
        http_json("GET", f"{server.url}/test/slow-sql/?seconds=0.08&secret=do-not-log-me")
        wait_for(lambda: "slow_sql" in server.log(), timeout=10, what="slow_sql line")
        (report,) = [line for line in _json_lines(server.log()) if line.get("event") == "slow_sql"]
        assert report["slowest_queries"][0]["sql"] == "SELECT pg_sleep(?), ? <> ?"
        assert "do-not-log-me" not in server.log()

        metrics_dir = re.search(r"prometheus multiprocess dir: (\S+)", server.log()).group(1)
        assert Path(metrics_dir).is_dir()
    assert not Path(metrics_dir).exists()


# --- Pool and breaker under real load -------------------------------------------------------


def _server_metrics(server) -> dict:
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:  # noqa: S310 - loopback
        return samples(response.read().decode())


def _pg_sleeps_running() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                       " AND query LIKE 'SELECT pg_sleep(%%' AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_connection_held_by_a_request_is_in_use_on_a_scrape_served_by_another_worker():
    # Sync workers: one connection each, taken during the request and given back when it has finished.
    with app_server(env={"ENABLE_TEST_ENDPOINTS": "true"}, workers=2) as server:
        assert value(_server_metrics(server), "examplatform_db_pool_in_use") == 0
        slow = threading.Thread(target=http_json, args=("GET", f"{server.url}/test/slow-sql/?seconds=5"))
        slow.start()
        try:
            # Once its query runs, the request holds its connection until it has finished: seconds from now.
            wait_for(lambda: _pg_sleeps_running() == 1, timeout=10, what="the slow query")
            during = _server_metrics(server)
            still_running = _pg_sleeps_running() == 1
        finally:
            slow.join()
        wait_for(lambda: value(_server_metrics(server), "examplatform_db_pool_in_use") == 0, timeout=10,
                 what="the connection given back")
    assert still_running
    # What DbPoolNearExhaustion divides: one of the two workers' single connections is lent out.
    assert value(during, "examplatform_db_pool_in_use") == 1
    assert value(during, "examplatform_db_pool_max") == 2


def _pool_gauge(name: str) -> float:
    return REGISTRY.get_sample_value(f"examplatform_db_pool_{name}") or 0.0


def _ask_for_a_connection(outcome: list) -> None:
    try:
        connection.ensure_connection()
        outcome.append("served")
    except Exception as exc:
        outcome.append(type(exc).__name__)
    finally:
        connection.close()


@contextmanager
def _every_connection_held(pool):
    """Threads (each with its own Django connection) hold all of the pool's connections until the block ends."""
    release = threading.Event()
    holding = threading.Semaphore(0)

    def hold():
        try:
            connection.ensure_connection()
            holding.release()
            release.wait(30)
        finally:
            connection.close()

    holders = [threading.Thread(target=hold) for _ in range(pool.max_size)]
    try:
        for holder in holders:
            holder.start()
        for _ in holders:
            assert holding.acquire(timeout=30)
        yield
    finally:
        release.set()
        for holder in holders:
            holder.join()


@pytest.mark.django_db(transaction=True)
def test_a_request_waiting_for_a_connection_counts_while_it_waits_and_as_an_error_when_it_gives_up():
    Client().get("/health")  # a web process: its middleware turns the checkout counting on
    connection.close()
    pool = current_pool()
    errors_before, in_use_before = _pool_gauge("errors_total"), _pool_gauge("in_use")

    served: list = []
    waiter = threading.Thread(target=_ask_for_a_connection, args=(served,))
    with _every_connection_held(pool):
        assert _pool_gauge("in_use") == in_use_before + pool.max_size
        waiter.start()
        wait_for(lambda: _pool_gauge("waiting") == 1, timeout=10, what="a waiting request")
    waiter.join()
    assert served == ["served"]
    assert _pool_gauge("waiting") == 0 and _pool_gauge("in_use") == in_use_before
    assert _pool_gauge("errors_total") == errors_before  # waited, then served: not an error

    refused: list = []
    timeout, pool.timeout = pool.timeout, 1.0
    try:
        with _every_connection_held(pool):
            _ask_for_a_connection(refused)
    finally:
        pool.timeout = timeout
    assert refused == ["OperationalError"]
    assert _pool_gauge("errors_total") == errors_before + 1
    assert _pool_gauge("waiting") == 0


def _breaker_states(server) -> set[float]:
    # Each scrape is answered by whichever worker accepts it.
    return {value(_server_metrics(server), "examplatform_redis_breaker_state") for _ in range(6)}


@pytest.mark.django_db(transaction=True)
def test_the_breaker_gauge_shows_the_servers_breaker_open_and_then_closed_again():
    with throwaway_redis() as redis, app_server(
        env={"REDIS_URL": redis.url, "REDIS_BREAKER_RESET_SECONDS": "0.2"}, workers=2
    ) as server:
        assert _breaker_states(server) == {0}
        redis.kill()
        assert http_json("GET", f"{server.url}/health/ready").body["status"] == "degraded"
        # Open until a request probes Redis again; scrapes don't.
        assert _breaker_states(server) == {2}
        redis.restart()
        wait_for(lambda: http_json("GET", f"{server.url}/health/ready").body["status"] == "ok", timeout=20,
                 what="Redis back")
        assert _breaker_states(server) == {0}

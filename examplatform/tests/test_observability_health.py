"""Liveness never touches the database or cache; readiness checks both and says which one failed."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from examplatform.redis_client import breaker
from examplatform.testing import app_server, http_json, throwaway_postgres, throwaway_redis


@pytest.fixture
def closed_breaker_after():
    """Breaking Redis opens this process's (shared) breaker: close it again for the tests that follow."""
    yield
    breaker.reset()


def test_liveness_runs_no_query(client, db):
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert captured.captured_queries == []


@pytest.mark.django_db
def test_ready_reports_each_dependency_when_all_are_up(client):
    response = client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["status"] == "ok" and body["checks"]["redis"]["status"] == "ok"
    assert body["checks"]["redis"]["breaker"] in {"closed", "half-open", "open"}
    assert isinstance(body["checks"]["database"]["ms"], float)


@pytest.mark.django_db
def test_ready_counts_its_database_check_in_the_timing_headers(client):
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/health/ready")
    assert response.json()["checks"]["database"]["status"] == "ok"
    # SELECT 1 runs on a connection of its own, which Django's execute wrapper never sees; it is counted anyway.
    assert captured.captured_queries == []
    assert response["X-DB-Queries"] == "1"
    assert float(response["X-DB-Time-ms"]) > 0


@pytest.mark.django_db
def test_a_dead_redis_makes_the_service_degraded_not_unready(client, settings, closed_breaker_after):
    with throwaway_redis() as redis:
        settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": redis.url}}
        assert client.get("/health/ready").json()["checks"]["redis"]["status"] == "ok"
        redis.kill()
        response = client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["redis"]["status"] == "down" and body["checks"]["redis"]["error"]
    assert body["checks"]["database"]["status"] == "ok"


@pytest.mark.django_db
def test_a_hung_redis_is_reported_within_its_timeout(client, settings, closed_breaker_after):
    with throwaway_redis() as redis:
        settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": redis.url}}
        redis.pause()
        response = client.get("/health/ready")
    body = response.json()
    assert response.status_code == 200 and body["checks"]["redis"]["status"] == "down"
    assert body["checks"]["redis"]["ms"] < 5000  # the 1 s socket timeout, not a hang


def test_a_dead_database_makes_the_service_unready_while_liveness_stays_up():
    with throwaway_postgres() as pg, app_server(env={"DATABASE_URL": pg.url}, workers=1) as server:
        assert http_json("GET", f"{server.url}/health/ready").status == 200
        pg.stop()
        ready = http_json("GET", f"{server.url}/health/ready")
        live = http_json("GET", f"{server.url}/health")
    assert ready.status == 503
    assert ready.body["status"] == "unavailable"
    assert ready.body["checks"]["database"]["status"] == "down"
    assert ready.body["checks"]["redis"]["status"] == "ok"
    assert "postgres://" not in str(ready.body)
    assert live.status == 200
    assert ready.headers["X-DB-Queries"] == "0" and "X-Request-ID" in ready.headers

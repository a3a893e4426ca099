"""One JSON line per request; slow_sql and slow_request reports with normalized SQL and no values."""

import io
import json
import logging

import pytest
from django.db import connection
from django.http import JsonResponse
from django.test import Client
from django.urls import include, path

from examplatform import urls as root_urls
from examplatform.observability.jsonlog import JsonFormatter
from examplatform.testing import app_server, http_json, wait_for

pytestmark = pytest.mark.django_db


def seven_queries(request):
    """Five quick queries around two slow ones, the slowest run last; values bound and inlined that must not leak."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s AS quick", ["param-secret-1"])
        cursor.execute("SELECT pg_sleep(%s) AS second_slowest", [0.12])
        for n in range(2, 6):
            cursor.execute("SELECT %s AS quick", [f"param-secret-{n}"])
        cursor.execute("SELECT pg_sleep(%s), 'inlined-secret' AS slowest", [0.4])
    return JsonResponse({})


# The real URLconf plus the test-only endpoints (mounted by urls.py only with ENABLE_TEST_ENDPOINTS).
urlpatterns = [*root_urls.urlpatterns, path("test/", include("examplatform.test_endpoints")),
               path("seven-queries/", seven_queries)]
handler404 = root_urls.handler404
handler500 = root_urls.handler500


@pytest.fixture
def log_lines():
    """What the request and SQL loggers write, as parsed JSON objects."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    loggers = [logging.getLogger("examplatform.request"), logging.getLogger("examplatform.sql")]
    for logger in loggers:
        logger.addHandler(handler)

    def read(event: str | None = None) -> list[dict]:
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        return [line for line in lines if event is None or line["event"] == event]

    yield read
    for logger in loggers:
        logger.removeHandler(handler)


def test_it_logs_one_line_per_request_with_the_route_pattern_and_the_user(api, student, bank, log_lines):
    session = api.post("/api/v1/sessions/", {"count": 2, "mode": "tutor"}, format="json").json()
    response = api.put(
        f"/api/v1/sessions/{session['id']}/answers/{session['questions'][0]['id']}/", {"option": "b"}, format="json"
    )
    requests = log_lines("request")
    assert len(requests) == 2
    line = requests[-1]
    assert line["route"] == "api/v1/sessions/<id:session_id>/answers/<id:question_id>/"
    assert line["method"] == "PUT" and line["status"] == 200 and line["level"] == "info"
    assert str(line["user_id"]) == str(student.id)
    assert line["request_id"] == response["X-Request-ID"]
    assert line["db_queries"] == int(response["X-DB-Queries"])
    assert line["duration_ms"] == float(response["X-Response-Time-ms"])
    assert line["db_ms"] == float(response["X-DB-Time-ms"])


def test_it_logs_anonymous_and_unmatched_requests_without_a_user_query(client, log_lines):
    response = client.get("/no/such/page")
    (line,) = log_lines("request")
    assert line["route"] is None and line["status"] == 404 and line["user_id"] is None
    assert response["X-DB-Queries"] == "0"


def test_it_logs_the_admin_user_it_already_loaded(client, log_lines):
    from sessions_app.tests.factories import UserFactory

    staff = UserFactory(username="staffer", is_staff=True, is_superuser=True)
    client.force_login(staff)
    client.get("/admin/")
    assert log_lines("request")[-1]["user_id"] == staff.id


@pytest.mark.urls(__name__)
def test_a_slow_query_is_reported_as_slow_sql_with_its_shape_and_no_values(settings, log_lines):
    settings.SLOW_SQL_WARN_MS = 50
    settings.SLOW_SQL_ERROR_MS = 10_000
    response = Client().get("/test/slow-sql/", {"seconds": "0.1237", "secret": "hunter2-answer"})
    assert response.status_code == 200

    (report,) = log_lines("slow_sql")
    assert report["level"] == "warning" and report["logger"] == "examplatform.sql"
    assert report["route"] == "test/slow-sql/" and report["request_id"] == response["X-Request-ID"]
    assert report["slowest_ms"] >= 120 and report["slow_queries"] == 1
    assert report["slowest_queries"][0]["sql"] == "SELECT pg_sleep(?), ? <> ?"
    assert report["slowest_queries"][0]["ms"] >= 120
    raw = json.dumps(report)
    assert "hunter2-answer" not in raw and "inlined-secret" not in raw and "0.1237" not in raw


@pytest.mark.urls(__name__)
def test_slow_sql_lists_the_five_slowest_queries_slowest_first_without_their_values(settings, log_lines):
    settings.SLOW_SQL_WARN_MS = 100
    settings.SLOW_SQL_ERROR_MS = 10_000
    response = Client().get("/seven-queries/")

    (report,) = log_lines("slow_sql")
    assert report["db_queries"] == 7 and response["X-DB-Queries"] == "7"
    top = report["slowest_queries"]
    assert len(top) == 5
    assert [query["sql"] for query in top[:2]] == [
        "SELECT pg_sleep(?), ? AS slowest", "SELECT pg_sleep(?) AS second_slowest"]
    assert {query["sql"] for query in top[2:]} == {"SELECT ? AS quick"}
    assert [query["ms"] for query in top] == sorted((query["ms"] for query in top), reverse=True)
    assert report["slowest_ms"] == top[0]["ms"] and report["slow_queries"] == 2
    assert "secret" not in json.dumps(report)


@pytest.mark.urls(__name__)
def test_a_query_over_the_error_threshold_is_an_error(settings, log_lines):
    settings.SLOW_SQL_WARN_MS = 20
    settings.SLOW_SQL_ERROR_MS = 50
    Client().get("/test/slow-sql/", {"seconds": "0.08"})
    assert log_lines("slow_sql")[0]["level"] == "error"


@pytest.mark.urls(__name__)
def test_a_slow_request_is_reported_with_its_slowest_queries(settings, log_lines):
    settings.SLOW_REQUEST_WARN_MS = 100
    settings.SLOW_REQUEST_ERROR_MS = 10_000
    response = Client().get("/test/slow-sql/", {"seconds": "0.15"})

    (report,) = log_lines("slow_request")
    assert report["level"] == "warning" and report["logger"] == "examplatform.request"
    assert report["duration_ms"] >= 150 and report["duration_ms"] == float(response["X-Response-Time-ms"])
    assert report["slowest_queries"][0]["sql"] == "SELECT pg_sleep(?), ? <> ?"


@pytest.mark.urls(__name__)
def test_a_request_over_the_error_threshold_is_an_error(settings, log_lines):
    settings.SLOW_REQUEST_WARN_MS = 10
    settings.SLOW_REQUEST_ERROR_MS = 50
    Client().get("/test/slow-sql/", {"seconds": "0.06"})
    assert log_lines("slow_request")[0]["level"] == "error"


def test_requests_under_the_thresholds_report_nothing_slow(api, bank, log_lines, settings):
    settings.SLOW_SQL_WARN_MS = settings.SLOW_REQUEST_WARN_MS = 5000
    api.get("/api/v1/blocks/")
    assert log_lines("slow_sql") == [] and log_lines("slow_request") == []


def _json_lines(log: str) -> list[dict]:
    return [json.loads(line) for line in log.splitlines() if line.startswith('{"ts"')]


@pytest.mark.django_db(transaction=True)
def test_one_request_reports_slow_sql_and_slow_request_at_thresholds_from_the_environment():
    # A 90 ms query is under the defaults (100 ms SQL, 500 ms request): only the environment makes these fire.
    env = {"ENABLE_TEST_ENDPOINTS": "true", "SLOW_SQL_WARN_MS": "30", "SLOW_SQL_ERROR_MS": "60",
           "SLOW_REQUEST_WARN_MS": "70", "SLOW_REQUEST_ERROR_MS": "600000"}
    with app_server(env=env, workers=1) as server:
        reply = http_json("GET", f"{server.url}/test/slow-sql/?seconds=0.09&secret=env-test-answer")

        def reports() -> dict[str, dict]:
            return {line["event"]: line for line in _json_lines(server.log())
                    if line.get("request_id") == reply.headers["X-Request-ID"]}

        wait_for(lambda: {"request", "slow_sql", "slow_request"} <= reports().keys(), timeout=10, what="reports")
        found, log = reports(), server.log()
    assert reply.status == 200
    assert found["slow_sql"]["level"] == "error"  # 90 ms >= SLOW_SQL_ERROR_MS=60
    assert found["slow_request"]["level"] == "warning"  # >= SLOW_REQUEST_WARN_MS=70, far under its error level
    for event in ("slow_sql", "slow_request"):
        assert found[event]["slowest_queries"][0]["sql"] == "SELECT pg_sleep(?), ? <> ?"
    assert "env-test-answer" not in log and "inlined-secret" not in log

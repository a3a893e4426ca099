"""One JSON line per request; slow_sql and slow_request reports with normalized SQL and no values."""

import io
import json
import logging

import pytest
from django.test import Client
from django.urls import include, path

from examplatform import urls as root_urls
from examplatform.observability.jsonlog import JsonFormatter

pytestmark = pytest.mark.django_db

# The real URLconf plus the test-only endpoints (mounted by urls.py only with ENABLE_TEST_ENDPOINTS).
urlpatterns = [*root_urls.urlpatterns, path("test/", include("examplatform.test_endpoints"))]
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
    assert line["route"] == "api/v1/sessions/<int:session_id>/answers/<int:question_id>/"
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

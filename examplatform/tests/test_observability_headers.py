"""Every response carries the timing headers and a request id, with query counts that match what ran."""

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import JsonResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import path

from examplatform import urls as root_urls
from examplatform.observability.sql import normalize
from sessions_app.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TIMING_HEADERS = ("X-Response-Time-ms", "X-DB-Time-ms", "X-DB-Queries", "X-Request-ID")


def boom(request):
    list(connection.cursor().execute("SELECT 1"))
    raise RuntimeError("deliberate failure after one query")


def one_query(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({})


def forbidden(request):
    list(connection.cursor().execute("SELECT 1"))
    raise PermissionDenied


# The test's own URLconf: the real one plus views that fail with a 500 and a 403.
urlpatterns = [*root_urls.urlpatterns, path("boom/", boom), path("one-query/", one_query),
               path("forbidden/", forbidden)]
handler403 = root_urls.handler403
handler404 = root_urls.handler404
handler500 = root_urls.handler500


def run(client, method: str, url: str, **kwargs):
    """The response and the queries Django itself saw while serving it."""
    with CaptureQueriesContext(connection) as captured:
        response = getattr(client, method)(url, **kwargs)
    return response, len(captured.captured_queries)


def assert_timing_headers(response, queries: int) -> None:
    for name in TIMING_HEADERS:
        assert response.has_header(name), name
    assert float(response["X-Response-Time-ms"]) > 0
    assert float(response["X-DB-Time-ms"]) >= 0
    assert int(response["X-DB-Queries"]) == queries
    if queries == 0:
        assert float(response["X-DB-Time-ms"]) == 0


def test_it_is_the_outermost_middleware(settings):
    assert settings.MIDDLEWARE[0] == "examplatform.observability.middleware.ObservabilityMiddleware"


def test_it_times_health_without_any_query(client):
    response, queries = run(client, "get", "/health")
    assert response.status_code == 200 and queries == 0
    assert_timing_headers(response, 0)


def test_it_counts_the_queries_of_an_api_write(api, bank):
    created, queries = run(api, "post", "/api/v1/sessions/", data={"count": 3, "mode": "tutor"}, format="json")
    assert created.status_code == 201 and queries > 0
    assert_timing_headers(created, queries)
    session = created.json()
    url = f"/api/v1/sessions/{session['id']}/answers/{session['questions'][0]['id']}/"
    answered, queries = run(api, "put", url, data={"option": "a"}, format="json")
    assert answered.status_code == 200
    assert_timing_headers(answered, queries)
    assert float(answered["X-DB-Time-ms"]) > 0


def test_it_counts_the_queries_of_an_admin_page(client):
    client.force_login(UserFactory(username="staffer", is_staff=True, is_superuser=True))
    response, queries = run(client, "get", "/admin/sessions_app/question/")
    assert response.status_code == 200 and queries >= 2  # the session and the user, then the list
    assert_timing_headers(response, queries)


def test_it_sets_them_on_a_401(client):
    response, queries = run(client, "get", "/api/v1/sessions/")
    assert response.status_code == 401
    assert_timing_headers(response, queries)


def test_it_sets_them_on_the_400_for_a_host_not_allowed(client):
    # Django refuses the Host inside the middleware stack; handler400 answers, and this middleware still wraps it.
    response, queries = run(client, "get", "/api/v1/blocks/", HTTP_HOST="attacker.example")
    assert response.status_code == 400 and response.json()["code"] == "bad_request"
    assert queries == 0
    assert_timing_headers(response, 0)


def test_it_sets_them_on_a_drf_403_and_counts_the_permission_query(api):
    response, queries = run(api, "get", "/api/v1/analytics/cohort/")  # staff only: a student gets 403
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    assert queries >= 1  # IsStaff reads the users table
    assert_timing_headers(response, queries)


@pytest.mark.urls(__name__)
def test_it_sets_them_on_djangos_own_403_and_counts_the_query_before_it():
    response, queries = run(Client(), "get", "/forbidden/")
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    assert queries == 1
    assert_timing_headers(response, 1)


def test_it_sets_them_on_a_404(client):
    response, queries = run(client, "get", "/no-such-page")
    assert response.status_code == 404
    assert_timing_headers(response, queries)


@pytest.mark.urls(__name__)
def test_it_sets_them_on_a_500_and_counts_the_query_before_the_crash():
    client = Client(raise_request_exception=False)
    response, queries = run(client, "get", "/boom/")
    assert response.status_code == 500 and response.json()["code"] == "server_error"
    assert queries == 1
    assert_timing_headers(response, 1)


@pytest.mark.urls(__name__)
def test_it_counts_only_the_requests_own_queries(client):
    list(connection.cursor().execute("SELECT 1"))  # before the request: not the request's
    response = client.get("/one-query/")
    assert response["X-DB-Queries"] == "1"
    assert client.get("/health")["X-DB-Queries"] == "0"


def test_it_keeps_a_request_id_sent_by_a_trusted_proxy(client):
    response = client.get("/health", HTTP_X_REQUEST_ID="edge-4f2a.17", REMOTE_ADDR="127.0.0.1")
    assert response["X-Request-ID"] == "edge-4f2a.17"


def test_it_replaces_a_request_id_sent_by_anyone_else(client):
    response = client.get("/health", HTTP_X_REQUEST_ID="forged-id", REMOTE_ADDR="203.0.113.9")
    assert response["X-Request-ID"] != "forged-id" and len(response["X-Request-ID"]) == 32


def test_it_trusts_the_proxies_the_environment_names(settings):
    settings.TRUSTED_PROXY_IPS = ["10.1.0.0/16"]
    client = Client()
    assert client.get("/health", HTTP_X_REQUEST_ID="via-edge", REMOTE_ADDR="10.1.2.3")["X-Request-ID"] == "via-edge"
    assert client.get("/health", HTTP_X_REQUEST_ID="via-edge", REMOTE_ADDR="127.0.0.1")["X-Request-ID"] != "via-edge"


def test_it_replaces_a_request_id_that_could_forge_log_lines(client):
    response = client.get("/health", HTTP_X_REQUEST_ID='x" "status":200', REMOTE_ADDR="127.0.0.1")
    assert response["X-Request-ID"] != 'x" "status":200'


def test_it_gives_every_request_its_own_id(client):
    assert client.get("/health")["X-Request-ID"] != client.get("/health")["X-Request-ID"]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ('SELECT "t"."id" FROM "t" WHERE "t"."a" = %s AND "t"."b" IN (%s, %s, %s) LIMIT 21',
         'SELECT "t"."id" FROM "t" WHERE "t"."a" = ? AND "t"."b" IN (...) LIMIT ?'),
        ("SELECT pg_sleep(0.25), 'inlined-secret' <> %s -- a 'comment'\n", "SELECT pg_sleep(?), ? <> ?"),
        ("UPDATE t SET x = -1.5e3, y = $$dollar$$ WHERE z = %(name)s", "UPDATE t SET x = ?, y = ? WHERE z = ?"),
    ],
)
def test_it_normalizes_sql_to_its_shape(sql, expected):
    assert normalize(sql) == expected

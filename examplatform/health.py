"""Liveness and readiness.

`/health` answers from the process alone, touching neither the database nor the
cache: a slow database must not get healthy workers restarted. `/health/ready`
checks PostgreSQL and Redis with short timeouts: without the database the app
can't serve (503); without Redis it still can, more slowly (200, "degraded").
"""

from contextlib import nullcontext
from time import perf_counter

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import JsonResponse


def health(request):
    return JsonResponse({"status": "ok"})


def _timed(check) -> dict:
    started = perf_counter()
    try:
        result = {"status": "ok", **(check() or {})}
    except Exception as exc:  # any failure is the answer, reported by type (never the DSN or a password)
        result = {"status": "down", "error": type(exc).__name__}
    result["ms"] = round((perf_counter() - started) * 1000, 2)
    return result


def _check_database(timer=None) -> dict | None:
    """A fresh connection with connect_timeout: bounded even if the server hangs, and never waits on the pool.

    Its query goes to `timer` (the request's QueryTimer), so X-DB-Queries counts it like any other.
    """
    wrapper = connections[DEFAULT_DB_ALIAS]
    if wrapper.vendor != "postgresql":
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT 1")
        return None
    import psycopg

    timeout = settings.READY_DB_TIMEOUT_SECONDS
    params = {
        **wrapper.get_connection_params(),
        "connect_timeout": max(1, round(timeout)),
        "options": f"-c statement_timeout={int(timeout * 1000)}",
    }
    params.pop("cursor_factory", None)
    counted = timer.timed("SELECT 1") if timer is not None else nullcontext()
    with psycopg.connect(**params) as conn, counted:
        conn.execute("SELECT 1")
    from examplatform.observability.metrics import current_pool

    pool = current_pool()
    if pool is None:
        return None
    stats = pool.get_stats()
    return {"pool": {"max": stats["pool_max"], "open": stats["pool_size"],
                     "in_use": stats["pool_size"] - stats["pool_available"],
                     "waiting": stats.get("requests_waiting", 0)}}


def _check_redis() -> dict | None:
    # The cache's own client: 1 s socket timeouts, no retries; while its breaker is open it fails at once.
    from django_redis import get_redis_connection

    get_redis_connection("default").ping()
    return None


def _breaker_state() -> str:
    from examplatform import redis_client

    return getattr(getattr(redis_client, "breaker", None), "current_state", "unknown")


def ready(request):
    database = _timed(lambda: _check_database(getattr(request, "query_timer", None)))
    if settings.REDIS_URL:
        redis = _timed(_check_redis)
        redis["breaker"] = _breaker_state()
    else:
        redis = {"status": "disabled"}
    if database["status"] != "ok":
        status, code = "unavailable", 503
    elif redis["status"] == "down":
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    return JsonResponse({"status": status, "checks": {"database": database, "redis": redis}}, status=code)

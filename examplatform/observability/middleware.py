"""Timing headers, request id, one JSON log line and metrics for every response.

It must be the first entry of settings.MIDDLEWARE: the time it measures then
covers every other middleware, and the error responses Django builds for the
layers inside it (404, 500, 401/403 from DRF) pass through it too.
"""

import logging
import os
import re
from time import perf_counter

from django.conf import settings
from django.db import connection
from django.utils.functional import SimpleLazyObject, empty

from . import metrics
from .db import QueryTimer
from .net import Networks

request_logger = logging.getLogger("examplatform.request")
sql_logger = logging.getLogger("examplatform.sql")

REQUEST_ID_HEADER = "HTTP_X_REQUEST_ID"
# A forwarded id lands in logs verbatim: accept only what a proxy would send.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}").fullmatch


def _user_id(request):
    """The user id without a query: DRF's authentication sets request.user on this request too.

    Django's own lazy user (sessions, the admin) is only read if something already evaluated it.
    """
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject):
        user = user._wrapped
        if user is empty:
            return None
    return getattr(user, "id", None)


class ObservabilityMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.trusted_proxies = Networks(settings.TRUSTED_PROXY_IPS)
        self.slow_request_warn = settings.SLOW_REQUEST_WARN_MS
        self.slow_request_error = settings.SLOW_REQUEST_ERROR_MS
        self.slow_sql_warn = settings.SLOW_SQL_WARN_MS / 1000
        self.slow_sql_error = settings.SLOW_SQL_ERROR_MS / 1000
        metrics.watch_pool()

    def __call__(self, request):
        started = perf_counter()
        request.request_id = request_id = self._request_id(request)
        # For queries sent outside Django's connection (readiness' own connection): see QueryTimer.timed.
        request.query_timer = timer = QueryTimer()
        with connection.execute_wrapper(timer):
            response = self.get_response(request)
        elapsed = perf_counter() - started
        # After the view: by now this worker's pool exists (a first request opens it).
        metrics.sample_pool()

        duration_ms = round(elapsed * 1000, 2)
        db_ms = round(timer.seconds * 1000, 2)
        response["X-Response-Time-ms"] = str(duration_ms)
        response["X-DB-Time-ms"] = str(db_ms)
        response["X-DB-Queries"] = str(timer.count)
        response["X-Request-ID"] = request_id

        match = request.resolver_match
        route = match.route if match is not None else None
        status = response.status_code
        metrics.observe_request(
            method=request.method, route=route, status=status, seconds=elapsed, db_seconds=timer.seconds,
            queries=timer.count,
        )
        fields = {
            "request_id": request_id,
            "method": request.method,
            "route": route,
            "status": status,
            "user_id": _user_id(request),
            "duration_ms": duration_ms,
            "db_ms": db_ms,
            "db_queries": timer.count,
        }
        if request_logger.isEnabledFor(logging.INFO):
            request_logger.info("request", extra={"fields": fields})
        if timer.slowest >= self.slow_sql_warn:
            self._report_slow_sql(fields, timer)
        if duration_ms >= self.slow_request_warn:
            level = logging.ERROR if duration_ms >= self.slow_request_error else logging.WARNING
            request_logger.log(level, "slow_request", extra={"fields": {**fields, "slowest_queries": timer.top(5)}})
        return response

    def _request_id(self, request) -> str:
        incoming = request.META.get(REQUEST_ID_HEADER)
        if incoming and _VALID_REQUEST_ID(incoming) and self.trusted_proxies.contains(request.META.get("REMOTE_ADDR")):
            return incoming
        return os.urandom(16).hex()  # as unique as a uuid4, a third of the cost

    def _report_slow_sql(self, fields: dict, timer: QueryTimer) -> None:
        level = logging.ERROR if timer.slowest >= self.slow_sql_error else logging.WARNING
        over = sum(1 for seconds, _ in timer.queries if seconds >= self.slow_sql_warn)
        sql_logger.log(
            level,
            "slow_sql",
            extra={"fields": {**fields, "slowest_ms": round(timer.slowest * 1000, 2), "slow_queries": over,
                              "slowest_queries": timer.top(5)}},
        )

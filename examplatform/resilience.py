"""A database in trouble answers 503 fast, and the app recovers by itself when it is back.

- `guard` is this process's view of whether PostgreSQL can be reached. The pool's
  connection attempts report to it (examplatform/postgres/base.py); once they
  fail, requests are refused at once instead of each waiting the pool's full
  timeout, and every DB_DOWN_RETRY_SECONDS one request probes with a direct
  connection. When the probe gets through, the pool is rebuilt: psycopg's pool
  would otherwise retry with a growing back-off for minutes.
- `DatabaseUnavailableMiddleware` turns what reaches the view layer from the
  database (down, restarting, pool exhausted: OperationalError, InterfaceError,
  psycopg_pool.PoolTimeout) into 503 with Retry-After and {"detail", "code"}.
"""

import logging
import threading
import time

import psycopg
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse

logger = logging.getLogger(__name__)


class DatabaseUnavailable(OperationalError):
    """Raised instead of waiting on the pool while the database is known to be down."""


class DatabaseGuard:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_failure = 0.0
        self._last_success = 0.0
        # While set, the database is down; the first request after this time probes it.
        self._retry_at: float | None = None

    @property
    def retry_seconds(self) -> float:
        return float(getattr(settings, "DB_DOWN_RETRY_SECONDS", 1.0))

    @property
    def is_down(self) -> bool:
        return self._retry_at is not None

    def connect_failed(self) -> None:
        self._last_failure = time.monotonic()

    def connect_succeeded(self) -> None:
        self._last_success = time.monotonic()

    @property
    def failing(self) -> bool:
        """Whether the latest connection attempt failed."""
        return self._last_failure > self._last_success

    def mark_down(self, reason: str) -> None:
        with self._lock:
            was_down = self._retry_at is not None
            self._retry_at = time.monotonic() + self.retry_seconds
        if not was_down:
            logger.warning("database unreachable (%s): answering 503 and probing every %.1fs", reason,
                           self.retry_seconds)

    def mark_up(self) -> None:
        with self._lock:
            self._retry_at = None
        logger.warning("database reachable again")

    def claim_probe(self) -> bool:
        """While down: True for the one caller that should probe now, False for everyone else."""
        with self._lock:
            if self._retry_at is None:
                return False
            now = time.monotonic()
            if now < self._retry_at:
                return False
            self._retry_at = now + self.retry_seconds
            return True


guard = DatabaseGuard()


class ReportingConnection(psycopg.Connection):
    """The pool's connection class: every connection attempt tells `guard` how it went."""

    @classmethod
    def connect(cls, conninfo: str = "", **kwargs):
        try:
            conn = super().connect(conninfo, **kwargs)
        except psycopg.Error:
            guard.connect_failed()
            raise
        guard.connect_succeeded()
        return conn


def unavailable_response(request, exception: BaseException | None) -> JsonResponse | None:
    """503 + Retry-After for an error that means the database is unavailable or busy; None for anything else."""
    if not isinstance(exception, OperationalError | InterfaceError | psycopg.OperationalError):
        return None
    logger.warning("503 for %s %s: %s: %s", request.method, request.path, type(exception).__name__, exception)
    response = JsonResponse(
        # The shape of examplatform.errors.error_body, which can't be imported here: the database
        # backend imports this module before DRF may load.
        {"detail": "The database is unavailable or busy. Retry shortly.", "code": "database_unavailable"},
        status=503,
    )
    response["Retry-After"] = str(getattr(settings, "DB_RETRY_AFTER_SECONDS", 2))
    return response


class DatabaseUnavailableMiddleware:
    """503 + Retry-After for database errors that reach the view layer, instead of a 500.

    Errors raised outside a view (another middleware's response step) reach
    handler500 instead, which asks unavailable_response the same question.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        return unavailable_response(request, exception)

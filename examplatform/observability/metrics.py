"""Prometheus metrics, shared by every gunicorn worker through prometheus_client's multiprocess mode.

With PROMETHEUS_MULTIPROC_DIR set (deploy/gunicorn.conf.py sets a default) each
worker writes its samples to files there and a scrape of any worker sums them
all; without it (tests, runserver) they live in this process.
"""

import logging
import os
import time

from django.db import DEFAULT_DB_ALIAS, connections
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

# The module, not its `breaker`: the attribute is read on each call, so a replaced breaker is followed.
from examplatform import redis_client

logger = logging.getLogger(__name__)

# Bucket edges sit on the spec's p95 targets (health 50 ms, answer 100 ms, create 200 ms,
# submit 300 ms, API 500 ms) so histogram_quantile() is exact at each of them.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 1.5, 2.5, 5.0, 10.0)
DB_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.3, 1.0, 2.5)
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "<unmatched>"
POOL_SAMPLE_SECONDS = 1.0
BREAKER_VALUES = {"closed": 0, "half-open": 1, "open": 2}

REQUESTS = Counter(
    "examplatform_http_requests", "HTTP requests served, by route pattern and status.", ["method", "route", "status"]
)
LATENCY = Histogram(
    "examplatform_http_request_duration_seconds",
    "Time to serve a request, the whole middleware stack included.",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
DB_TIME = Histogram(
    "examplatform_http_request_db_seconds", "Time a request spent in SQL queries.", ["route"], buckets=DB_BUCKETS
)
DB_QUERIES = Counter("examplatform_db_queries", "SQL queries run by requests.", ["route"])
POOL_MAX = Gauge("examplatform_db_pool_max", "Most connections the pools may open (sum over live workers).",
                 multiprocess_mode="livesum")
POOL_SIZE = Gauge("examplatform_db_pool_size", "Connections the pools hold open.", multiprocess_mode="livesum")
POOL_IN_USE = Gauge("examplatform_db_pool_in_use", "Connections lent out to requests.", multiprocess_mode="livesum")
POOL_WAITING = Gauge("examplatform_db_pool_waiting", "Requests waiting for a connection.", multiprocess_mode="livesum")
POOL_ERRORS = Counter("examplatform_db_pool_errors", "Requests that gave up waiting for a pool connection.")
BREAKER_STATE = Gauge(
    "examplatform_redis_breaker_state",
    "Redis circuit breaker, worst live worker: 0 closed, 1 half-open, 2 open.",
    multiprocess_mode="livemax",
)

_children: dict[tuple[str, str, str], tuple] = {}
_next_pool_sample = 0.0
_pool_errors_seen = 0
_breaker_seen: str | None = None


def observe_request(*, method: str, route: str | None, status: int, seconds: float, db_seconds: float,
                    queries: int) -> None:
    key = (method if method in KNOWN_METHODS else "other", route or UNMATCHED_ROUTE, str(status))
    children = _children.get(key)
    if children is None:
        # .labels() validates and locks on every call; the children never change, so keep them.
        children = _children[key] = (
            REQUESTS.labels(*key), LATENCY.labels(*key), DB_TIME.labels(key[1]), DB_QUERIES.labels(key[1])
        )
    requests, latency, db_time, db_queries = children
    requests.inc()
    latency.observe(seconds)
    if queries:
        db_time.observe(db_seconds)
        db_queries.inc(queries)


def current_pool():
    """This process's psycopg pool, or None: never creates one (that would open connections)."""
    wrapper = connections[DEFAULT_DB_ALIAS]
    pools = getattr(type(wrapper), "_connection_pools", None)
    return pools.get(wrapper.alias) if pools else None


def sample_pool(*, force: bool = False) -> None:
    """Copy the pool's stats into the gauges, at most once a second per worker unless forced."""
    global _next_pool_sample, _pool_errors_seen
    now = time.monotonic()
    if not force and now < _next_pool_sample:
        return
    _next_pool_sample = now + POOL_SAMPLE_SECONDS
    pool = current_pool()
    if pool is None:
        return
    stats = pool.get_stats()
    POOL_MAX.set(stats["pool_max"])
    POOL_SIZE.set(stats["pool_size"])
    POOL_IN_USE.set(stats["pool_size"] - stats["pool_available"])
    POOL_WAITING.set(stats.get("requests_waiting", 0))
    errors = stats.get("requests_errors", 0)
    if errors > _pool_errors_seen:
        POOL_ERRORS.inc(errors - _pool_errors_seen)
    _pool_errors_seen = errors


def sample_breaker() -> None:
    """Cheap enough for every request: the gauge is only written when the state changed."""
    global _breaker_seen
    state = getattr(getattr(redis_client, "breaker", None), "current_state", "closed")
    if state != _breaker_seen:
        BREAKER_STATE.set(BREAKER_VALUES.get(state, 2))
        _breaker_seen = state


class ExamModeCollector:
    """Exam mode is one database-backed switch, not per worker: read it at scrape time."""

    def collect(self):
        from examplatform import exam_mode

        try:
            on = exam_mode.is_on()
            # Older exam_mode modules have no end time.
            expires_at = getattr(exam_mode, "expires_at", lambda: None)()
        except Exception:
            logger.warning("metrics: could not read exam mode", exc_info=True)
            return
        yield GaugeMetricFamily("examplatform_exam_mode_on", "1 while exam mode is on.", value=1 if on else 0)
        yield GaugeMetricFamily(
            "examplatform_exam_mode_expires_at_seconds",
            "Unix time exam mode turns itself off; 0 when off or open-ended.",
            value=expires_at.timestamp() if on and expires_at else 0,
        )


class _ThisProcess:
    def collect(self):
        yield from REGISTRY.collect()


def render() -> bytes:
    sample_pool(force=True)
    sample_breaker()
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(ExamModeCollector())
    return generate_latest(registry)

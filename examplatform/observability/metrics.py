"""Prometheus metrics, shared by every gunicorn worker through prometheus_client's multiprocess mode.

With PROMETHEUS_MULTIPROC_DIR set (deploy/gunicorn.conf.py sets a default) each
worker writes its samples to files there and a scrape of any worker sums them
all; without it (tests, runserver) they live in this process.
"""

import logging
import os
import time
from dataclasses import dataclass

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
POOL_IN_USE = Gauge("examplatform_db_pool_in_use", "Connections lent out to requests right now.",
                    multiprocess_mode="livesum")
POOL_WAITING = Gauge(
    "examplatform_db_pool_waiting", "Requests that have waited over 0.5 s for a connection and still wait.",
    multiprocess_mode="livesum",
)
POOL_ERRORS = Counter("examplatform_db_pool_errors", "Requests that gave up waiting for a pool connection.")

_children: dict[tuple[str, str, str], tuple] = {}
_next_pool_sample = 0.0


@dataclass(frozen=True)
class PoolMetrics:
    """What examplatform/postgres/base.py counts at each checkout, wait and return."""

    in_use: Gauge
    waiting: Gauge
    errors: Counter


def watch_pool() -> None:
    """Count connection checkouts from now on: called by the middleware, so only web processes count.

    The pool's maximum is known from the settings before the pool exists, so in_use / max means
    something from a worker's first request on.
    """
    from examplatform.postgres.base import DatabaseWrapper

    DatabaseWrapper.pool_metrics = PoolMetrics(POOL_IN_USE, POOL_WAITING, POOL_ERRORS)
    options = connections[DEFAULT_DB_ALIAS].settings_dict["OPTIONS"].get("pool")
    if isinstance(options, dict) and options.get("max_size"):
        POOL_MAX.set(options["max_size"])


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
    """Copy the pool's size into the gauges, at most once a second per worker unless forced.

    Only what changes slowly: connections lent out and waits are counted as they happen (watch_pool).
    """
    global _next_pool_sample
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


class BreakerCollector:
    """The workers of a server share one breaker state (a file): any worker reads it at scrape time."""

    def collect(self):
        state = getattr(getattr(redis_client, "breaker", None), "current_state", "closed")
        yield GaugeMetricFamily(
            "examplatform_redis_breaker_state", "Redis circuit breaker: 0 closed, 1 half-open, 2 open.",
            value=BREAKER_VALUES.get(state, 2),
        )


class ExamModeCollector:
    """Exam mode is one database-backed switch, not per worker: read it at scrape time."""

    def collect(self):
        from examplatform import exam_mode

        try:
            current = exam_mode.state()
        except Exception:
            logger.warning("metrics: could not read exam mode", exc_info=True)
            return
        yield GaugeMetricFamily("examplatform_exam_mode_on", "1 while exam mode is on.", value=1 if current.on else 0)
        yield GaugeMetricFamily(
            "examplatform_exam_mode_expires_at_seconds",
            "Unix time exam mode turns itself off; 0 when off or open-ended.",
            value=current.until.timestamp() if current.on and current.until else 0,
        )
        # An end time can't keep exam mode on (it turns itself off then), one set too far ahead can:
        # ExamModeOnTooLong (deploy/prometheus/alerts.yml) counts from here.
        switched_on = current.on and current.source == "runtime" and current.changed_at
        yield GaugeMetricFamily(
            "examplatform_exam_mode_switched_on_at_seconds",
            "Unix time exam mode was last turned on at run time; 0 when off or on from EXAM_MODE.",
            value=current.changed_at.timestamp() if switched_on else 0,
        )


class _ThisProcess:
    def collect(self):
        yield from REGISTRY.collect()


def render() -> bytes:
    sample_pool(force=True)
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(BreakerCollector())
    registry.register(ExamModeCollector())
    return generate_latest(registry)

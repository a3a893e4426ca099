"""Each production-hardening setting as it is live, for `manage.py doctor`.

Every check returns one Row: what it looked at, the live value, what it should be,
and a status. "OFF" rows make the command exit non-zero; "info" rows (exam mode,
the worker model) are reported but have no wrong value.
"""

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection

from . import capacity, exam_mode, redis_client, server

OK, OFF, INFO, NA = "ok", "OFF", "info", "n/a"

# The spec's index audit, by the names the models give them (analytics_utm_user_theme_uniq is
# the unique constraint's index, which serves the mastery lookups).
AUDITED_INDEXES = (
    "sessions_es_user_created_idx",
    "sessions_sa_session_idx",
    "sessions_q_block_theme_idx",
    "analytics_rq_user_due_idx",
    "analytics_utm_user_theme_uniq",
    "analytics_ae_user_ts_idx",
)
DEFAULT_SHARED_BUFFERS = "512MB"
MAX_REDIS_TIMEOUT_SECONDS = 1.0
# Traefik drops an idle upstream connection after this long (deploy/traefik/traefik.yml, idleConnTimeout).
# The app's keep-alive must outlast it, else Traefik reuses a connection the app just closed: a 502.
TRAEFIK_UPSTREAM_IDLE_SECONDS = 4


@dataclass(frozen=True)
class Row:
    check: str
    live: str
    expected: str
    status: str


def _gunicorn_master() -> int | None:
    """The server's master pid from GUNICORN_PIDFILE (the image sets it), when that server is running."""
    pidfile = os.environ.get("GUNICORN_PIDFILE")
    if not pidfile:
        return None
    try:
        pid = int(Path(pidfile).read_text().strip())
        # A pidfile left by a server that died can name a pid the kernel has since given to another program.
        running = b"gunicorn" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if running else None


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def check_workers() -> list[Row]:
    expected = capacity.workers()
    model = server.worker_model()
    rows = [Row("worker model (SERVER_WORKER_CLASS)", model, "sync | gthread | uvicorn", INFO)]
    pidfile = os.environ.get("GUNICORN_PIDFILE")
    master = _gunicorn_master()
    if master is not None:
        running = len(_children(master))
        rows.append(Row("gunicorn workers", f"{running} (master {master})", str(expected),
                        OK if running == expected else OFF))
    elif pidfile:
        # Configured (the image sets it) yet nothing behind it: the server is down, or doctor runs in
        # a container of its own (`compose run`) instead of beside the server (`compose exec api`).
        rows.append(Row("gunicorn workers", f"no server behind {pidfile}", str(expected), OFF))
    else:
        rows.append(Row("gunicorn workers", "not looked for (GUNICORN_PIDFILE unset)", str(expected), NA))
    rows.append(Row("cpu limit (cgroup)", f"{capacity.cpu_limit():g}", "(2 x cpus) + 1 workers", INFO))
    return [*rows, _server_knobs()]


def _server_knobs() -> Row:
    keep_alive, limit, recycle = server.keep_alive(), server.limit_concurrency(), server.max_requests()
    sound = keep_alive > TRAEFIK_UPSTREAM_IDLE_SECONDS and limit >= 1 and recycle >= 1
    return Row("server knobs", f"keep-alive {keep_alive}s, limit {limit}/worker, recycle {recycle}",
               f"keep-alive > {TRAEFIK_UPSTREAM_IDLE_SECONDS}s (edge idle), limit >= 1, recycle >= 1",
               OK if sound else OFF)


def _scalar(sql: str):
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def check_database() -> list[Row]:
    db = settings.DATABASES["default"]
    if connection.vendor != "postgresql":
        return [Row("database", connection.vendor, "postgresql", OFF)]
    # Never persistent connections beside the pool (and never under ASGI).
    persistent = db.get("CONN_MAX_AGE")
    rows = [Row("CONN_MAX_AGE with the pool", str(persistent), "0", OFF if persistent else OK)]
    pool = db.get("OPTIONS", {}).get("pool") or {}
    workers = capacity.workers()
    max_size = int(pool.get("max_size", 0))
    try:
        usable = _scalar("SELECT current_setting('max_connections')::int"
                         " - current_setting('superuser_reserved_connections')::int")
        current = _scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        total = _scalar("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
        shared_buffers = _scalar("SHOW shared_buffers")
        autovacuum = _scalar("SHOW autovacuum")
    except DatabaseError as exc:
        return [*rows, Row("postgresql", f"unreachable: {exc}".splitlines()[0][:60], "reachable", OFF)]
    reserve = int(getattr(settings, "DB_CONNECTION_RESERVE", 10))
    demand = workers * max_size
    rows.append(Row("db pool per worker (min/max)", f"{pool.get('min_size', '-')}/{max_size or '-'}",
                    f"budget {capacity.connection_budget()} / {workers} workers", OK if pool else OFF))
    rows.append(Row("pools vs max_connections", f"{workers} x {max_size} = {demand}",
                    f"<= {usable} usable - {reserve} reserve", OK if demand <= usable - reserve else OFF))
    rows.append(Row("connections now (pg_stat_activity)", f"{current} this db, {total} all",
                    f"< {usable} usable", OK if total < usable else OFF))
    wanted = os.environ.get("POSTGRES_SHARED_BUFFERS") or DEFAULT_SHARED_BUFFERS
    rows.append(Row("SHOW shared_buffers", shared_buffers, f"{wanted} (POSTGRES_SHARED_BUFFERS)",
                    OK if _bytes(shared_buffers) == _bytes(wanted) else OFF))
    # Without it the planner's statistics go stale as answers pile up, and plans go with them.
    rows.append(Row("SHOW autovacuum", autovacuum, "on", OK if autovacuum == "on" else OFF))
    return rows


def _bytes(size: str) -> int | None:
    """PostgreSQL memory units: '512MB', '128MB', '8kB', '1GB'."""
    match = re.fullmatch(r"\s*(\d+)\s*(B|kB|KB|MB|GB|TB)?\s*", size)
    if not match:
        return None
    power = {"B": 0, None: 0, "kB": 1, "KB": 1, "MB": 2, "GB": 3, "TB": 4}[match[2]]
    return int(match[1]) * 1024**power


def check_indexes() -> list[Row]:
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND indexname = ANY(%s)",
                [list(AUDITED_INDEXES)],
            )
            present = {name for (name,) in cursor.fetchall()}
    except DatabaseError:
        return [Row(f"index {name}", "unknown (database unreachable)", "exists", OFF) for name in AUDITED_INDEXES]
    return [Row(f"index {name}", "exists" if name in present else "MISSING", "exists",
                OK if name in present else OFF) for name in AUDITED_INDEXES]


def _server_breaker_state(master: int | None) -> str | None:
    """The running server's shared breaker (its workers share one state file, keyed by the master)."""
    if master is None:
        return None
    path = redis_client._state_dir() / f"examplatform-breaker-redis-{master}"
    if not path.exists():
        return "closed"  # no worker has touched Redis yet
    return redis_client.CircuitBreaker(name="redis", path=path).current_state


def check_redis() -> list[Row]:
    socket_timeout = float(getattr(settings, "REDIS_SOCKET_TIMEOUT", 0))
    connect_timeout = float(getattr(settings, "REDIS_CONNECT_TIMEOUT", 0))
    limit = MAX_REDIS_TIMEOUT_SECONDS
    rows = [Row("redis timeouts (socket/connect)", f"{socket_timeout:g}s/{connect_timeout:g}s", f"<= {limit:g}s",
                OK if 0 < socket_timeout <= limit and 0 < connect_timeout <= limit else OFF)]
    if not getattr(settings, "REDIS_URL", ""):
        return [*rows, Row("redis", "not configured (local-memory cache)", "redis", INFO)]
    reachable = _redis_ping()
    rows.append(Row("redis ping", "ok" if reachable else "no answer", "ok", OK if reachable else OFF))
    state = redis_client.breaker.current_state
    rows.append(Row("redis breaker (this process)", state, "closed", OK if state == "closed" else OFF))
    served = _server_breaker_state(_gunicorn_master())
    if served is not None:
        rows.append(Row("redis breaker (server)", served, "closed", OK if served == "closed" else OFF))
    return rows


def _redis_ping() -> bool:
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=MAX_REDIS_TIMEOUT_SECONDS,
                                      socket_connect_timeout=MAX_REDIS_TIMEOUT_SECONDS)
        return bool(client.ping())
    except redis.RedisError:
        return False


def check_exam_mode() -> list[Row]:
    try:
        return [Row("exam mode", exam_mode.describe(exam_mode.state()), "on during exams", INFO)]
    except DatabaseError:
        return [Row("exam mode", "unknown (database unreachable)", "on during exams", NA)]


CHECKS: tuple[Callable[[], list[Row]], ...] = (check_workers, check_database, check_indexes, check_redis,
                                               check_exam_mode)


def diagnose() -> list[Row]:
    return [row for check in CHECKS for row in check()]


def render(rows: list[Row]) -> str:
    header = Row("CHECK", "LIVE", "EXPECTED", "STATUS")
    widths = [max(len(getattr(row, field)) for row in [header, *rows]) for field in ("check", "live", "expected")]
    lines = []
    for row in [header, *rows]:
        lines.append("  ".join([row.check.ljust(widths[0]), row.live.ljust(widths[1]),
                                row.expected.ljust(widths[2]), row.status]).rstrip())
        if row is header:
            lines.append("  ".join("-" * width for width in [*widths, 6]))
    return "\n".join(lines)

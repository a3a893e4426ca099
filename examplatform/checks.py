"""System checks: the database pools of all workers must fit the backend's budget and the server."""

from django.conf import settings
from django.core.checks import Tags, Warning, register
from django.db import DatabaseError, connections

from . import capacity

# Connections left for everything that isn't a web worker: migrations, cron, psql, replicas.
DEFAULT_RESERVE = 10


def _pool_demand() -> tuple[int, int] | None:
    """(workers, per-worker max) for a pooled PostgreSQL default database, else None."""
    db = settings.DATABASES.get("default", {})
    pool = db.get("OPTIONS", {}).get("pool")
    if not isinstance(pool, dict) or "max_size" not in pool:
        return None
    return capacity.workers(), int(pool["max_size"])


@register()
def check_pool_budget(app_configs=None, **kwargs) -> list[Warning]:
    demand = _pool_demand()
    if demand is None:
        return []
    n_workers, per_worker = demand
    budget = capacity.connection_budget()
    if n_workers * per_worker <= budget:
        return []
    return [
        Warning(
            f"{n_workers} workers x {per_worker} pooled connections = {n_workers * per_worker}, "
            f"over the backend's connection budget of {budget}.",
            hint="Lower DB_POOL_SIZE/DB_MAX_OVERFLOW or the worker count, or raise DB_CONNECTION_BUDGET.",
            id="examplatform.W001",
        )
    ]


def _server_limit(alias: str) -> int | None:
    """max_connections minus the superuser slots, or None when the server can't be asked."""
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('max_connections')::int"
                " - current_setting('superuser_reserved_connections')::int"
            )
            return cursor.fetchone()[0]
    except DatabaseError:
        return None


@register(Tags.database)
def check_pool_fits_server(app_configs=None, databases=None, **kwargs) -> list[Warning]:
    """Run with the database checks (`migrate`, `check --database default`), and only if the server answers."""
    demand = _pool_demand()
    if demand is None or not databases or "default" not in databases:
        return []
    if connections["default"].vendor != "postgresql":
        return []
    limit = _server_limit("default")
    if limit is None:
        return []
    reserve = int(getattr(settings, "DB_CONNECTION_RESERVE", DEFAULT_RESERVE))
    n_workers, per_worker = demand
    if n_workers * per_worker <= limit - reserve:
        return []
    return [
        Warning(
            f"{n_workers} workers x {per_worker} pooled connections = {n_workers * per_worker}, over the "
            f"server's {limit} usable connections minus a reserve of {reserve}.",
            hint="Lower the pool sizes or the worker count, or raise max_connections on the server.",
            id="examplatform.W002",
        )
    ]

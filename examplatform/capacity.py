"""Worker model, worker count and database pool sizing, shared by settings and gunicorn.conf.py.

Kept free of Django imports: gunicorn's master reads it before Django loads.
"""

import math
import os
from pathlib import Path

# The spec's pool_size=10 + max_overflow=10 was one async process's pool; here
# it is the whole backend's connection budget, split across worker processes.
DEFAULT_POOL_SIZE_BUDGET = 10
DEFAULT_OVERFLOW_BUDGET = 10

DEFAULT_WORKER_MODEL = "sync"
WORKER_CLASSES = {
    "sync": "examplatform.server.SheddingSyncWorker",
    "gthread": "examplatform.server.SheddingThreadWorker",
    "uvicorn": "examplatform.server.DjangoUvicornWorker",
}
# Names the gunicorn docs use for the same models, so `-k`-style values work too.
_ALIASES = {
    "gunicorn.workers.sync.syncworker": "sync",
    "examplatform.server.sheddingsyncworker": "sync",
    "gunicorn.workers.gthread.threadworker": "gthread",
    "uvicorn_worker.uvicornworker": "uvicorn",
    "uvicorn.workers.uvicornworker": "uvicorn",
    "examplatform.server.sheddingthreadworker": "gthread",
    "examplatform.server.djangouvicornworker": "uvicorn",
}
DEFAULT_LIMIT_CONCURRENCY = 200


def worker_model(environ=os.environ) -> str:
    """sync, gthread or uvicorn. GUNICORN_WORKER_CLASS is read as an older name of the same setting."""
    raw = environ.get("SERVER_WORKER_CLASS") or environ.get("GUNICORN_WORKER_CLASS") or DEFAULT_WORKER_MODEL
    model = _ALIASES.get(raw.strip().lower(), raw.strip().lower())
    if model not in WORKER_CLASSES:
        raise ValueError(f"SERVER_WORKER_CLASS={raw!r}: choose one of {', '.join(WORKER_CLASSES)}")
    return model


def limit_concurrency(environ=os.environ) -> int:
    return int(environ.get("UVICORN_LIMIT_CONCURRENCY") or DEFAULT_LIMIT_CONCURRENCY)


def cpu_limit(cgroup_root: Path = Path("/sys/fs/cgroup")) -> float:
    """CPUs this process may use: the container's cgroup quota when set, else the host's cores."""
    host = os.cpu_count() or 1
    try:
        quota, period = (cgroup_root / "cpu.max").read_text().split()[:2]  # cgroup v2
        if quota != "max":
            return min(host, int(quota) / int(period))
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        quota = int((cgroup_root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((cgroup_root / "cpu" / "cpu.cfs_period_us").read_text())
        if quota > 0:
            return min(host, quota / period)
    except (OSError, ValueError):
        pass
    return float(host)


def default_workers(cpus: float | None = None) -> int:
    """(2 x cores) + 1, with a fractional quota rounded up: 1.5 CPUs -> 5 workers."""
    cpus = cpu_limit() if cpus is None else cpus
    return 2 * math.ceil(cpus) + 1


def workers(environ: os._Environ | dict = os.environ) -> int:
    value = environ.get("UVICORN_WORKERS") or environ.get("WEB_CONCURRENCY")
    return int(value) if value else default_workers()


def threads(environ: os._Environ | dict = os.environ) -> int:
    return int(environ.get("GUNICORN_THREADS") or 1)


def concurrent_requests(environ: os._Environ | dict = os.environ) -> int:
    """Requests one worker runs at once, each on a database connection of its own (Django: one per thread)."""
    if worker_model(environ) == "uvicorn":
        # Under ASGI Django runs each request's sync code in a thread of its own (asgiref's per-request
        # thread-sensitive context), so a worker runs as many at once as uvicorn admits.
        return limit_concurrency(environ)
    return threads(environ)


def connection_budget(environ: os._Environ | dict = os.environ) -> int:
    """Connections the whole backend may hold (DB_CONNECTION_BUDGET, default the spec's 10 + 10)."""
    value = environ.get("DB_CONNECTION_BUDGET")
    return int(value) if value else DEFAULT_POOL_SIZE_BUDGET + DEFAULT_OVERFLOW_BUDGET


def pool_sizes(environ: os._Environ | dict = os.environ) -> tuple[int, int]:
    """(min_size, max_size) of one worker's pool: DB_POOL_SIZE kept open, up to DB_MAX_OVERFLOW more.

    By default every worker gets an equal share of the budget, but never more than
    it can use at once: one connection per thread (a sync worker holds one, since
    Django uses one connection per thread; a uvicorn worker runs a thread per
    request). Threads beyond the share wait for a connection, at most DB_POOL_TIMEOUT.
    """
    n_workers = workers(environ)
    usable = concurrent_requests(environ)
    share_max = max(1, connection_budget(environ) // n_workers)
    share_min = max(1, DEFAULT_POOL_SIZE_BUDGET * share_max // (DEFAULT_POOL_SIZE_BUDGET + DEFAULT_OVERFLOW_BUDGET))
    default_max = min(share_max, usable)
    size = environ.get("DB_POOL_SIZE")
    overflow = environ.get("DB_MAX_OVERFLOW")
    size = int(size) if size else min(share_min, default_max)
    overflow = int(overflow) if overflow else max(0, default_max - size)
    if size < 0 or overflow < 0:
        raise ValueError("DB_POOL_SIZE and DB_MAX_OVERFLOW must not be negative")
    return size, max(1, size + overflow)


def pool_options(env) -> dict:
    min_size, max_size = pool_sizes()
    return {
        "min_size": min_size,
        "max_size": max_size,
        # How long a request waits for a free connection before it gets a 503.
        "timeout": env.float("DB_POOL_TIMEOUT", default=30.0),
        # The pool's own pre-use check (ConnectionPool.check_connection) is wired
        # by Django from CONN_HEALTH_CHECKS, which settings turn on.
        "max_idle": env.float("DB_POOL_MAX_IDLE", default=600.0),
    }

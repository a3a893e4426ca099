"""The production stack for load tests and benchmarks: its own database, seeded, behind the real server.

Used by deploy/loadtest/run.py and deploy/bench/bench.py. The server is gunicorn
with deploy/gunicorn.conf.py (examplatform.testing.app_server), on PostgreSQL and
Redis, exactly as deployed; only the database and Redis db are the run's own.
"""

import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import psycopg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from examplatform import capacity  # noqa: E402
from examplatform.testing import Server, app_server, free_port, wait_for  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/examplatform_load"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"


def stack_env(**extra: str) -> dict[str, str]:
    """The app's environment for this run: the caller's, with the run's own database and Redis db."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "examplatform.settings",
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "load-test-only-secret-key-of-at-least-32-bytes"),
        "DATABASE_URL": os.environ.get("LOAD_DATABASE_URL", DEFAULT_DATABASE_URL),
        "REDIS_URL": os.environ.get("LOAD_REDIS_URL", DEFAULT_REDIS_URL),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        **extra,
    }


def manage(*args: str, env: dict[str, str], capture: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=not capture, text=True,
        capture_output=capture,
    )


def admin_dsn(database_url: str, dbname: str = "postgres") -> str:
    url = urlparse(database_url)
    host, port, user = url.hostname or "127.0.0.1", url.port or 5432, url.username or "postgres"
    return f"host={host} port={port} user={user} dbname={dbname}"


def ensure_database(database_url: str) -> None:
    name = urlparse(database_url).path.lstrip("/")
    with psycopg.connect(admin_dsn(database_url), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def prepare(env: dict[str, str], *, students: int) -> None:
    """Create and migrate the run's database and seed the bank and `students` load students (idempotent)."""
    ensure_database(env["DATABASE_URL"])
    manage("migrate", "--noinput", "-v0", env=env)
    manage("seed_demo", "--students", str(students), env=env)
    # Fresh planner statistics, as autovacuum keeps them in production (it may be off on a dev machine).
    manage("shell", "-c", "from sessions_app import bulk_data; bulk_data.analyze()", env=env)


def server_env(env: dict[str, str], *, worker_model: str, threads: int = 1) -> dict[str, str]:
    return {**env, "SERVER_WORKER_CLASS": worker_model, "GUNICORN_THREADS": str(threads)}


# A candidate measured by `make bench` only (issue 6: "any other maintained server worth it"): Granian,
# a Rust HTTP server, serving Django's WSGI handler from blocking threads. Not a deployable model: it
# doesn't read deploy/gunicorn.conf.py (no shedding, recycling or metrics hooks), so it is compared as-is.
GRANIAN = "granian"


@contextmanager
def server(env: dict[str, str], *, workers: int | None = None, worker_model: str = "sync", threads: int = 1):
    workers = workers or capacity.default_workers()
    env = server_env(env, worker_model=worker_model, threads=threads)
    serve = granian_server if worker_model == GRANIAN else app_server
    with serve(env=env, workers=workers) as srv:
        warm_up(srv.url, workers=workers)
        yield srv


@contextmanager
def granian_server(*, env: dict[str, str], workers: int):
    port = free_port()
    # The pool is sized as for gunicorn sync: one request at a time per worker, one connection.
    env = {**env, "SERVER_WORKER_CLASS": "sync", "UVICORN_WORKERS": str(workers)}
    threads = env.get("GUNICORN_THREADS", "1")
    log_path = Path(tempfile.mkstemp(prefix="granian-", suffix=".log")[1])
    process = subprocess.Popen(
        [sys.executable, "-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers), "--blocking-threads", threads, "--no-access-log", "examplatform.wsgi:application"],
        cwd=ROOT, env=env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    srv = Server(url=f"http://127.0.0.1:{port}", port=port, process=process, log_path=log_path)
    try:
        wait_for(lambda: _healthy(srv.url), timeout=30, what="granian")
        yield srv
    except TimeoutError as exc:
        raise RuntimeError(f"{exc}; server log:\n{srv.log()[-4000:]}") from exc
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
        log_path.unlink(missing_ok=True)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as reply:  # noqa: S310 - loopback
            return reply.status == 200
    except OSError:
        return False


def warm_up(url: str, *, workers: int) -> None:
    """Let every worker load the URLconf and the apps (Django does it on a worker's first request)."""
    def get(_):
        with urllib.request.urlopen(f"{url}/health", timeout=10) as reply:  # noqa: S310 - loopback
            return reply.status

    with ThreadPoolExecutor(max_workers=workers * 2) as pool:
        list(pool.map(get, range(workers * 20)))


def pool_cap(*, workers: int, threads: int = 1) -> int:
    """Connections the whole server may open: workers x each worker's pool max_size."""
    _, max_size = capacity.pool_sizes({"UVICORN_WORKERS": str(workers), "GUNICORN_THREADS": str(threads)})
    return workers * max_size


class ConnectionWatch:
    """Polls pg_stat_activity for the run's database and keeps the peak number of connections."""

    def __init__(self, database_url: str, *, interval: float = 0.5):
        self.dsn = admin_dsn(database_url)
        self.dbname = urlparse(database_url).path.lstrip("/")
        self.interval = interval
        self.peak = 0
        self.peak_active = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self._stop.is_set():
                total, active = conn.execute(
                    "SELECT COUNT(*), COUNT(*) FILTER (WHERE state = 'active') FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    [self.dbname],
                ).fetchone()
                self.peak, self.peak_active = max(self.peak, total), max(self.peak_active, active)
                self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


@dataclass
class CpuSnapshot:
    """Core-seconds so far: the whole machine busy, the app server's workers, and this process's children."""

    machine: float
    server: float
    children: float

    def minus(self, before: "CpuSnapshot") -> "CpuSnapshot":
        return CpuSnapshot(self.machine - before.machine, self.server - before.server,
                           self.children - before.children)

    def __str__(self) -> str:
        rest = self.machine - self.server - self.children
        return (f"machine busy {self.machine:.0f}: app workers {self.server:.0f}, load generator {self.children:.0f},"
                f" PostgreSQL/Redis/other work {rest:.0f}")


def cpu_snapshot(server_pids: list[int]) -> CpuSnapshot:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return CpuSnapshot(busy, cpu_seconds(server_pids), children.ru_utime + children.ru_stime)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine() -> dict[str, str]:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "load": load_average(),
        "python": platform.python_version(),
    }


def wait_quiet(max_load: float, *, timeout: float) -> None:
    """Give other work on the machine a moment to settle before a measurement (bounded)."""
    deadline = time.monotonic() + timeout
    while os.getloadavg()[0] > max_load and time.monotonic() < deadline:
        time.sleep(5)

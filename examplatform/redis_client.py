"""Redis through a circuit breaker, so a dead or hung Redis never blocks a request.

`breaker` guards every Redis command this process sends (the cache's and any raw
`get_redis_connection()` use). One connection failure or timeout opens it; while
open, commands fail at once without touching a socket, and the cache (settings:
IGNORE_EXCEPTIONS) answers reads with the default and drops writes. After
REDIS_BREAKER_RESET_SECONDS exactly one caller probes Redis: success closes the
breaker, failure opens it for another window. `breaker.current_state` is
"closed", "open" or "half-open" (health and metrics report it).

The state lives in a small file shared by the worker processes of one server, so
a hung Redis costs the whole server one slow request per window, not one per
worker. pybreaker doesn't fit: it holds a process-wide lock across the guarded
call (threads queue behind a hung probe), keeps its state per process (or in
Redis itself), and lets every caller through while half-open.
"""

import fcntl
import logging
import os
import struct
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import redis
from django.conf import settings
from django_redis.client import DefaultClient

logger = logging.getLogger(__name__)

STATE_CLOSED, STATE_OPEN, STATE_HALF_OPEN = "closed", "open", "half-open"
_STATES = (STATE_CLOSED, STATE_OPEN, STATE_HALF_OPEN)
# state index, opened_at, probe_until; times are time.monotonic(), one clock for every process on the host.
_RECORD = struct.Struct("<Bdd")
_CLOSED, _OPEN, _HALF_OPEN = range(3)
_FAILURES = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class CircuitOpen(redis.exceptions.ConnectionError):
    """Raised instead of sending a command while the breaker is open."""


def _state_dir() -> Path:
    shm = Path("/dev/shm")  # noqa: S108 - tmpfs: the state never touches a disk
    return shm if shm.is_dir() else Path(tempfile.gettempdir())


def _shared_state_path(name: str) -> Path:
    """One file per server: gunicorn's workers share their parent, the master.

    Files left by servers that are gone are removed on the way.
    """
    directory = _state_dir()
    prefix = f"examplatform-breaker-{name}-"
    for stale in directory.glob(f"{prefix}*"):
        pid = stale.name.removeprefix(prefix)
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            stale.unlink(missing_ok=True)
    return directory / f"{prefix}{os.getppid()}"


class CircuitBreaker:
    """closed -> (a failure) open -> (cool-down) half-open: one probe -> closed or open."""

    def __init__(self, *, name: str, path: Path | None = None,
                 reset_timeout: float | None = None, probe_timeout: float | None = None):
        self.name = name
        self._path = path
        self._reset_timeout = reset_timeout
        self._probe_timeout = probe_timeout
        self._fd: int | None = None
        self._fd_pid: int | None = None
        # flock() doesn't exclude threads sharing one descriptor; this does.
        self._lock = threading.Lock()

    @property
    def reset_timeout(self) -> float:
        """Seconds Redis is skipped after a failure (REDIS_BREAKER_RESET_SECONDS)."""
        if self._reset_timeout is not None:
            return self._reset_timeout
        return float(getattr(settings, "REDIS_BREAKER_RESET_SECONDS", 5.0))

    @property
    def probe_timeout(self) -> float:
        """After this long a probe that never reported (its worker died) is given up and another may probe."""
        if self._probe_timeout is not None:
            return self._probe_timeout
        timeouts = (getattr(settings, "REDIS_SOCKET_TIMEOUT", 1.0), getattr(settings, "REDIS_CONNECT_TIMEOUT", 1.0))
        return 2 * max(timeouts) + 1.0

    @property
    def current_state(self) -> str:
        return _STATES[self._read()[0]]

    def allow(self) -> bool:
        """True when the caller may send a command: closed, or this caller is the one probe."""
        state, opened_at, probe_until = self._read()
        if state == _CLOSED:
            return True
        if self._waiting(state, opened_at, probe_until):
            return False
        with self._exclusive():
            state, opened_at, probe_until = self._read()
            if state == _CLOSED:
                return True
            if self._waiting(state, opened_at, probe_until):
                return False
            self._write(_HALF_OPEN, opened_at, time.monotonic() + self.probe_timeout)
        logger.info("redis circuit half-open: one request probes Redis")
        return True

    def _waiting(self, state: int, opened_at: float, probe_until: float) -> bool:
        now = time.monotonic()
        return now < opened_at + self.reset_timeout if state == _OPEN else now < probe_until

    def record_success(self) -> None:
        if self._read()[0] == _CLOSED:
            return
        with self._exclusive():
            self._write(_CLOSED, 0.0, 0.0)
        logger.warning("redis circuit closed: Redis answers again")

    def record_failure(self, exc: BaseException) -> None:
        with self._exclusive():
            previous = self._read()[0]
            self._write(_OPEN, time.monotonic(), 0.0)
        logger.warning(
            "redis circuit open (was %s) for %.1fs after %s: %s; cache reads return defaults, writes are dropped",
            _STATES[previous], self.reset_timeout, type(exc).__name__, exc,
        )

    def reset(self) -> None:
        """Close the breaker without a probe (tests and manual recovery)."""
        with self._exclusive():
            self._write(_CLOSED, 0.0, 0.0)

    def call(self, func, *args, **kwargs):
        if not self.allow():
            raise CircuitOpen(f"Redis skipped: circuit {self.name!r} is open")
        try:
            result = func(*args, **kwargs)
        except _FAILURES as exc:
            self.record_failure(exc)
            raise
        self.record_success()
        return result

    def _file(self) -> int:
        # Reopened after a fork: a descriptor shared with the parent would share its lock too.
        if self._fd is None or self._fd_pid != os.getpid():
            path = self._path or _shared_state_path(self.name)
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            self._fd_pid = os.getpid()
        return self._fd

    def _read(self) -> tuple[int, float, float]:
        data = os.pread(self._file(), _RECORD.size, 0)
        return _RECORD.unpack(data) if len(data) == _RECORD.size else (_CLOSED, 0.0, 0.0)

    def _write(self, state: int, opened_at: float, probe_until: float) -> None:
        os.pwrite(self._file(), _RECORD.pack(state, opened_at, probe_until), 0)

    @contextmanager
    def _exclusive(self):
        with self._lock:
            fd = self._file()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)


breaker = CircuitBreaker(name="redis")


class GuardedPipeline(redis.client.Pipeline):
    def execute(self, raise_on_error: bool = True):
        return breaker.call(super().execute, raise_on_error)


class GuardedRedis(redis.Redis):
    """redis-py client whose every command, and every pipeline, goes through `breaker`."""

    def execute_command(self, *args, **options):
        return breaker.call(super().execute_command, *args, **options)

    def pipeline(self, transaction: bool = True, shard_hint=None) -> GuardedPipeline:
        return GuardedPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)


class BreakerClient(DefaultClient):
    """django-redis client of the default cache (settings.CACHES): its connections are GuardedRedis."""

    def __init__(self, server, params, backend):
        options = {**params.get("OPTIONS", {}), "REDIS_CLIENT_CLASS": "examplatform.redis_client.GuardedRedis"}
        super().__init__(server, {**params, "OPTIONS": options}, backend)

"""Django's PostgreSQL backend with its psycopg pool, failing fast while the database is down.

Stock behaviour, once the server goes away: every request waits the pool's full
timeout (30 s) for a connection that can't come, and after the server is back the
pool's reconnect back-off may take minutes to notice. Here (see
examplatform/resilience.py) a request waits for a free connection in short
slices; a failed connection attempt during the wait makes it, and every request
after it, fail at once with DatabaseUnavailable (503) until a probe gets through,
which rebuilds the pool. A pool that is merely busy still gets the whole wait.

Checkouts are counted as they happen, for /metrics (docs/observability.md): sampling
the pool's stats can't see them, since a sync worker takes its connection after any
sample at the start of a request and returns it when the request has finished.
"""

import time

from django.db.backends.postgresql import base
from psycopg_pool import PoolTimeout

from examplatform.resilience import DatabaseUnavailable, ReportingConnection, guard

# How often a request waiting for a pooled connection looks at whether the database went away.
WAIT_SLICE_SECONDS = 0.5


class DatabaseWrapper(base.DatabaseWrapper):
    # Set by the web process (examplatform.observability.metrics.watch_pool); None in management
    # commands, whose counts would outlive them in PROMETHEUS_MULTIPROC_DIR.
    pool_metrics = None
    # The gauge this connection's checkout was counted in: its return is counted once, and only then.
    _counted_in = None

    @property
    def pool(self):
        options = self.settings_dict["OPTIONS"].get("pool")
        if isinstance(options, dict):
            options.setdefault("connection_class", ReportingConnection)
        return super().pool

    def get_new_connection(self, conn_params):
        pool = self.pool
        if pool is None:
            return super().get_new_connection(conn_params)
        if guard.is_down:
            self._probe(conn_params)
            pool = self.pool
        # What Django's own get_new_connection does around pool.getconn().
        level = self.settings_dict["OPTIONS"].get("isolation_level")
        self.isolation_level = base.IsolationLevel(level if level is not None else base.IsolationLevel.READ_COMMITTED)
        pool.open()
        connection = self._getconn(pool)
        if self.pool_metrics is not None:
            self._counted_in = self.pool_metrics.in_use
            self._counted_in.inc()
        if level is not None:
            connection.isolation_level = self.isolation_level
        return connection

    def _close(self):
        counted_in, self._counted_in = self._counted_in, None
        try:
            return super()._close()
        finally:
            if counted_in is not None:
                counted_in.dec()

    def _getconn(self, pool):
        deadline = time.monotonic() + pool.timeout
        # Counted as waiting from the first slice that timed out: no cost for a checkout that doesn't wait.
        waiting = None
        try:
            while True:
                try:
                    return pool.getconn(timeout=max(0.01, min(WAIT_SLICE_SECONDS, deadline - time.monotonic())))
                except PoolTimeout:
                    if guard.failing:
                        guard.mark_down("the pool's connection attempts fail")
                        raise DatabaseUnavailable("the database can't be reached") from None
                    if time.monotonic() >= deadline:
                        if self.pool_metrics is not None:
                            self.pool_metrics.errors.inc()
                        raise PoolTimeout(f"couldn't get a connection after {pool.timeout:.2f} sec") from None
                    if waiting is None and self.pool_metrics is not None:
                        waiting = self.pool_metrics.waiting
                        waiting.inc()
        finally:
            if waiting is not None:
                waiting.dec()

    def _probe(self, conn_params) -> None:
        """While down: refuse at once, except the one request per interval that tries a direct connection."""
        if not guard.claim_probe():
            raise DatabaseUnavailable("the database is down; retrying shortly")
        try:
            ReportingConnection.connect(**conn_params).close()
        except Exception as exc:
            raise DatabaseUnavailable(f"the database is still down: {exc}") from exc
        # Start over with a fresh pool: the old one holds dead connections and a long back-off.
        self.close_pool()
        guard.mark_up()

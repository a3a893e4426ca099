"""Per-request query timing through Django's execute wrapper (counts exactly what the request runs)."""

import heapq
from contextlib import contextmanager
from time import perf_counter

from .sql import normalize


class QueryTimer:
    """Installed with `connection.execute_wrapper(timer)` around one request.

    Keeps (seconds, sql) for every query: appending a tuple is the cheapest record,
    and the SQL is only normalized when a report needs it.
    """

    __slots__ = ("count", "seconds", "slowest", "queries")

    def __init__(self):
        self.count = 0
        self.seconds = 0.0
        self.slowest = 0.0
        self.queries: list[tuple[float, str]] = []

    def __call__(self, execute, sql, params, many, context):
        started = perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self._record(perf_counter() - started, sql)

    @contextmanager
    def timed(self, sql: str):
        """Count a query sent on a connection of its own, which Django's execute wrapper never sees."""
        started = perf_counter()
        try:
            yield
        finally:
            self._record(perf_counter() - started, sql)

    def _record(self, elapsed: float, sql: str) -> None:
        self.count += 1
        self.seconds += elapsed
        if elapsed > self.slowest:
            self.slowest = elapsed
        self.queries.append((elapsed, sql))

    def top(self, n: int = 5) -> list[dict]:
        """The n slowest queries, normalized (no literal or parameter values)."""
        return [
            {"ms": round(seconds * 1000, 2), "sql": normalize(sql)}
            for seconds, sql in heapq.nlargest(n, self.queries, key=lambda query: query[0])
        ]

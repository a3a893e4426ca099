"""What ObservabilityMiddleware adds to a request: `python -m examplatform.observability.overhead`.

Serves /health in process through Django's real WSGI handler, with and without the
middleware, as production runs it: prometheus_client in multiprocess mode (its
samples written to files) and the JSON request line written to a file. Alternating
rounds, best round of each, so other load on the machine skews both sides alike.
With a database it also times the execute wrapper around `SELECT 1`.
`make bench` runs it too (`--json`) and writes the figures into its bench.md.
"""

import argparse
import io
import json
import logging
import os
import shutil
import tempfile
import time


def _environ() -> dict:
    return {
        "REQUEST_METHOD": "GET", "PATH_INFO": "/health", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000",
        "HTTP_HOST": "127.0.0.1", "REMOTE_ADDR": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http", "wsgi.errors": io.StringIO(),
    }


def _per_request_us(handler, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        response = handler(_environ(), lambda status, headers: None)
        response.close()
    return (time.perf_counter() - started) / n * 1e6


def health_overhead(*, n: int, rounds: int) -> dict:
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler

    full = list(settings.MIDDLEWARE)
    with_it = WSGIHandler()
    settings.MIDDLEWARE = [name for name in full if not name.endswith(".ObservabilityMiddleware")]
    without = WSGIHandler()
    settings.MIDDLEWARE = full
    request_logger = logging.getLogger("examplatform.request")
    best = {"with": float("inf"), "without": float("inf"), "with_no_log_line": float("inf")}
    for _ in range(rounds):
        best["without"] = min(best["without"], _per_request_us(without, n))
        best["with"] = min(best["with"], _per_request_us(with_it, n))
        request_logger.disabled = True
        best["with_no_log_line"] = min(best["with_no_log_line"], _per_request_us(with_it, n))
        request_logger.disabled = False
    return best


def wrapper_overhead(*, n: int, rounds: int) -> dict:
    from django.db import connection

    from .db import QueryTimer

    def run(wrapped: bool) -> float:
        timer = QueryTimer()
        with connection.cursor() as cursor:
            started = time.perf_counter()
            if wrapped:
                with connection.execute_wrapper(timer):
                    for _ in range(n):
                        cursor.execute("SELECT 1")
            else:
                for _ in range(n):
                    cursor.execute("SELECT 1")
            return (time.perf_counter() - started) / n * 1e6

    best = {"select_1": float("inf"), "select_1_timed": float("inf")}
    for _ in range(rounds):
        best["select_1"] = min(best["select_1"], run(False))
        best["select_1_timed"] = min(best["select_1_timed"], run(True))
    return best


def report(figures: dict) -> str:
    health = figures["health"]
    lines = [
        f"/health without the middleware: {health['without']:7.1f} us/request",
        f"/health with it:                {health['with']:7.1f} us/request"
        f"  (+{health['with'] - health['without']:.1f} us)",
        f"/health with it, no log line:   {health['with_no_log_line']:7.1f} us/request"
        f"  (+{health['with_no_log_line'] - health['without']:.1f} us)",
    ]
    if "sql" in figures:
        sql = figures["sql"]
        lines += [
            f"SELECT 1:                       {sql['select_1']:7.1f} us/query",
            f"SELECT 1 through the timer:     {sql['select_1_timed']:7.1f} us/query"
            f"  (+{sql['select_1_timed'] - sql['select_1']:.1f} us)",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-db", action="store_true", help="skip the execute wrapper timing")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    # As under gunicorn: set before prometheus_client is first imported.
    metrics_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="overhead-metrics-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examplatform.settings")
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1")
    import django

    django.setup()
    try:
        with tempfile.TemporaryFile("w") as log_file:
            for handler in logging.getLogger("examplatform.request").handlers:
                if isinstance(handler, logging.StreamHandler):
                    handler.setStream(log_file)
            figures = {"n": args.n, "rounds": args.rounds,
                       "health": health_overhead(n=args.n, rounds=args.rounds)}
            if not args.no_db:
                figures["sql"] = wrapper_overhead(n=args.n, rounds=args.rounds)
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    print(json.dumps(figures) if args.json else report(figures))


if __name__ == "__main__":
    main()

"""Gunicorn configuration used by `make run`, the Dockerfile and the load test alike.

One setting picks the worker model: SERVER_WORKER_CLASS=sync|gthread|uvicorn
(examplatform/server.py says what each does with the limits below). The spec's
knobs keep their names and meaning whatever the model.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from examplatform import capacity, server  # noqa: E402

bind = os.environ.get("BIND", "0.0.0.0:8000")
# Used when the command line names no app (the Dockerfile); the uvicorn model serves examplatform.asgi.
wsgi_app = "examplatform.wsgi:application"
worker_class = server.WORKER_CLASSES[server.worker_model()]
# (2 x CPUs) + 1 from the cgroup quota unless UVICORN_WORKERS says otherwise.
workers = capacity.workers()
threads = capacity.threads()
# Connections one worker holds (active + kept alive) before it sheds with 503: gthread reads it here,
# uvicorn gets the same number as limit_concurrency, sync sheds beyond workers x this from the shared queue.
worker_connections = server.limit_concurrency()
# The listen queue must hold what the limit admits: sync workers queue there (SheddingSyncWorker sheds
# beyond workers x limit). The kernel caps it at net.core.somaxconn.
backlog = max(2048, workers * worker_connections)
keepalive = server.keep_alive()
max_requests = server.max_requests()
# Up to 10% more per worker, so workers started together don't all recycle at once.
max_requests_jitter = max(1, max_requests // 10)
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# SIGTERM: stop accepting, let in-flight requests finish for up to this long, then exit.
# Keep it below the container's stop_grace_period (docker-compose.prod.yml).
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
# Never preload: the psycopg pool must open inside each worker, not in the master.
preload_app = False
# `manage.py doctor` finds the running server (and counts its workers) through this file.
pidfile = os.environ.get("GUNICORN_PIDFILE") or None
accesslog = None
errorlog = "-"
# prometheus_client multiprocess mode: a clean metrics dir per start, dead workers' gauges dropped.
from examplatform.observability.gunicorn_hooks import child_exit, on_exit, on_starting  # noqa: E402, F401

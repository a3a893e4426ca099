"""Gunicorn configuration used by `make run`, the Dockerfile and the load test alike."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from examplatform import capacity  # noqa: E402

bind = os.environ.get("BIND", "0.0.0.0:8000")
workers = capacity.workers()
threads = capacity.threads()
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
keepalive = int(os.environ.get("UVICORN_TIMEOUT_KEEP_ALIVE", "5"))
max_requests = int(os.environ.get("UVICORN_LIMIT_MAX_REQUESTS", "10000"))
max_requests_jitter = max(1, max_requests // 10)
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
# Never preload: the psycopg pool must open inside each worker, not in the master.
preload_app = False
accesslog = None
errorlog = "-"

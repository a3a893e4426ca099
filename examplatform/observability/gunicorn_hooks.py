"""Gunicorn server hooks for prometheus_client's multiprocess mode (imported by deploy/gunicorn.conf.py).

No Django and no prometheus_client import at module level: the master loads this
before any worker exists, and prometheus_client picks its storage when first
imported, which must happen after PROMETHEUS_MULTIPROC_DIR is set.
"""

import os
import shutil
import tempfile
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


def on_starting(server) -> None:
    """Give the workers a metrics directory, emptied: files left by an earlier run would be summed in."""
    configured = os.environ.get(ENV)
    if configured:
        directory = Path(configured)
        if directory.exists():
            for leftover in directory.glob("*.db"):
                leftover.unlink()
        directory.mkdir(parents=True, exist_ok=True)
    else:
        # One directory per master, so two servers on one machine never mix or wipe each other's samples.
        directory = Path(tempfile.mkdtemp(prefix="examplatform-metrics-"))
        os.environ[ENV] = str(directory)
        server._examplatform_metrics_tmpdir = directory
    server.log.info("prometheus multiprocess dir: %s", directory)


def child_exit(server, worker) -> None:
    """Drop a dead worker's live gauges (its pool's, connections it held included); its counters stay."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    tmpdir = getattr(server, "_examplatform_metrics_tmpdir", None)
    if tmpdir is not None:
        shutil.rmtree(tmpdir, ignore_errors=True)

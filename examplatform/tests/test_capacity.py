"""Pool sizing from the worker model, and the system checks that keep it inside the budget and the server."""

import os
import subprocess
import sys

import environ
import pytest
from django.core.checks import run_checks
from django.db import connection
from psycopg_pool import ConnectionPool

from examplatform import capacity
from examplatform.checks import check_pool_fits_server
from examplatform.testing import ROOT, free_port


@pytest.mark.parametrize(
    ("environ", "sizes"),
    [
        ({"UVICORN_WORKERS": "5"}, (1, 1)),  # sync: one request, one connection per worker
        ({"UVICORN_WORKERS": "2"}, (1, 1)),
        ({"UVICORN_WORKERS": "5", "GUNICORN_THREADS": "4"}, (2, 4)),  # 5 x 4 = the whole budget of 20
        ({"UVICORN_WORKERS": "2", "GUNICORN_THREADS": "8"}, (5, 8)),
        ({"UVICORN_WORKERS": "3", "GUNICORN_THREADS": "8"}, (3, 6)),  # threads beyond the share wait
        ({"UVICORN_WORKERS": "30", "GUNICORN_THREADS": "4"}, (1, 1)),  # never below one
        ({"UVICORN_WORKERS": "2", "DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0"}, (1, 1)),
        ({"UVICORN_WORKERS": "2", "GUNICORN_THREADS": "8", "DB_POOL_SIZE": "2"}, (2, 8)),
        ({"UVICORN_WORKERS": "2", "DB_POOL_SIZE": "3", "DB_MAX_OVERFLOW": "4"}, (3, 7)),
        ({"UVICORN_WORKERS": "4", "GUNICORN_THREADS": "10", "DB_CONNECTION_BUDGET": "80"}, (10, 10)),
        # uvicorn runs a thread per request, up to its concurrency limit: the worker's whole share.
        ({"UVICORN_WORKERS": "5", "SERVER_WORKER_CLASS": "uvicorn"}, (2, 4)),
        ({"UVICORN_WORKERS": "2", "SERVER_WORKER_CLASS": "uvicorn", "UVICORN_LIMIT_CONCURRENCY": "3"}, (3, 3)),
    ],
)
def test_it_splits_the_budget_across_workers_but_never_beyond_what_a_worker_can_use(environ, sizes):
    assert capacity.pool_sizes(environ) == sizes


def test_default_sizes_fit_the_spec_budget_for_every_worker_model():
    for model in capacity.WORKER_CLASSES:
        for n_workers in range(1, 12):
            for n_threads in (1, 2, 4, 8, 16):
                _, max_size = capacity.pool_sizes({"SERVER_WORKER_CLASS": model, "UVICORN_WORKERS": str(n_workers),
                                                   "GUNICORN_THREADS": str(n_threads)})
                assert n_workers * max_size <= max(20, n_workers)


def test_it_rejects_negative_sizes():
    with pytest.raises(ValueError):
        capacity.pool_sizes({"UVICORN_WORKERS": "2", "DB_POOL_SIZE": "-1"})


def pool(monkeypatch, max_size):
    from django.conf import settings

    monkeypatch.setitem(settings.DATABASES["default"]["OPTIONS"]["pool"], "max_size", max_size)


def ids(messages):
    return [m.id for m in messages]


def test_it_warns_when_workers_times_pool_exceeds_the_budget(monkeypatch):
    monkeypatch.setenv("UVICORN_WORKERS", "5")
    pool(monkeypatch, 4)
    assert "examplatform.W001" not in ids(run_checks())
    pool(monkeypatch, 5)
    assert "examplatform.W001" in ids(run_checks())


def test_it_warns_when_the_pools_do_not_fit_the_servers_max_connections(settings, monkeypatch, db):
    monkeypatch.setenv("UVICORN_WORKERS", "2")
    pool(monkeypatch, 4)
    assert check_pool_fits_server(databases=["default"]) == []
    settings.DB_CONNECTION_RESERVE = 100_000
    assert ids(check_pool_fits_server(databases=["default"])) == ["examplatform.W002"]
    # Without the database checks asked for, the server isn't queried.
    assert check_pool_fits_server(databases=None) == []


def test_the_checks_run_without_a_database():
    env = {**os.environ, "DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/nowhere",
           "UVICORN_WORKERS": "30"}
    result = subprocess.run([sys.executable, "manage.py", "check", "--database", "default"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "examplatform.W001" in result.stdout + result.stderr


def test_the_pool_waits_30_seconds_and_checks_each_connection_before_use(db):
    """The spec's pool: a 30 s wait by default, a connection checked before a request gets it."""
    assert capacity.pool_options(environ.Env())["timeout"] == 30.0
    # The live pool: Django passes CONN_HEALTH_CHECKS on as the pool's own check.
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True
    assert connection.settings_dict["CONN_MAX_AGE"] == 0
    pool = connection.pool
    assert isinstance(pool, ConnectionPool) and pool._check == ConnectionPool.check_connection
    assert pool.timeout == connection.settings_dict["OPTIONS"]["pool"]["timeout"]

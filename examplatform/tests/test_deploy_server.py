"""The app server's configuration (deploy/gunicorn.conf.py, examplatform/server.py) and its behaviour for real."""

import http.client
import json
import os
import runpy
import signal
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from examplatform import capacity, server
from examplatform.testing import ROOT, app_server, http_json

CONF = ROOT / "deploy" / "gunicorn.conf.py"


def load_conf(monkeypatch, **env) -> dict:
    for name in ("SERVER_WORKER_CLASS", "GUNICORN_WORKER_CLASS", "UVICORN_WORKERS", "WEB_CONCURRENCY",
                 "UVICORN_LIMIT_CONCURRENCY", "UVICORN_LIMIT_MAX_REQUESTS", "UVICORN_TIMEOUT_KEEP_ALIVE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONF))


def fake_cgroup(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


class TestCpuLimit:
    def test_it_reads_the_cgroup_v2_quota(self, tmp_path, monkeypatch):
        monkeypatch.setattr(os, "cpu_count", lambda: 8)
        assert capacity.cpu_limit(fake_cgroup(tmp_path, {"cpu.max": "150000 100000\n"})) == 1.5

    def test_it_uses_the_host_cores_when_the_quota_is_max(self, tmp_path, monkeypatch):
        monkeypatch.setattr(os, "cpu_count", lambda: 8)
        assert capacity.cpu_limit(fake_cgroup(tmp_path, {"cpu.max": "max 100000\n"})) == 8

    def test_it_reads_the_cgroup_v1_quota(self, tmp_path, monkeypatch):
        monkeypatch.setattr(os, "cpu_count", lambda: 8)
        root = fake_cgroup(tmp_path, {"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"})
        assert capacity.cpu_limit(root) == 2

    def test_it_never_exceeds_the_host_cores(self, tmp_path, monkeypatch):
        monkeypatch.setattr(os, "cpu_count", lambda: 2)
        assert capacity.cpu_limit(fake_cgroup(tmp_path, {"cpu.max": "800000 100000\n"})) == 2

    def test_it_falls_back_to_the_host_without_a_cgroup(self, tmp_path, monkeypatch):
        monkeypatch.setattr(os, "cpu_count", lambda: 3)
        assert capacity.cpu_limit(tmp_path) == 3

    def test_a_one_and_a_half_cpu_container_gets_five_workers(self):
        assert capacity.default_workers(1.5) == 5


class TestGunicornConf:
    def test_it_defaults_to_sync_workers_sized_from_the_cpu_limit(self, monkeypatch):
        conf = load_conf(monkeypatch)
        assert conf["worker_class"] == "examplatform.server.SheddingSyncWorker"
        assert conf["workers"] == capacity.default_workers()
        assert conf["backlog"] >= conf["workers"] * conf["worker_connections"]  # the queue sync sheds from

    def test_it_keeps_the_spec_defaults(self, monkeypatch):
        conf = load_conf(monkeypatch)
        assert conf["keepalive"] == 5
        assert conf["worker_connections"] == 200
        assert conf["max_requests"] == 10000
        # Jitter, so workers started together don't recycle together.
        assert conf["max_requests_jitter"] == 1000
        assert conf["graceful_timeout"] < 30  # below the compose stop_grace_period
        assert conf["preload_app"] is False

    def test_it_reads_the_spec_knobs(self, monkeypatch):
        conf = load_conf(monkeypatch, UVICORN_WORKERS="7", UVICORN_TIMEOUT_KEEP_ALIVE="9",
                         UVICORN_LIMIT_CONCURRENCY="50", UVICORN_LIMIT_MAX_REQUESTS="500")
        assert (conf["workers"], conf["keepalive"], conf["worker_connections"]) == (7, 9, 50)
        assert (conf["max_requests"], conf["max_requests_jitter"]) == (500, 50)

    @pytest.mark.parametrize(("value", "worker_class"), [
        ("sync", "examplatform.server.SheddingSyncWorker"),
        ("gunicorn.workers.sync.SyncWorker", "examplatform.server.SheddingSyncWorker"),
        ("gthread", "examplatform.server.SheddingThreadWorker"),
        ("uvicorn", "examplatform.server.DjangoUvicornWorker"),
        ("uvicorn_worker.UvicornWorker", "examplatform.server.DjangoUvicornWorker"),
    ])
    def test_one_setting_picks_the_worker_model(self, monkeypatch, value, worker_class):
        assert load_conf(monkeypatch, SERVER_WORKER_CLASS=value)["worker_class"] == worker_class

    def test_it_refuses_an_unknown_worker_model(self, monkeypatch):
        with pytest.raises(ValueError, match="SERVER_WORKER_CLASS"):
            load_conf(monkeypatch, SERVER_WORKER_CLASS="eventlet")

    def test_the_uvicorn_worker_gets_the_concurrency_limit_and_no_lifespan(self, monkeypatch):
        monkeypatch.setenv("UVICORN_LIMIT_CONCURRENCY", "42")

        from gunicorn.config import Config
        from gunicorn.glogging import Logger

        cfg = Config()
        worker = server.DjangoUvicornWorker(0, os.getpid(), [], None, 30, cfg, Logger(cfg))
        worker.tmp.close()
        assert worker.config.limit_concurrency == 42
        assert worker.config.lifespan == "off"


def hold_request(port: int, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    return sock


def status_of(sock: socket.socket) -> int:
    with sock, sock.makefile("rb") as reply:
        return int(reply.readline().split()[1])


def get_later(url: str, results: list) -> threading.Thread:
    thread = threading.Thread(target=lambda: results.append(http_json("GET", url, timeout=30)))
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("model", ["sync", "gthread", "uvicorn"])
def test_it_finishes_an_in_flight_request_when_the_master_gets_sigterm(model):
    env = {"SERVER_WORKER_CLASS": model, "ENABLE_TEST_ENDPOINTS": "true", "GUNICORN_THREADS": "2"}
    with app_server(env=env, workers=1) as srv:
        results: list = []
        thread = get_later(f"{srv.url}/test/slow/?seconds=2", results)
        time.sleep(0.5)  # sequencing only: let the request reach the worker
        os.kill(srv.process.pid, signal.SIGTERM)
        thread.join(timeout=30)
        assert srv.process.wait(timeout=30) == 0
        assert [r.status for r in results] == [200], srv.log()
        assert results[0].body == {"slept": 2.0}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("model", "limit"), [
    ("gthread", 2),
    # uvicorn counts the arriving connection too: a limit of 3 admits 2 at once.
    ("uvicorn", 3),
])
def test_it_sheds_requests_beyond_the_concurrency_limit_with_503(model, limit):
    env = {"SERVER_WORKER_CLASS": model, "ENABLE_TEST_ENDPOINTS": "true", "GUNICORN_THREADS": "2",
           "UVICORN_LIMIT_CONCURRENCY": str(limit)}
    with app_server(env=env, workers=1) as srv:
        # The start-up check's /health has had its reply, but gthread frees its slot a moment later, in
        # its main loop: let it, or the second held request may find the worker full (sequencing only).
        time.sleep(0.5)
        # Connected and sent before the probe. gthread takes connections in order; uvicorn counts
        # connections, so let it parse both requests before the probe connects (sequencing only).
        held = [hold_request(srv.port, "/test/slow/?seconds=3") for _ in range(2)]
        time.sleep(1.0)
        started = time.monotonic()
        # On a loaded machine a held request may reach the worker late: probe until the
        # worker is full (a 503) or the held requests are about to finish.
        while True:
            shed = http_json("GET", f"{srv.url}/health", timeout=5)
            waited = time.monotonic() - started
            if shed.status == 503 or waited > 1.5:
                break
            time.sleep(0.1)
        held_statuses = [status_of(sock) for sock in held]
        # The worker frees a slot after the reply is written (gthread: when its main loop sees the
        # thread finish), so a client can read its reply a moment before capacity returns.
        deadline = time.monotonic() + 3
        while (after := http_json("GET", f"{srv.url}/health", timeout=5)).status == 503 and time.monotonic() < deadline:
            time.sleep(0.05)
        log = srv.log()
    assert shed.status == 503, (waited, held_statuses, log[-6000:])
    assert held_statuses == [200, 200]
    assert after.status == 200
    if model == "gthread":
        assert shed.headers["Retry-After"] == "1"
        assert shed.body["code"] == "overloaded"


def reply_of(sock: socket.socket) -> tuple[int, dict, bytes]:
    """Status, headers and body of a Connection: close reply."""
    with sock, sock.makefile("rb") as stream:
        head, _, body = stream.read().partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    return int(status_line.split()[1]), dict(line.split(": ", 1) for line in lines), body


@pytest.mark.django_db(transaction=True)
def test_the_sync_model_sheds_what_its_accept_queue_holds_beyond_the_limit():
    # One worker, limit 2: the server holds two connections, one in flight and one queued. Four arrive
    # while the first is served: when the worker is free again it sheds the two beyond the bound with 503
    # (the longest-waiting first) and serves the last.
    env = {"SERVER_WORKER_CLASS": "sync", "ENABLE_TEST_ENDPOINTS": "true", "UVICORN_LIMIT_CONCURRENCY": "2"}
    with app_server(env=env, workers=1) as srv:
        held = []
        for _ in range(4):
            held.append(hold_request(srv.port, "/test/slow/?seconds=2"))
            time.sleep(0.2)  # in this order
        replies = [reply_of(sock) for sock in held]
        after = http_json("GET", f"{srv.url}/health", timeout=5)
    statuses = [status for status, _, _ in replies]
    assert statuses == [200, 503, 503, 200], statuses
    for status, headers, body in replies:
        if status == 503:
            assert headers["Retry-After"] == "1" and json.loads(body)["code"] == "overloaded"
    assert after.status == 200


@pytest.mark.django_db(transaction=True)
def test_the_uvicorn_model_serves_django_through_asgi():
    with app_server(env={"SERVER_WORKER_CLASS": "uvicorn"}, workers=1) as srv:
        reply = http_json("GET", f"{srv.url}/api/v1/blocks/")
        assert reply.status == 401  # DRF answered: the whole Django stack runs under uvicorn
        assert "uvicorn" in srv.log().lower() or "DjangoUvicornWorker" in srv.log()


def get_on(conn: http.client.HTTPConnection, path: str) -> http.client.HTTPResponse:
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    return response


@pytest.mark.django_db(transaction=True)
def test_the_gthread_model_closes_a_connection_idle_past_the_keep_alive_timeout():
    with app_server(env={"SERVER_WORKER_CLASS": "gthread", "UVICORN_TIMEOUT_KEEP_ALIVE": "1"}, workers=1) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        first = get_on(conn, "/health")
        sock = conn.sock
        assert (first.status, first.will_close) == (200, False)
        # Within the window: the same connection serves the next request (http.client would
        # otherwise have opened a new socket).
        assert get_on(conn, "/health").status == 200 and conn.sock is sock
        # 1 s, plus up to 1 s until the worker's loop next reaps idle connections, plus a margin;
        # still inside the default 5 s, so a server ignoring the knob keeps the connection open.
        time.sleep(3)
        sock.settimeout(0.5)
        try:
            assert sock.recv(1) == b""  # the server closed its end: an orderly EOF
        except TimeoutError:
            pytest.fail("the connection is still open after 3 s idle with a 1 s keep-alive")
        conn.close()


@pytest.mark.django_db(transaction=True)
def test_the_gthread_model_keeps_an_idle_connection_within_the_keep_alive_timeout():
    with app_server(env={"SERVER_WORKER_CLASS": "gthread", "UVICORN_TIMEOUT_KEEP_ALIVE": "30"}, workers=1) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        assert get_on(conn, "/health").status == 200
        sock = conn.sock
        time.sleep(3)  # the idle time after which a 1 s keep-alive has closed (the test above)
        assert get_on(conn, "/health").status == 200 and conn.sock is sock
        conn.close()


def pids_by_request_id(log: str) -> dict[str, int]:
    """The worker that served each request, from the JSON request log lines."""
    lines = (json.loads(line) for line in log.splitlines() if line.startswith("{"))
    return {line["request_id"]: line["pid"] for line in lines if line.get("event") == "request"}


@pytest.mark.django_db(transaction=True)
def test_the_sync_model_recycles_a_worker_after_the_max_requests():
    max_requests = 5  # + jitter of max(1, 5 // 10) = 1: each worker serves 5 or 6 requests
    env = {"SERVER_WORKER_CLASS": "sync", "UVICORN_LIMIT_MAX_REQUESTS": str(max_requests)}
    with app_server(env=env, workers=1) as srv:
        replies = [http_json("GET", f"{srv.url}/health") for _ in range(30)]
        served_by = pids_by_request_id(srv.log())
        master_alive = srv.process.poll() is None
    assert [reply.status for reply in replies] == [200] * 30
    pids = [served_by[reply.headers["X-Request-ID"]] for reply in replies]
    per_worker = Counter(pids)
    # 30 requests at most 6 to a worker: at least 5 workers, each retired after its quota.
    assert len(per_worker) >= 30 // (max_requests + 1), per_worker
    assert max(per_worker.values()) <= max_requests + 1, per_worker
    assert master_alive

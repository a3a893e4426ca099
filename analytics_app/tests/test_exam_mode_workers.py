"""A run-time flip reaches every worker of a running server, without a restart.

Each kept-alive connection is served by one worker for its whole life; /proc tells which worker
holds its socket, so the test knows it watches both workers, not a lucky one.
"""

import http.client
import os
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from examplatform import exam_mode
from examplatform.auth import RefreshToken
from examplatform.testing import app_server, free_port
from sessions_app.tests.factories import UserFactory

COHORT = "/api/v1/analytics/cohort/"
# The per-process cache interval plus room for a loaded 2-core machine.
DEADLINE_SECONDS = exam_mode.REFRESH_SECONDS + 8


def _socket_inode(server_port: int, client_port: int) -> str | None:
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
            return inode
    return None


def _owner(server, conn: http.client.HTTPConnection) -> int | None:
    inode = _socket_inode(server.port, conn.sock.getsockname()[1])
    for pid in server.worker_pids():
        fd_dir = Path(f"/proc/{pid}/fd")
        for fd in fd_dir.iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


def _get(conn: http.client.HTTPConnection, token: str) -> int:
    conn.request("GET", COHORT, headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    response.read()
    return response.status


def _one_connection_per_worker(server, token: str) -> dict[int, http.client.HTTPConnection]:
    per_worker: dict[int, http.client.HTTPConnection] = {}
    spare = []
    for _ in range(60):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        assert _get(conn, token) == 200
        pid = _owner(server, conn)
        if pid is not None and pid not in per_worker:
            per_worker[pid] = conn
        else:
            spare.append(conn)
        if len(per_worker) == len(server.worker_pids()):
            break
    for conn in spare:
        conn.close()
    assert len(per_worker) == 2, "could not reach both workers"
    return per_worker


def _wait_until_all(conns: dict, token: str, status: int) -> float:
    """Poll every worker until each answers `status`; seconds it took."""
    start, pending = time.monotonic(), set(conns)
    while pending and time.monotonic() - start < DEADLINE_SECONDS:
        for pid in list(pending):
            if _get(conns[pid], token) == status:
                pending.discard(pid)
        time.sleep(0.1)
    assert not pending, f"workers {pending} never answered {status}"
    return time.monotonic() - start


@pytest.mark.django_db(transaction=True)
def test_a_flip_reaches_both_workers_within_seconds_and_expiry_turns_it_off():
    token = str(RefreshToken.for_user(UserFactory(username="ops", is_staff=True)).access_token)
    # gthread workers keep connections alive, so each connection stays with one worker. Redis is down for
    # this server (nothing listens on its port): exam mode never depends on it.
    env = {
        "SERVER_WORKER_CLASS": "gthread", "UVICORN_TIMEOUT_KEEP_ALIVE": "30",
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
    }
    with app_server(workers=2, env=env) as server:
        conns = _one_connection_per_worker(server, token)
        pids_before = set(server.worker_pids())

        call_command("exam_mode", "on")
        assert _wait_until_all(conns, token, 503) < DEADLINE_SECONDS
        call_command("exam_mode", "off")
        _wait_until_all(conns, token, 200)

        # An end time turns it off by itself, with no command.
        exam_mode.turn_on(by="test", now=timezone.now(), until=timezone.now() + timezone.timedelta(seconds=5))
        _wait_until_all(conns, token, 503)
        _wait_until_all(conns, token, 200)
        assert set(server.worker_pids()) == pids_before  # no restart, no worker recycled
        for conn in conns.values():
            conn.close()

"""The real Traefik binary in front of the real app server, configured from deploy/traefik/."""

import http.client
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from examplatform.testing import ROOT, Server, _stop, app_server, free_port, wait_for

TRAEFIK_DIR = ROOT / "deploy" / "traefik"
TRAEFIK = shutil.which("traefik", path=str(Path(sys.executable).parent)) or shutil.which("traefik")
DOMAIN = "example.test"
API, STAGING = f"api.{DOMAIN}", f"api-staging.{DOMAIN}"


def shipped_static() -> dict:
    return yaml.safe_load((TRAEFIK_DIR / "traefik.yml").read_text())


def shipped_dynamic() -> dict:
    return yaml.safe_load((TRAEFIK_DIR / "dynamic.yml").read_text())


def render_static(*, web_port: int, ping_port: int, write_timeout: str | None) -> dict:
    """The shipped static config on loopback: plain HTTP, the file provider, no ACME; timeouts as shipped."""
    static = shipped_static()
    web = static["entryPoints"]["web"]
    web["address"] = f"127.0.0.1:{web_port}"
    del web["http"]  # no redirect to TLS
    if write_timeout:
        web["transport"]["respondingTimeouts"]["writeTimeout"] = write_timeout
    static["entryPoints"] = {"web": web, "traefik": {"address": f"127.0.0.1:{ping_port}"}}
    static["providers"] = {"file": {"filename": str(TRAEFIK_DIR / "dynamic.yml")}}
    del static["certificatesResolvers"]
    static["log"] = {"level": "ERROR"}
    del static["accessLog"]
    return static


@contextmanager
def traefik_in_front_of(app: Server, *, write_timeout: str | None = None) -> Iterator[int]:
    web_port, ping_port = free_port(), free_port()
    workdir = Path(tempfile.mkdtemp(prefix="traefik-test-"))
    config = workdir / "traefik.yml"
    config.write_text(yaml.safe_dump(render_static(web_port=web_port, ping_port=ping_port,
                                                   write_timeout=write_timeout)))
    log = workdir / "traefik.log"
    env = {"PATH": "/usr/bin:/bin", "DOMAIN": DOMAIN, "API_UPSTREAM": app.url, "API_STAGING_UPSTREAM": app.url}
    process = subprocess.Popen([TRAEFIK, f"--configFile={config}"], env=env, stdout=log.open("wb"),
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: get(ping_port, "/ping", host="x").status == 200, timeout=20, what="traefik ping")
        for host in (API, STAGING):
            wait_for(lambda h=host: get(web_port, "/health", host=h).status == 200, timeout=20, what=f"{host} route")
        yield web_port
    except TimeoutError as exc:
        raise RuntimeError(f"{exc}; traefik log:\n{log.read_text()[-3000:]}") from exc
    finally:
        _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


def get(port: int, path: str, *, host: str, source: str = "127.0.0.1", timeout: float = 10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        response.read()
        return response
    finally:
        conn.close()


def hold_requests(port: int, path: str, *, host: str, count: int) -> list[socket.socket]:
    """Send `count` requests from 127.0.0.1 and leave them in flight (nobody reads the replies yet)."""
    held = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        held.append(sock)
    return held


def status_of(sock: socket.socket) -> int:
    with sock, sock.makefile("rb") as reply:
        return int(reply.readline().split()[1])


@pytest.fixture(scope="module")
def edge_app(django_db_blocker, django_db_setup):
    # Threads enough to serve every held request at once, so the test never waits on a queue.
    env = {"ENABLE_TEST_ENDPOINTS": "true", "SERVER_WORKER_CLASS": "gthread", "GUNICORN_THREADS": "60",
           "ALLOWED_HOSTS": f".{DOMAIN},127.0.0.1"}
    with django_db_blocker.unblock(), app_server(env=env, workers=2) as app:
        yield app


@pytest.fixture(scope="module")
def edge(edge_app):
    with traefik_in_front_of(edge_app) as port:
        yield port


def test_the_shipped_entrypoint_timeouts_are_the_specs():
    for name in ("web", "websecure"):
        timeouts = shipped_static()["entryPoints"][name]["transport"]["respondingTimeouts"]
        assert timeouts == {"readTimeout": "15s", "writeTimeout": "15s", "idleTimeout": "60s"}


def test_the_shipped_in_flight_limit_is_100_per_client_ip_on_both_routers():
    dynamic = shipped_dynamic()["http"]
    limit = dynamic["middlewares"]["conn-limit"]["inFlightReq"]
    assert limit["amount"] == 100
    assert limit["sourceCriterion"] == {"ipStrategy": {"depth": 0}}
    assert {name: router["middlewares"] for name, router in dynamic["routers"].items()} == {
        "api": ["conn-limit"], "api-staging": ["conn-limit"]
    }


@pytest.mark.parametrize("host", [API, STAGING])
def test_one_ip_beyond_the_limit_gets_429_while_another_ip_is_served(edge, host):
    amount = shipped_dynamic()["http"]["middlewares"]["conn-limit"]["inFlightReq"]["amount"]
    held = hold_requests(edge, "/test/slow/?seconds=6", host=host, count=amount)
    try:
        # Sequencing only: let Traefik read every held request before the 101st arrives (else
        # the probe can slip in first and a held one gets the 429).
        time.sleep(0.5)
        statuses: list[int] = []
        try:
            wait_for(lambda: statuses.append(get(edge, "/health", host=host).status) or statuses[-1] == 429,
                     timeout=5, interval=0.1, what="429 from the in-flight limit")
        except TimeoutError as exc:
            raise AssertionError(f"no 429; statuses seen: {sorted(set(statuses))}") from exc
        assert get(edge, "/health", host=host, source="127.0.0.2").status == 200
    finally:
        held_statuses = [status_of(sock) for sock in held]
    assert held_statuses == [200] * amount
    assert get(edge, "/health", host=host).status == 200


def test_the_timing_headers_pass_through(edge, edge_app):
    direct = http.client.HTTPConnection("127.0.0.1", edge_app.port, timeout=10)
    direct.request("GET", "/health")
    # Header names compare case-insensitively: Traefik (Go) rewrites X-Request-ID as X-Request-Id.
    app_headers = {name.lower() for name, _ in direct.getresponse().getheaders() if name.lower().startswith("x-")}
    direct.close()
    # The app must send them (else the check below would pass on an empty set) ...
    assert {"x-request-id", "x-response-time-ms", "x-db-time-ms", "x-db-queries"} <= app_headers
    # ... and Traefik must not drop any.
    via_edge = get(edge, "/health", host=API)
    assert app_headers <= {name.lower() for name, _ in via_edge.getheaders()}


def test_a_response_slower_than_the_write_timeout_is_cut(edge_app):
    # The shipped 15 s, shortened from the same config so the test is quick.
    with traefik_in_front_of(edge_app, write_timeout="1s") as port:
        assert get(port, "/test/slow/?seconds=0", host=API).status == 200
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError, http.client.IncompleteRead)):
            get(port, "/test/slow/?seconds=2.5", host=API)

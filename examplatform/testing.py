"""Real servers for tests: the app under gunicorn, and throwaway PostgreSQL and Redis.

A test that must stop, hang or restart a service uses its own throwaway
instance on a free port and never touches the shared ones.
"""

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]) if glob.glob("/usr/lib/postgresql/*/bin") else None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for(predicate, *, timeout: float = 20.0, interval: float = 0.05, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # noqa: S110 - not up yet
            pass
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}")


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


@dataclass
class Server:
    url: str
    port: int
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        """What the server printed so far (gunicorn's and the app's logs)."""
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []


def current_test_database_url() -> str:
    """The URL of the database the current test runs against, for a server started by the test."""
    from django.db import connection

    s = connection.settings_dict
    return f"postgres://{s['USER'] or 'postgres'}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@contextmanager
def app_server(
    *, env: dict[str, str] | None = None, workers: int = 2, worker_class: str | None = None,
    config: str = "deploy/gunicorn.conf.py",
) -> Iterator[Server]:
    """The app under gunicorn with the production config, on a free loopback port."""
    port = free_port()
    full_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "examplatform.settings",
        "BIND": f"127.0.0.1:{port}",
        "UVICORN_WORKERS": str(workers),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        **({"GUNICORN_WORKER_CLASS": worker_class} if worker_class else {}),
        **(env or {}),
    }
    if "DATABASE_URL" not in (env or {}):
        full_env["DATABASE_URL"] = current_test_database_url()
    log_path = Path(tempfile.mkstemp(prefix="app-server-", suffix=".log")[1])
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", config, "examplatform.wsgi"],
        cwd=ROOT, env=full_env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    server = Server(url=f"http://127.0.0.1:{port}", port=port, process=process, log_path=log_path)
    try:
        wait_for(
            lambda: urllib.request.urlopen(f"{server.url}/health", timeout=1).status == 200,  # noqa: S310
            timeout=30, what="app server",
        )
        wait_for(lambda: len(server.worker_pids()) >= workers, timeout=30, what="all workers")
        yield server
    except TimeoutError as exc:
        raise RuntimeError(f"{exc}; server log:\n{server.log()[-4000:]}") from exc
    finally:
        _stop(process)
        log_path.unlink(missing_ok=True)


def _stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=timeout)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass
class Postgres:
    port: int
    datadir: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        log = self.datadir.parent / "postgres.log"
        self.process = subprocess.Popen(
            ["runuser", "-u", "postgres", "--", str(PG_BIN / "postgres"), "-D", str(self.datadir),
             "-p", str(self.port), "-k", str(self.datadir.parent), "-c", "listen_addresses=127.0.0.1",
             "-c", "fsync=off", "-c", "max_connections=50"],
            stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_for(lambda: subprocess.run(
            [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"], check=False
        ).returncode == 0, timeout=20, what="throwaway postgres")

    def stop(self, *, fast: bool = True) -> None:
        if self.process and self.process.poll() is None:
            # runuser doesn't pass signals on: signal the whole group. SIGINT is a fast shutdown.
            os.killpg(self.process.pid, signal.SIGINT if fast else signal.SIGTERM)
            self.process.wait(timeout=20)

    def psql(self, sql: str, database: str = "postgres") -> str:
        return subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database, "-Atc", sql],
            check=True, capture_output=True, text=True,
        ).stdout.strip()


@contextmanager
def throwaway_postgres() -> Iterator[Postgres]:
    """A fresh PostgreSQL cluster (initdb as the postgres user, trust auth) on a free port."""
    workdir = Path(tempfile.mkdtemp(prefix="pg-throwaway-"))
    shutil.chown(workdir, "postgres", "postgres")
    datadir = workdir / "data"
    subprocess.run(
        ["runuser", "-u", "postgres", "--", str(PG_BIN / "initdb"), "-D", str(datadir), "-A", "trust",
         "-U", "postgres", "--no-sync"],
        check=True, capture_output=True,
    )
    pg = Postgres(port=free_port(), datadir=datadir)
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Redis:
    port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def restart(self) -> None:
        if self.process.poll() is None:
            self.kill()
        self.process = _start_redis(self.port)


def _start_redis(port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    wait_for(lambda: _port_open(port), timeout=10, what="throwaway redis")
    return process


@contextmanager
def throwaway_redis() -> Iterator[Redis]:
    redis = Redis(port=(port := free_port()), process=_start_redis(port))
    try:
        yield redis
    finally:
        redis.resume()
        if redis.process.poll() is None:
            redis.kill()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: dict | list | None


def http_json(method: str, url: str, *, token: str | None = None, body=None, headers=None, timeout=30) -> Reply:
    """One HTTP request with a JSON body; any status comes back as a Reply (no exception)."""
    import json
    import urllib.error

    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback test servers
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, reply_headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, reply_headers, raw = error.code, dict(error.headers), error.read()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    return Reply(status=status, headers=reply_headers, body=parsed)


def access_token_for(user) -> str:
    from examplatform.auth import RefreshToken

    return str(RefreshToken.for_user(user).access_token)


def client_for(user):
    """A DRF test client logged in as `user` with a real JWT (its refresh token on `.refresh_token`)."""
    from rest_framework.test import APIClient

    from examplatform.auth import RefreshToken

    client = APIClient()
    refresh = RefreshToken.for_user(user)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {refresh.access_token}")
    client.refresh_token = str(refresh)
    return client

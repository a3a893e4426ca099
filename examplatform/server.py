"""The app server's worker models, picked by one setting: SERVER_WORKER_CLASS=sync|gthread|uvicorn.

deploy/gunicorn.conf.py reads this before Django loads; gunicorn imports the worker
classes below by path. Whatever the model, the spec's knobs keep their meaning:
UVICORN_LIMIT_CONCURRENCY connections per worker, beyond which a client gets an
immediate 503 instead of waiting behind the busy ones.

- sync: one request per worker at a time; the rest wait in the shared accept queue,
  and SheddingSyncWorker answers what it holds beyond workers x the limit with 503.
  It closes each connection after its reply, so it keeps none alive to time out.
- gthread: GUNICORN_THREADS requests per worker; SheddingThreadWorker answers a
  connection beyond worker_connections (= the limit) with 503 and Retry-After.
- uvicorn: Django's ASGI handler under uvicorn, which sheds beyond limit_concurrency itself.
"""

import contextlib
import errno
import os
import selectors
import socket
import struct
import time

from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker
from uvicorn_worker import UvicornWorker

# The model's name and its concurrency limit are read in capacity.py (Django- and gunicorn-free), which
# sizes the database pool from them; here under the names gunicorn.conf.py and doctor use.
from .capacity import (  # noqa: F401
    DEFAULT_LIMIT_CONCURRENCY,
    DEFAULT_WORKER_MODEL,
    WORKER_CLASSES,
    limit_concurrency,
    worker_model,
)

DEFAULT_KEEP_ALIVE_SECONDS = 5
DEFAULT_MAX_REQUESTS = 10000
SHED_RETRY_AFTER_SECONDS = 1
# A shed client that never sends its request is closed after this long.
SHED_TIMEOUT_SECONDS = 1.0
TCP_LISTEN = 10  # tcp_info.tcpi_state of a listening socket


def keep_alive(environ=os.environ) -> int:
    """Seconds an idle kept-alive connection stays open (gthread, uvicorn; sync closes after each reply)."""
    return int(environ.get("UVICORN_TIMEOUT_KEEP_ALIVE") or DEFAULT_KEEP_ALIVE_SECONDS)


def max_requests(environ=os.environ) -> int:
    """Requests a worker serves before it is replaced (0: never)."""
    return int(environ.get("UVICORN_LIMIT_MAX_REQUESTS") or DEFAULT_MAX_REQUESTS)


SHED_BODY = b'{"detail": "The server is at its concurrency limit. Retry shortly.", "code": "overloaded"}'
SHED_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: application/json\r\n"
    + f"Retry-After: {SHED_RETRY_AFTER_SECONDS}\r\n".encode()
    + f"Content-Length: {len(SHED_BODY)}\r\n".encode()
    + b"Connection: close\r\n\r\n"
    + SHED_BODY
)


def accept_queue_length(listener: socket.socket) -> int | None:
    """Connections waiting in a TCP listen socket's accept queue (Linux TCP_INFO), None where unknown.

    For a listening socket the kernel reports the queue's length in tcpi_unacked.
    """
    try:
        info = listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    except (AttributeError, OSError):  # not TCP (a unix socket), or not Linux
        return None
    state, = struct.unpack_from("B", info, 0)
    return struct.unpack_from("I", info, 24)[0] if state == TCP_LISTEN else None


def shed(client: socket.socket) -> None:
    """Answer 503 to a connection that has waited in the queue, whose request has therefore arrived.

    Read what it sent first (closing with unread data would reset the reply), without
    waiting for more: the worker's time is what shedding saves.
    """
    with contextlib.suppress(OSError), client:
        client.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while client.recv(65536):
                pass
        client.send(SHED_RESPONSE)
        client.shutdown(socket.SHUT_WR)


class SheddingSyncWorker(SyncWorker):
    """gunicorn's sync worker, with the spec's concurrency limit: a bounded queue, the excess shed with 503.

    A sync worker serves one request at a time; the server's other connections wait in
    the listen socket's accept queue, which all workers share. The server may hold
    workers x UVICORN_LIMIT_CONCURRENCY connections, as under gthread and uvicorn: one
    in flight per worker, the rest queued. Each time a worker is free to take the
    next connection it reads the queue's length (one getsockopt) and first takes what
    lies beyond that bound off it, answering each 503 + Retry-After. The oldest go
    first (the queue is first in, first out): under overload they are the likeliest
    to have given up at the client already.

    In the worker's own loop, not a watcher thread: a thread waking every few ms
    to look made each busy worker hand it the GIL, and on saturated cores the
    request thread then waited for the watcher to be scheduled (p95 doubled at
    1000 students).
    """

    def run(self):
        self.max_queued = self.cfg.workers * self.cfg.worker_connections - self.cfg.workers
        super().run()

    def accept(self, listener):
        # Re-read before each: every worker sheds from the same queue, and none should take what
        # another has already brought under the bound.
        while (accept_queue_length(listener.sock) or 0) > self.max_queued:
            try:
                client, _ = listener.accept()
            except BlockingIOError:
                break  # another worker took it first
            shed(client)
        super().accept(listener)


class SheddingThreadWorker(ThreadWorker):
    """gthread that sheds instead of queueing.

    Stock gthread stops accepting at worker_connections, so the excess waits in
    the kernel backlog for as long as the slowest request in front of it. This one
    keeps accepting while alive and answers the excess from the event loop (never
    a pool thread): read what the client sent, write a 503, close.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.shed_deadlines: dict[socket.socket, float] = {}

    def set_accept_enabled(self, enabled):
        super().set_accept_enabled(enabled or self.alive)

    def accept(self, listener):
        if self.nr_conns < self.worker_connections:
            return super().accept(listener)
        try:
            client, _ = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        client.setblocking(False)
        self.shed_deadlines[client] = time.monotonic() + SHED_TIMEOUT_SECONDS
        self.poller.register(client, selectors.EVENT_READ, self.shed)

    def shed(self, client: socket.socket) -> None:
        """The client's request arrived: drain it (so closing doesn't reset), answer 503, close."""
        try:
            while client.recv(65536):
                pass
        except OSError:
            pass  # EAGAIN: nothing more buffered
        try:
            client.send(SHED_RESPONSE)
            client.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the client left
        self._forget_shed(client)

    def _forget_shed(self, client: socket.socket) -> None:
        self.shed_deadlines.pop(client, None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(client)
        client.close()

    def murder_pending(self):
        super().murder_pending()
        now = time.monotonic()
        for client in [c for c, deadline in self.shed_deadlines.items() if deadline <= now]:
            self._forget_shed(client)


class DjangoUvicornWorker(UvicornWorker):
    """uvicorn with the spec's limits, always serving Django's ASGI handler.

    The app named on gunicorn's command line (examplatform.wsgi, as for every
    model) is replaced by examplatform.asgi, so SERVER_WORKER_CLASS alone switches
    the interface. Django has no lifespan support: uvicorn's lifespan is off.
    """

    def __init__(self, *args, **kwargs):
        self.CONFIG_KWARGS = {**UvicornWorker.CONFIG_KWARGS, "lifespan": "off",
                              "limit_concurrency": limit_concurrency()}
        super().__init__(*args, **kwargs)

    def load_wsgi(self):
        from examplatform.asgi import application

        self.wsgi = application

"""The app server's worker models, picked by one setting: SERVER_WORKER_CLASS=sync|gthread|uvicorn.

deploy/gunicorn.conf.py reads this before Django loads; gunicorn imports the worker
classes below by path. Whatever the model, the spec's knobs keep their meaning:
UVICORN_LIMIT_CONCURRENCY connections per worker, beyond which a client gets an
immediate 503 instead of waiting behind the busy ones.

- sync: one request per worker at a time by construction; the excess waits in the
  listen backlog (the edge's in-flight limit and gunicorn's timeout bound it).
- gthread: GUNICORN_THREADS requests per worker; SheddingThreadWorker answers a
  connection beyond worker_connections (= the limit) with 503 and Retry-After.
- uvicorn: Django's ASGI handler under uvicorn, which sheds beyond limit_concurrency itself.
"""

import contextlib
import errno
import os
import selectors
import socket
import time

from gunicorn.workers.gthread import ThreadWorker
from uvicorn_worker import UvicornWorker

DEFAULT_WORKER_MODEL = "sync"
WORKER_CLASSES = {
    "sync": "sync",
    "gthread": "examplatform.server.SheddingThreadWorker",
    "uvicorn": "examplatform.server.DjangoUvicornWorker",
}
# Names the gunicorn docs use for the same models, so `-k`-style values work too.
_ALIASES = {
    "gunicorn.workers.sync.syncworker": "sync",
    "gunicorn.workers.gthread.threadworker": "gthread",
    "uvicorn_worker.uvicornworker": "uvicorn",
    "uvicorn.workers.uvicornworker": "uvicorn",
    "examplatform.server.sheddingthreadworker": "gthread",
    "examplatform.server.djangouvicornworker": "uvicorn",
}
DEFAULT_LIMIT_CONCURRENCY = 200
DEFAULT_KEEP_ALIVE_SECONDS = 5
DEFAULT_MAX_REQUESTS = 10000
SHED_RETRY_AFTER_SECONDS = 1
# A shed client that never sends its request is closed after this long.
SHED_TIMEOUT_SECONDS = 1.0


def worker_model(environ=os.environ) -> str:
    """sync, gthread or uvicorn. GUNICORN_WORKER_CLASS is read as an older name of the same setting."""
    raw = environ.get("SERVER_WORKER_CLASS") or environ.get("GUNICORN_WORKER_CLASS") or DEFAULT_WORKER_MODEL
    model = _ALIASES.get(raw.strip().lower(), raw.strip().lower())
    if model not in WORKER_CLASSES:
        raise ValueError(f"SERVER_WORKER_CLASS={raw!r}: choose one of {', '.join(WORKER_CLASSES)}")
    return model


def limit_concurrency(environ=os.environ) -> int:
    return int(environ.get("UVICORN_LIMIT_CONCURRENCY") or DEFAULT_LIMIT_CONCURRENCY)


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

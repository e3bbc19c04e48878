"""Run an ASGI app as a real HTTP server on 127.0.0.1 in a background thread (for tests and benches).

``serve(app)`` binds a free loopback port, starts uvicorn in a daemon thread and yields a
``RunningServer`` whose ``url`` is ready to use; leaving the ``with`` block stops it.
``RunningServer.stop()`` may also be called early to simulate a server dying mid-run.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunningServer:
    """A started server: its base URL and a way to stop it."""

    url: str
    port: int
    _server: Any = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting and close connections (idempotent)."""
        self._server.should_exit = True
        self._server.force_exit = True
        self._thread.join(timeout)


def bind_loopback(port: int = 0) -> socket.socket:
    """A listening TCP socket on 127.0.0.1 (port 0 picks a free one).

    The protocol is given explicitly: asyncio only turns Nagle's algorithm off (TCP_NODELAY) on
    accepted sockets whose protocol reads as TCP, and without it every response waits ~40 ms
    for the client's delayed ACK.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(512)
    sock.setblocking(False)
    return sock


def start(app: Any, port: int = 0, *, timeout: float = 10.0) -> RunningServer:
    """Start ``app`` on 127.0.0.1 and return once it accepts connections."""
    import uvicorn

    sock = bind_loopback(port)
    bound = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_keep_alive=5,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)

    def run() -> None:
        asyncio.run(server.serve(sockets=[sock]))

    thread = threading.Thread(target=run, name=f"offload-fake-{bound}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"test server on 127.0.0.1:{bound} did not start")
        time.sleep(0.01)
    return RunningServer(url=f"http://127.0.0.1:{bound}", port=bound, _server=server, _thread=thread)


@contextmanager
def serve(app: Any, port: int = 0) -> Iterator[RunningServer]:
    """Run ``app`` for the duration of the ``with`` block."""
    running = start(app, port)
    try:
        yield running
    finally:
        running.stop()

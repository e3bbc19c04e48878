"""Starting and stopping a gateway: bind checks, the router and ledger it uses, a thread runner for tests.

``start_gateway`` binds and returns a ``Running`` handle once the socket accepts (the CLI then
waits for a signal); ``running`` does the same on its own event loop in a background thread
(tests, benches, notebooks). A non-loopback address without a key is refused before binding.
"""

from __future__ import annotations

import asyncio
import ipaddress
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offload.config import Config
from offload.errors import InputError

DEFAULT_PORT = 4141


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, key: str | None) -> None:
    """Refuse to serve beyond this machine without a key."""
    if not is_loopback(host) and not key:
        raise InputError(
            f"refusing to listen on {host} without a key: anyone who can reach it could spend your API keys",
            remedy="pass --key KEY (or set OFFLOAD_GATEWAY_KEY), or bind 127.0.0.1",
        )


@dataclass
class Running:
    """A started gateway."""

    url: str
    runner: Any
    gateway: Any
    offloader: Any
    ledger: Any

    async def close(self) -> None:
        """Stop accepting, finish, close connections and flush the ledger."""
        await self.runner.cleanup()
        await self.offloader.aclose()
        if self.ledger is not None:
            self.ledger.close()


async def start_gateway(
    config: Config,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    key: str | None = None,
    ledger_path: str | Path | None = None,
    ledger: bool = True,
) -> Running:
    """Bind and start serving; returns once connections are accepted."""
    from aiohttp import web

    from offload.gateway.app import Gateway
    from offload.ledger import Ledger
    from offload.offloader import Offloader

    check_bind(host, key)
    book = Ledger(ledger_path, config=config) if ledger else None
    offloader = Offloader(config, ledger=False)
    gateway = Gateway(config, offloader.router, book, key)
    runner = web.AppRunner(gateway.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        await offloader.aclose()
        raise InputError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc})",
            remedy="choose another --port, or stop what is using this one",
        ) from exc
    bound = port
    server = getattr(site, "_server", None)
    if server is not None and server.sockets:
        bound = server.sockets[0].getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return Running(f"http://{shown}:{bound}", runner, gateway, offloader, book)


@contextmanager
def running(
    config: Config,
    *,
    key: str | None = None,
    ledger_path: str | Path | None = None,
    ledger: bool = True,
    host: str = "127.0.0.1",
    timeout: float = 30.0,
) -> Iterator[Running]:
    """Serve on a free loopback port from a background thread; stops on leaving the block."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}
    stop = asyncio.Event()

    async def main() -> None:
        try:
            holder["running"] = await start_gateway(
                config, host=host, port=0, key=key, ledger_path=ledger_path, ledger=ledger
            )
        except BaseException as exc:
            holder["error"] = exc
            ready.set()
            return
        ready.set()
        await stop.wait()
        await holder["running"].close()

    thread = threading.Thread(
        target=lambda: loop.run_until_complete(main()), name="offload-gateway", daemon=True
    )
    thread.start()
    if not ready.wait(timeout):
        raise RuntimeError("the gateway did not start in time")
    if "error" in holder:
        thread.join(timeout)
        loop.close()
        raise holder["error"]
    try:
        yield holder["running"]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)
        loop.close()

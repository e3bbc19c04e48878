"""Progress notifications for one tool call: what the work reports, and a heartbeat in between.

MCP clients give up on a call after their tool timeout unless progress arrives (the
"MCP error -32001" users meet with slow local models). ``reporting`` forwards every
``offload.tasks.progress.report`` made during the call (a model about to load, router notices
such as a failover, parts of a long summary, escalations, batch items) and, when nothing was
said for ``heartbeat`` seconds, says how long the model has been working. Progress counts up
by one per notification. Sending never fails the call: a client that went away stops hearing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from asyncio import FIRST_COMPLETED
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from offload.tasks.progress import listening

HEARTBEAT = 5.0
Send = Callable[[float, str], Awaitable[None]]


@asynccontextmanager
async def reporting(send: Send, first: str, *, heartbeat: float = HEARTBEAT) -> AsyncIterator[None]:
    """Notify ``first`` now, then every report made inside the block, plus heartbeats."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    queue.put_nowait(first)
    stop = asyncio.Event()
    pump = asyncio.create_task(_pump(send, queue, stop, heartbeat))
    try:
        with listening(queue.put_nowait):
            yield
    finally:
        stop.set()  # no task cancellation: a cancel racing a finished get can be lost on 3.11
        await pump


async def _pump(send: Send, queue: asyncio.Queue[str], stop: asyncio.Event, heartbeat: float) -> None:
    started = time.monotonic()
    count = 0
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            getting = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getting, stopping}, timeout=heartbeat, return_when=FIRST_COMPLETED)
            if getting in done:
                message = getting.result()
            else:
                getting.cancel()
                if stopping in done:
                    break
                waited = time.monotonic() - started
                message = f"still working ({waited:.0f} s; a first call may be loading the model)"
            count += 1
            with contextlib.suppress(Exception):
                await send(float(count), message)
        while not queue.empty():  # what the work said just before it ended still goes out
            count += 1
            with contextlib.suppress(Exception):
                await send(float(count), queue.get_nowait())
    finally:
        stopping.cancel()

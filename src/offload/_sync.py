"""Running offload's async core from synchronous code: one private event loop in a daemon thread.

The sync facades (``offload.LMStudio`` …) submit coroutines here and wait for them, so one
connection pool lives across calls, and an async generator can be consumed as a plain
iterator. Works the same whether or not the caller's thread already runs an event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """A private asyncio loop running in a daemon thread."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="offload-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the private loop and return its result (exceptions propagate)."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        """Consume an async iterator from synchronous code, one item at a time."""
        it = aiter(agen)
        try:
            while True:
                try:
                    yield self.run(_next(it))
                except StopAsyncIteration:
                    return
        finally:
            closer = getattr(it, "aclose", None)
            if closer is not None:
                self.run(closer())

    def close(self) -> None:
        """Stop the loop and its thread."""
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


async def _next(it: AsyncIterator[T]) -> T:
    return await anext(it)

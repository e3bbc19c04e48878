"""Closing event streams deterministically, in the task that reads them.

An async generator left suspended (an error raised above it, an early ``break``, a client that
went away) is otherwise closed later by the garbage collector, from another task, where the
``async with`` blocks it holds (an HTTP response, a lock) cannot unwind cleanly and asyncio
reports "an error occurred during closing of asynchronous generator". Every layer of the
stream path reads the layer below inside ``closing``, so closing the outermost stream closes
the whole chain, innermost first, before the reader goes on.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

S = TypeVar("S", bound=AsyncIterable[Any])


@asynccontextmanager
async def closing(stream: S) -> AsyncIterator[S]:
    """``stream`` for an ``async with`` block that closes it (``aclose``, when it has one) on exit."""
    try:
        yield stream
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()

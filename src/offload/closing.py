"""Closing event streams deterministically, in the task that reads them.

An async generator left suspended (an error raised above it, an early ``break``, a client that
went away) is otherwise closed later by the garbage collector or at loop shutdown, from other
tasks and in no particular order, where the ``async with`` blocks it holds (an HTTP response, a
lock) cannot unwind cleanly and asyncio reports "an error occurred during closing of
asynchronous generator". Every layer of the stream path reads the layer below inside
``closing``, so closing the outermost stream closes the whole chain, innermost first, before
the reader goes on. ``closing`` is a plain class, not a generator, so that it never is one of
the generators asyncio finalizes on its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Any, Generic, TypeVar

S = TypeVar("S", bound=AsyncIterable[Any])


class closing(Generic[S]):  # lower case, like contextlib.aclosing
    """``async with closing(stream) as s:`` — ``stream`` closed (``aclose``, when it has one)
    when the block exits, however it exits."""

    def __init__(self, stream: S) -> None:
        self.stream = stream

    async def __aenter__(self) -> S:
        return self.stream

    async def __aexit__(self, *exc: object) -> None:
        close = getattr(self.stream, "aclose", None)
        if close is not None:
            await close()

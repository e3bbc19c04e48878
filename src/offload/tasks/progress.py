"""Progress of the work running in the current task, for whoever listens (the MCP server).

Task code calls ``report("summary: part 2 of 5")``; nothing happens unless a caller up the
stack listens with ``with listening(sink): ...``. The sink lives in a context variable, so
concurrent calls (one asyncio task each) each hear only their own progress.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Sink = Callable[[str], None]
_sink: ContextVar[Sink | None] = ContextVar("offload_progress_sink", default=None)


def report(message: str) -> None:
    """Tell the current listener (if any) what the work is doing now."""
    sink = _sink.get()
    if sink is not None:
        sink(message)


@contextmanager
def listening(sink: Sink) -> Iterator[None]:
    """Send every ``report`` made inside the block (in this task and tasks it starts) to ``sink``."""
    token = _sink.set(sink)
    try:
        yield
    finally:
        _sink.reset(token)

"""An in-process provider that answers from a script: for tests of routing, tasks and batches.

Each call pops the next scripted item: a string (the answer), a ``ChatResult``, or an
exception instance (raised). When the script is empty, ``default`` answers (or, if it is
``None``, an ``AssertionError`` says the test made more calls than it expected). Every request
is recorded in ``calls``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import replace

from offload.types import ChatRequest, ChatResult, ModelInfo, StreamEnd, StreamEvent, TextDelta, Usage

Item = str | ChatResult | BaseException
Default = Callable[[ChatRequest], str] | str | None


class ScriptedProvider:
    """A ``Provider`` whose answers come from a list."""

    def __init__(
        self,
        name: str = "scripted",
        script: Iterable[Item] = (),
        *,
        local: bool = True,
        default: Default = None,
        models: Iterable[ModelInfo] = (),
        delay: float = 0.0,
    ) -> None:
        self.name = name
        self.local = local
        self.script: list[Item] = list(script)
        self.default = default
        self.calls: list[ChatRequest] = []
        self._models = list(models)
        self.delay = delay
        self.closed = False

    @property
    def address(self) -> str:
        """A made-up address for messages."""
        return f"scripted://{self.name}"

    def add(self, *items: Item) -> None:
        """Append answers or errors to the script."""
        self.script.extend(items)

    async def models(self) -> list[ModelInfo]:
        """The models given at construction."""
        return list(self._models)

    def _next(self, request: ChatRequest) -> ChatResult:
        self.calls.append(request)
        if self.script:
            item = self.script.pop(0)
        elif self.default is not None:
            item = self.default if isinstance(self.default, str) else self.default(request)
        else:
            raise AssertionError(f"{self.name}: unexpected call #{len(self.calls)} (script exhausted)")
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, ChatResult):
            return replace(item, provider=item.provider or self.name, model=item.model or request.model or "")
        words = sum(len(m.content.split()) for m in request.messages)
        usage = Usage(input_tokens=words + 5, output_tokens=len(item.split()))
        return ChatResult(
            item, model=request.model or "", provider=self.name, finish_reason="stop", usage=usage
        )

    async def chat(self, request: ChatRequest) -> ChatResult:
        """Pop the next answer."""
        if self.delay:
            await asyncio.sleep(self.delay)
        return self._next(request)

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Pop the next answer and yield it word by word."""
        result = self._next(request)
        for i, word in enumerate(result.content.split(" ")):
            yield TextDelta(word if i == 0 else " " + word)
        yield StreamEnd(result)

    async def aclose(self) -> None:
        """Mark closed."""
        self.closed = True

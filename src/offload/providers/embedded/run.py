"""One embedded generation: a llama.cpp worker thread bridged to asyncio as stream events.

The worker posts text pieces to an ``asyncio.Queue`` through ``loop.call_soon_threadsafe``, so
the event loop never blocks. When the consumer stops early the worker is told to stop at the
next token, and the stream waits for it so the model's lock is free when the stream is closed.
``<think>`` parts go to reasoning; the final content is exactly the joined ``TextDelta`` texts.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any

from offload.providers.embedded import engine
from offload.providers.embedded.text import ThinkSplitter, chat_messages
from offload.tokens import estimate_tokens
from offload.types import (
    ChatRequest,
    ChatResult,
    ReasoningDelta,
    StreamEnd,
    StreamEvent,
    TextDelta,
    Timings,
    Usage,
)

DEFAULT_MAX_OUTPUT_TOKENS = 512
DEFAULT_TEMPERATURE = 0.2
DEFAULT_TOP_P = 0.95


class Run:
    """One generation: a worker thread feeding an asyncio queue, read back as stream events."""

    def __init__(
        self,
        llama_cpp: Any,
        model: engine.LoadedModel,
        request: ChatRequest,
        started: float,
        load_time: float | None,
        *,
        provider: str,
        map_error: Callable[[BaseException], BaseException],
    ) -> None:
        self.llama_cpp, self.model, self.request = llama_cpp, model, request
        self.provider, self.map_error = provider, map_error
        self.started, self.load_time = started, load_time
        self.cancel = threading.Event()
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.loop = asyncio.get_running_loop()
        self.text: list[str] = []
        self.reasoning: list[str] = []

    def _post(self, kind: str, value: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, (kind, value))
        except RuntimeError:  # the loop is gone: nobody is listening any more
            self.cancel.set()

    def _work(self) -> engine.Outcome:
        request = self.request
        sampling = engine.Sampling(
            max_tokens=request.max_output_tokens or DEFAULT_MAX_OUTPUT_TOKENS,
            temperature=DEFAULT_TEMPERATURE if request.temperature is None else request.temperature,
            top_p=DEFAULT_TOP_P if request.top_p is None else request.top_p,
            schema=request.response_format.schema if request.response_format else None,
        )
        messages = chat_messages(request, fold_system=self.model.chat_format == "gemma")
        try:
            return engine.generate(
                self.llama_cpp,
                self.model,
                messages,
                sampling,
                on_start=lambda rendered: self._post("start", rendered.thinking),
                on_text=lambda text: self._post("text", text),
                cancel=self.cancel,
            )
        finally:
            self._post("done", None)

    def _keep(self, deltas: list[TextDelta | ReasoningDelta]) -> list[TextDelta | ReasoningDelta]:
        for delta in deltas:
            (self.text if isinstance(delta, TextDelta) else self.reasoning).append(delta.text)
        return deltas

    async def events(self) -> AsyncGenerator[StreamEvent, None]:
        """Deltas as the worker produces them, then ``StreamEnd``; stops the worker on early exit."""
        future = self.loop.run_in_executor(None, self._work)
        splitter = ThinkSplitter()
        try:
            while True:
                kind, value = await self.queue.get()
                if kind == "done":
                    break
                if kind == "start":
                    splitter = ThinkSplitter(in_reasoning=bool(value))
                    continue
                for delta in self._keep(splitter.feed(value)):
                    yield delta
            try:
                outcome = await future
            except Exception as exc:
                raise self.map_error(exc) from None
            for delta in self._keep(splitter.flush()):
                yield delta
            yield StreamEnd(self._result(outcome))
        finally:
            self.cancel.set()
            if not future.done():
                await asyncio.wait({future})

    def _result(self, outcome: engine.Outcome) -> ChatResult:
        now = time.perf_counter()
        reasoning = "".join(self.reasoning)
        return ChatResult(
            content="".join(self.text),
            reasoning=reasoning,
            model=self.model.key,
            provider=self.provider,
            instance_id=self.model.key,
            finish_reason=outcome.finish_reason,
            usage=Usage(
                input_tokens=outcome.prompt_tokens,
                output_tokens=outcome.output_tokens,
                reasoning_tokens=min(estimate_tokens(reasoning), outcome.output_tokens),
            ),
            timings=Timings(
                tokens_per_second=outcome.tokens_per_second,
                time_to_first_token=(outcome.first_token - outcome.started) if outcome.first_token else None,
                model_load_time=self.load_time,
                total_seconds=now - self.started,
            ),
        )

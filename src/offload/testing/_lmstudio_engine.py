"""Generation engine of the LM Studio fake, shared by every route family.

Owns ``Engine``: model resolution per route family, explicit and JIT loads (with auto-evict and
de-duplication of concurrent JIT loads), parallel slots, the prompt checks (context overflow, the
system-prompt-on-follow-up bug), replies (script queue, then responder), one delta per
word-piece, faults applied during generation, and storing responses for stateful threads.
Emits the events of ``_lmstudio_events``; ``collect``/``prestart`` consume them.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from offload.testing import _lmstudio_errors as errors
from offload.testing._lmstudio_errors import TurnError
from offload.testing._lmstudio_events import (
    Delta,
    DropNow,
    Event,
    Finished,
    LoadEnd,
    LoadProgress,
    LoadStart,
    PromptEnd,
    PromptProgress,
    PromptStart,
    Started,
    Target,
    TurnPlan,
    TurnResult,
)
from offload.testing._lmstudio_faults import FaultQueue
from offload.testing._lmstudio_models import FakeModel, Instance, SlotGate
from offload.testing._lmstudio_state import (
    FakeConfig,
    FakeStats,
    Registry,
    StoredTurn,
    ThreadStore,
    new_response_id,
)
from offload.testing._lmstudio_text import (
    FakeMessage,
    FakeTurn,
    count_input_tokens,
    default_reasoning,
    default_responder,
    split_pieces,
)

NOMINAL_TOKENS_PER_SECOND = 250.0


@dataclass(frozen=True)
class _Loaded:
    instance: Instance
    seconds: float | None


@dataclass(frozen=True)
class _Draft:
    reasoning: list[str]
    text: list[str]
    finish_reason: Literal["stop", "length"]
    stop_sequence: str | None = None


class Engine:
    """Runs plans against the registry, honouring the config's delays, slots and faults."""

    def __init__(
        self, config: FakeConfig, registry: Registry, store: ThreadStore, faults: FaultQueue, stats: FakeStats
    ) -> None:
        self.config = config
        self.registry = registry
        self.store = store
        self.faults = faults
        self.stats = stats
        self._script: deque[str] = deque()
        self._script_lock = threading.Lock()
        self._pending: dict[str, tuple[str, asyncio.Future[Instance]]] = {}

    def add_script(self, replies: Iterable[str]) -> None:
        with self._script_lock:
            self._script.extend(replies)

    # resolution

    def resolve_native(self, name: str, context_length: int | None = None) -> Target:
        """``/api/v1/chat``: instance id or key; 404 if unknown; JIT target if unloaded."""
        instance = self.registry.instance(name)
        model = instance.model if instance else self.registry.find_model(name)
        if model is None:
            raise errors.native_model_not_found(name)
        if not model.is_llm:
            raise errors.native(400, f"Model '{name}' is an embedding model and cannot be used for chat.")
        if instance is None:
            loaded = self.registry.instances_of(model.key)
            instance = loaded[0] if loaded else None
            if instance is None and not self.config.jit:
                raise errors.no_models_loaded()
        return Target(model, instance, context_length)

    def resolve_compat(self, name: str) -> Target:
        """OpenAI/Anthropic routes: key (any case) or id; one loaded LLM answers any unknown name."""
        instance = self.registry.instance(name)
        model = instance.model if instance else self.registry.find_model(name, ignore_case=True)
        if model is not None and model.is_llm:
            if instance is None:
                loaded = self.registry.instances_of(model.key)
                instance = loaded[0] if loaded else None
            if instance is not None or self.config.jit:
                return Target(model, instance)
        llms = [i for i in self.registry.instances() if i.model.is_llm]
        if len(llms) == 1:
            return Target(llms[0].model, llms[0])
        if not llms and model is not None:
            raise errors.openai_invalid(errors.NO_MODELS_LOADED, "model")
        raise errors.openai_model_not_found(name, self.registry.example_names())

    def resolve_embedding(self, name: str) -> Target:
        instance = self.registry.instance(name)
        model = instance.model if instance else self.registry.find_model(name, ignore_case=True)
        if model is None or model.is_llm:
            raise errors.openai_model_not_found(name, self.registry.example_names())
        loaded = [instance] if instance else self.registry.instances_of(model.key)
        if not loaded and not self.config.jit:
            raise errors.openai_invalid(errors.NO_MODELS_LOADED, "model")
        return Target(model, loaded[0] if loaded else None)

    # loading

    async def _load_steps(self, model: FakeModel, path: str) -> AsyncIterator[float]:
        fault = self.faults.take(path, "load")
        budget = self.config.memory_bytes
        if budget is not None and self.registry.memory_used() + model.size_bytes > budget:
            raise TurnError("load_failed", errors.load_failed_message(model.key))
        step = self.config.load_delay / 4
        for i in range(1, 5):
            if step > 0:
                await asyncio.sleep(step)
            if fault is not None and i == 2:
                raise TurnError("load_failed", errors.load_failed_message(model.key))
            yield i / 4
        self.stats.loads += 1

    async def load(
        self,
        model: FakeModel,
        *,
        path: str,
        context_length: int | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[Instance, float]:
        """An explicit load: always a new instance (``key``, ``key:2``…)."""
        instance_id = self.registry.reserve_id(model.key)
        started = asyncio.get_running_loop().time()
        try:
            async for _ in self._load_steps(model, path):
                pass
        except BaseException:
            self.registry.release_id(instance_id)
            raise
        instance = self.registry.add_instance(
            model, context_length=context_length, options=options, instance_id=instance_id
        )
        return instance, _elapsed(started)

    def _evict_jit(self, keep_key: str) -> None:
        for instance in self.registry.instances():
            if instance.jit and instance.model.key != keep_key:
                self.registry.remove_instance(instance.id)

    async def _acquire_instance(self, target: Target, path: str) -> AsyncIterator[Event | _Loaded]:
        """``Started`` (+ load events when this request loads), then the internal ``_Loaded``."""
        loaded = [target.instance] if target.instance else self.registry.instances_of(target.model.key)
        if loaded:
            yield Started(loaded[0].id)
            yield _Loaded(loaded[0], None)
            return
        pending = self._pending.get(target.model.key)
        if pending is not None:
            yield Started(pending[0])
            yield _Loaded(await asyncio.shield(pending[1]), None)
            return
        async for event in self._jit_load(target, path):
            yield event

    async def _jit_load(self, target: Target, path: str) -> AsyncIterator[Event | _Loaded]:
        model = target.model
        instance_id = self.registry.reserve_id(model.key)
        future: asyncio.Future[Instance] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._pending[model.key] = (instance_id, future)
        started = asyncio.get_running_loop().time()
        try:
            yield Started(instance_id)
            if self.config.auto_evict:
                self._evict_jit(model.key)
            yield LoadStart(instance_id)
            async for progress in self._load_steps(model, path):
                yield LoadProgress(instance_id, progress)
            instance = self.registry.add_instance(
                model, context_length=target.context_length, instance_id=instance_id, jit=True
            )
            future.set_result(instance)
        except BaseException as exc:
            self.registry.release_id(instance_id)
            failure = (
                exc if isinstance(exc, TurnError) else TurnError("load_failed", "Model loading was aborted.")
            )
            future.set_exception(failure)
            raise
        finally:
            self._pending.pop(model.key, None)
        seconds = _elapsed(started)
        yield LoadEnd(instance_id, seconds)
        yield _Loaded(instance, seconds)

    async def ensure_instance(self, target: Target, path: str, ttl: Any = None) -> Instance:
        """The target's instance, JIT-loading it if needed (events discarded)."""
        loaded: _Loaded | None = None
        async for event in self._acquire_instance(target, path):
            if isinstance(event, _Loaded):
                loaded = event
        assert loaded is not None, "no instance acquired"
        return _used(loaded, path, ttl)

    # generation

    async def run(self, plan: TurnPlan) -> AsyncGenerator[Event, None]:
        """The events of one generation; raises ``TurnError`` when it fails after acceptance."""
        loaded: _Loaded | None = None
        async for event in self._acquire_instance(plan.target, plan.route):
            if isinstance(event, _Loaded):
                loaded = event
            else:
                yield event
        assert loaded is not None
        _used(loaded, plan.route, plan.request.get("ttl"))
        async for event in self._generate(plan, loaded.instance, loaded.seconds):
            yield event

    async def _enter(self, gate: SlotGate) -> None:
        stats = self.stats
        if gate.is_full():
            stats.queued += 1
            stats.max_queued = max(stats.max_queued, stats.queued)
            try:
                await gate.acquire()
            finally:
                stats.queued -= 1
        else:
            await gate.acquire()
        stats.active += 1
        stats.generations += 1
        stats.max_concurrency = max(stats.max_concurrency, stats.active)

    def _leave(self, gate: SlotGate) -> None:
        self.stats.active -= 1
        gate.release()

    async def _generate(
        self, plan: TurnPlan, instance: Instance, load_seconds: float | None
    ) -> AsyncIterator[Event]:
        await self._enter(instance.gate)
        try:
            started = asyncio.get_running_loop().time()
            yield PromptStart()
            input_tokens = self._check_prompt(plan, instance)
            half = self.config.service_time / 2
            if half > 0:
                await asyncio.sleep(half)
                yield PromptProgress(0.5)
                await asyncio.sleep(half)
            yield PromptProgress(1.0)
            yield PromptEnd(input_tokens)
            draft = await self._compose(plan, instance)
            ttft = _elapsed(started) + self.config.token_delay
            async for event in self._emit(plan, draft):
                yield event
        finally:
            self._leave(instance.gate)
        yield Finished(self._finish(plan, instance, draft, input_tokens, ttft, load_seconds))

    def _check_prompt(self, plan: TurnPlan, instance: Instance) -> int:
        if plan.system_role_bug:
            raise TurnError("system_role", errors.SYSTEM_ROLE_BUG)
        tokens = count_input_tokens(plan.system_prompt, plan.history, plan.user_text, len(plan.images))
        overflow = plan.fault is not None and plan.fault.kind == "context_overflow"
        if overflow or tokens > instance.context_length:
            raise TurnError("context_overflow", errors.CONTEXT_OVERFLOW)
        return tokens

    def turn_for(self, plan: TurnPlan, instance: Instance) -> FakeTurn:
        return FakeTurn(
            model=instance.model.key,
            instance_id=instance.id,
            route=plan.route,
            user_text=plan.user_text,
            system_prompt=plan.system_prompt,
            history=plan.history,
            max_output_tokens=plan.max_output_tokens,
            json_schema=plan.json_schema,
            reasoning=plan.reasoning if instance.model.supports_reasoning else None,
            images=plan.images,
            request=plan.request,
        )

    async def _reply(self, turn: FakeTurn) -> str:
        with self._script_lock:
            scripted = self._script.popleft() if self._script else None
        if scripted is not None:
            return scripted
        responder = self.config.responder or default_responder
        try:
            reply = responder(turn)
            if inspect.isawaitable(reply):
                reply = await reply
        except Exception as exc:
            raise TurnError("crash", f"Responder failed: {exc!r}") from exc
        return str(reply)

    async def _compose(self, plan: TurnPlan, instance: Instance) -> _Draft:
        turn = self.turn_for(plan, instance)
        text = await self._reply(turn)
        cuts = sorted((text.find(s), s) for s in plan.stop if s and s in text)
        stop_sequence = cuts[0][1] if cuts else None
        if cuts:
            text = text[: cuts[0][0]]
        reasoning = split_pieces(default_reasoning(turn)) if plan.reasons else []
        pieces = split_pieces(text)
        limit = plan.max_output_tokens
        if limit is not None and len(reasoning) + len(pieces) > limit:
            reasoning = reasoning[: max(limit, 0)]
            return _Draft(reasoning, pieces[: max(limit - len(reasoning), 0)], "length")
        return _Draft(reasoning, pieces, "stop", stop_sequence)

    async def _emit(self, plan: TurnPlan, draft: _Draft) -> AsyncIterator[Event]:
        fault = plan.fault.kind if plan.fault else None
        deltas = [Delta("reasoning", p) for p in draft.reasoning] + [Delta("message", p) for p in draft.text]
        crash_at = len(deltas) // 2 if fault == "crash" else -1
        delay = self.config.token_delay
        for index, delta in enumerate(deltas):
            if delay > 0:
                await asyncio.sleep(delay)
            if index == crash_at:
                raise TurnError("crash", errors.CRASH_MESSAGE)
            yield delta
            if fault == "drop":
                yield DropNow()
                return
        if fault == "crash":
            raise TurnError("crash", errors.CRASH_MESSAGE)
        if fault == "drop":
            yield DropNow()

    def _finish(
        self,
        plan: TurnPlan,
        instance: Instance,
        draft: _Draft,
        input_tokens: int,
        ttft: float,
        load_seconds: float | None,
    ) -> TurnResult:
        text = "".join(draft.text)
        response_id = None
        if plan.store:
            response_id = plan.response_id or new_response_id()
            turn = StoredTurn(
                response_id, plan.parent_id, plan.system_prompt, plan.user_text, text, instance.model.key
            )
            self.store.put(turn)
        delay = self.config.token_delay
        return TurnResult(
            instance_id=instance.id,
            model_key=instance.model.key,
            input_tokens=input_tokens,
            reasoning="".join(draft.reasoning),
            reasoning_tokens=len(draft.reasoning),
            text=text,
            text_tokens=len(draft.text),
            finish_reason=draft.finish_reason,
            stop_sequence=draft.stop_sequence,
            time_to_first_token=round(ttft, 3),
            tokens_per_second=round(1 / delay, 3) if delay > 0 else NOMINAL_TOKENS_PER_SECOND,
            load_seconds=load_seconds,
            response_id=response_id,
        )

    def thread(self, previous_id: str) -> tuple[str | None, tuple[FakeMessage, ...]] | None:
        """System prompt and messages of the stored thread ending at ``previous_id`` (None if unknown)."""
        chain = self.store.chain(previous_id)
        if not chain:
            return None
        system = next((t.system_prompt for t in reversed(chain) if t.system_prompt), None)
        history = [
            m for t in chain for m in (FakeMessage("user", t.user_text), FakeMessage("assistant", t.reply))
        ]
        return system, tuple(history)


async def collect(events: AsyncGenerator[Event, None]) -> TurnResult:
    """Run a generation to its end (non-streaming answers)."""
    result: TurnResult | None = None
    async for event in events:
        if isinstance(event, Finished):
            result = event.result
    assert result is not None, "generation ended without a result"
    return result


async def prestart(events: AsyncGenerator[Event, None]) -> tuple[list[Event], AsyncGenerator[Event, None]]:
    """Run a generation up to the end of prompt processing, so errors until then become HTTP errors."""
    head: list[Event] = []
    async for event in events:
        head.append(event)
        if isinstance(event, PromptEnd):
            break
    return head, events


def _elapsed(started: float) -> float:
    return round(max(asyncio.get_running_loop().time() - started, 0.001), 3)


#: Routes whose ``ttl`` sets the idle TTL of a model the request JIT-loads (LM Studio 0.3.9+).
TTL_ROUTES = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/api/v0/")


def _used(loaded: _Loaded, path: str, ttl: Any) -> Instance:
    """Mark the instance used now; a request that loaded it may set its idle TTL (invalid → ignored)."""
    instance = loaded.instance
    instance.last_used = time.monotonic()
    valid = isinstance(ttl, int | float) and not isinstance(ttl, bool) and ttl > 0
    if loaded.seconds is not None and valid and path.startswith(TTL_ROUTES):
        instance.ttl = float(ttl)
    return instance

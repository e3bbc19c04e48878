"""Model loads on offload's behalf: the "loading model…" events, what offload itself loaded,
and what to try when a load runs out of memory.

- **Events.** A ``LoadEvent`` is emitted when a load starts and when it ends (done or failed),
  whichever way it happens: ``offload load``, a keep-warm load, a server-side (JIT) load seen in
  a stream, or an out-of-memory recovery (with a ``note``). ``subscribe(callback)`` hears every
  event of the process (the CLI's "loading model…", a gateway log); ``with listening(callback):``
  hears only the events of the work inside the block (one MCP call's progress). Callbacks run
  in the loading task and must be quick (schedule async work); their exceptions are swallowed.
- **Record.** ``LoadRecord`` remembers, per server, the instance ids offload loaded (a small
  JSON file in the data directory). Only those are unloaded to free memory: offload never
  unloads what the user loaded by hand.
- **Memory.** ``is_out_of_memory`` recognises the server's out-of-memory load failure;
  ``smaller_sibling`` finds the next smaller model of the same family (same publisher and name,
  another size: ``qwen/qwen3-8b`` → ``qwen/qwen3-4b``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from offload.types import ModelInfo

if TYPE_CHECKING:
    from offload.providers.base import ModelManager
    from offload.providers.lmstudio import LMStudioProvider

RECORD_FILE = "loaded-by-offload.json"
Phase = Literal["start", "done", "failed"]


@dataclass(frozen=True, slots=True)
class LoadEvent:
    """One step of a model load: ``start``, then ``done`` or ``failed``.

    ``how`` says what triggered it (``explicit``, ``keep-warm``, ``jit``); ``seconds`` is the
    load time when known; ``note`` says what was done to recover from a memory failure.
    """

    provider: str
    address: str
    model: str
    phase: Phase
    how: str = "explicit"
    seconds: float | None = None
    note: str | None = None

    def describe(self) -> str:
        """One human line: ``loading model qwen/qwen3-4b on lmstudio…``."""
        if self.phase == "start":
            return f"loading model {self.model} on {self.provider}…"
        if self.phase == "failed":
            return f"loading model {self.model} on {self.provider} failed"
        took = f" in {self.seconds:.1f}s" if self.seconds is not None else ""
        return f"loaded model {self.model} on {self.provider}{took}"


Listener = Callable[[LoadEvent], None]
_listeners: list[Listener] = []
_scoped: ContextVar[tuple[Listener, ...]] = ContextVar("offload_load_listeners", default=())


def subscribe(listener: Listener) -> Callable[[], None]:
    """Call ``listener`` for every load event of the process from now on (a gateway log);
    returns the unsubscribe function."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener) if listener in _listeners else None


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Call ``listener`` for the load events of work done inside the block (and the asyncio
    tasks it starts) only — one request's progress, e.g. an MCP tool call's."""
    token = _scoped.set((*_scoped.get(), listener))
    try:
        yield
    finally:
        _scoped.reset(token)


def emit(event: LoadEvent) -> None:
    """Tell every listener about ``event``."""
    for listener in (*_listeners, *_scoped.get()):
        with contextlib.suppress(Exception):
            listener(event)


@contextlib.contextmanager
def announced(provider: str, address: str, model: str, how: str = "explicit") -> Iterator[None]:
    """Emit ``start`` now and ``done``/``failed`` when the block ends."""
    started = time.monotonic()
    emit(LoadEvent(provider, address, model, "start", how))
    try:
        yield
    except BaseException:
        emit(LoadEvent(provider, address, model, "failed", how, time.monotonic() - started))
        raise
    emit(LoadEvent(provider, address, model, "done", how, time.monotonic() - started))


# --- out of memory --------------------------------------------------------------------------

OOM = re.compile(
    r"insufficient (?:system )?(?:resources|memory)|out of memory|not enough memory|failed to allocate"
    r"|cudaMalloc|unable to allocate|exceeds? (?:the )?available (?:memory|vram)",
    re.IGNORECASE,
)
_SIZE = re.compile(r"(?<![a-z0-9])\d+(?:\.\d+)?[bm](?![a-z0-9])|(?<![a-z0-9])e\d+b(?![a-z0-9])", re.I)


def is_out_of_memory(message: str) -> bool:
    """True when a load failure's message says the model did not fit in memory."""
    return bool(OOM.search(message))


def family(key: str) -> str:
    """``qwen/qwen3-8b`` → ``qwen/qwen3-*``: the key with its parameter-size token replaced."""
    return _SIZE.sub("*", key.lower())


def smaller_sibling(models: Sequence[ModelInfo], key: str) -> ModelInfo | None:
    """The largest downloaded model of ``key``'s family that is smaller than ``key``."""
    current = next((m for m in models if m.key == key), None)
    if current is None or not current.size_bytes or "*" not in family(key):
        return None
    kin = [
        m
        for m in models
        if m.key != key
        and m.type == current.type
        and family(m.key) == family(key)
        and m.size_bytes
        and m.size_bytes < current.size_bytes
    ]
    return max(kin, key=lambda m: m.size_bytes or 0, default=None)


# --- what offload loaded ----------------------------------------------------------------------


class LoadRecord:
    """Instance ids offload loaded, per server address, kept in ``path`` (JSON)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, list[str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): [str(i) for i in v] for k, v in data.items() if isinstance(v, list)}

    def _write(self, data: dict[str, list[str]]) -> None:
        with contextlib.suppress(OSError):  # the record is a convenience; never fail a load on it
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
            tmp.replace(self.path)

    def ids(self, address: str) -> list[str]:
        """Instance ids offload loaded on ``address`` (oldest first)."""
        return self._read().get(address, [])

    def add(self, address: str, instance_id: str) -> None:
        data = self._read()
        ids = [i for i in data.get(address, []) if i != instance_id]
        data[address] = [*ids, instance_id]
        self._write(data)

    def discard(self, address: str, instance_ids: Sequence[str]) -> None:
        data = self._read()
        if address in data:
            data[address] = [i for i in data[address] if i not in instance_ids]
            self._write(data)


async def free_memory(
    manager: ModelManager, models: Sequence[ModelInfo], address: str, record: LoadRecord, keep: str
) -> list[str]:
    """Unload the instances offload loaded on ``address`` (never ``keep``'s, never the user's);
    returns their ids. ``models`` is the server's current list."""
    owner: dict[str, str] = {}
    for m in models:
        owner.update({i.id: m.key for i in m.loaded_instances})
    mine = [i for i in record.ids(address) if i in owner and keep not in (owner[i], i)]
    for instance_id in mine:
        await manager.unload(instance_id)
    record.discard(address, [*mine, *(i for i in record.ids(address) if i not in owner)])
    return mine


def _record(provider: LMStudioProvider) -> LoadRecord:
    from offload.settings import data_dir

    return provider.record or LoadRecord(data_dir() / RECORD_FILE)


async def keep_warm(provider: LMStudioProvider, model: str | None) -> None:
    """With ``provider.keep_warm`` set, load a model a call needs that is not loaded yet with LM
    Studio's idle TTL first (announced as ``keep-warm``). Checked again once a TTL has passed,
    since LM Studio may have unloaded it by then."""
    ttl = provider.keep_warm
    now = time.monotonic()
    if not ttl or not model or now - provider.warmed.get(model, -1e18) < ttl:
        return
    provider.warmed[model] = now
    models = await provider.safe_models()
    found = next((m for m in models if model in (m.key, *(i.id for i in m.loaded_instances))), None)
    if found is None or found.loaded:
        return
    with announced(provider.name, provider.base_url, found.key, "keep-warm"):
        result = await provider.load_with_ttl(found.key, ttl, embedding=not found.is_llm)
    _record(provider).add(provider.base_url, result.instance_id)


async def freed_memory(provider: LMStudioProvider, model: str | None) -> bool:
    """After a load ran out of memory during a call: unload the instances offload loaded on
    that server (announced with a note); True when there were some, so the call may retry once."""
    models = await provider.safe_models()
    freed = await free_memory(provider, models, provider.base_url, _record(provider), model or "")
    if freed:
        note = f"out of memory: unloaded {', '.join(freed)} (loaded earlier by offload); trying once more"
        emit(LoadEvent(provider.name, provider.base_url, model or "", "failed", "jit", note=note))
    return bool(freed)

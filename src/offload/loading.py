"""Model loads on offload's behalf: the "loading model…" events, what offload itself loaded,
and what to try when a load runs out of memory.

- **Events.** ``subscribe(callback)`` receives a ``LoadEvent`` when a load starts and when it
  ends (done or failed), whichever way it happens: ``offload load``, a keep-warm load, or a
  server-side (JIT) load seen in a stream. The CLI prints "loading model…" from them; the
  gateway log and MCP progress can do the same. Callbacks run in the loading task and must be
  quick; an exception in one is swallowed so it cannot break the load.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from offload.types import ModelInfo

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


def subscribe(listener: Listener) -> Callable[[], None]:
    """Call ``listener`` for every load event from now on; returns the unsubscribe function."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener) if listener in _listeners else None


def emit(event: LoadEvent) -> None:
    """Tell every listener about ``event``."""
    for listener in list(_listeners):
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

"""Fault injection for the LM Studio fake: parsing fault specs and handing them to matching requests.

Owns ``Fault`` (one queued fault with its remaining count and path filter) and ``FaultQueue``
(thread-safe FIFO; tests queue faults from their own thread while the server runs in another).

Fault kinds (``fail_next(spec)``):

- ``"drop"``: the connection is closed without a response (streaming inference: after the first delta).
- ``"status:N"``: HTTP N with a native error envelope.
- ``"slow:SECONDS"``: wait, then answer normally.
- ``"timeout"``: never answer (until the client disconnects, the server stops, or an hour passes).
- ``"context_overflow"``: the recorded context-overflow error of the route family (inference routes).
- ``"crash"``: the model crashes halfway through generating (inference routes).
- ``"load_failure"``: the next model load (explicit or JIT) fails with an out-of-memory 500.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["drop", "status", "slow", "timeout", "context_overflow", "crash", "load_failure"]
Stage = Literal["request", "load"]

#: Routes that generate text: the only ones ``context_overflow`` and ``crash`` apply to.
INFERENCE_PATHS = frozenset(
    {
        "/api/v1/chat",
        "/v1/chat/completions",
        "/v1/responses",
        "/v1/messages",
        "/v1/completions",
        "/api/v0/chat/completions",
        "/api/v0/completions",
    }
)
#: Routes a fault without a path filter applies to.
DEFAULT_PATHS = INFERENCE_PATHS | {"/api/v1/models/load", "/v1/embeddings", "/api/v0/embeddings"}
_SIMPLE: tuple[FaultKind, ...] = ("drop", "timeout", "context_overflow", "crash", "load_failure")


@dataclass
class Fault:
    """One queued fault: ``remaining`` more requests under ``path`` (prefix) will get it."""

    kind: FaultKind
    status: int = 0
    seconds: float = 0.0
    remaining: int = 1
    path: str | None = None

    def applies(self, path: str, stage: Stage) -> bool:
        if (self.kind == "load_failure") != (stage == "load"):
            return False
        if self.kind in ("context_overflow", "crash") and path not in INFERENCE_PATHS:
            return False
        return path in DEFAULT_PATHS if self.path is None else path.startswith(self.path)


def parse_cli_fault(text: str) -> Fault:
    """The command line's ``KIND[xCOUNT][@PATH]`` (``status:503x3@/api/v1/chat``) → ``Fault``."""
    spec, _, path = text.partition("@")
    count = 1
    head, sep, tail = spec.rpartition("x")
    if sep and tail.isdigit() and head:
        spec, count = head, int(tail)
    return parse_fault(spec, count, path or None)


def parse_fault(spec: str, count: int = 1, path: str | None = None) -> Fault:
    """``"drop"``, ``"status:503"``, ``"slow:1.5"``, … → ``Fault`` (``ValueError`` if unknown)."""
    if count < 1:
        raise ValueError("count must be at least 1")
    name, _, arg = spec.partition(":")
    if name == "status":
        status = int(arg)
        if not 100 <= status <= 599:
            raise ValueError(f"not an HTTP status: {arg!r}")
        return Fault("status", status=status, remaining=count, path=path)
    if name == "slow":
        return Fault("slow", seconds=float(arg), remaining=count, path=path)
    for kind in _SIMPLE:
        if name == kind and not arg:
            return Fault(kind, remaining=count, path=path)
    raise ValueError(
        f"unknown fault {spec!r}; use drop, status:N, slow:SECONDS, timeout, context_overflow, crash "
        "or load_failure"
    )


class FaultQueue:
    """Queued faults, consumed first-in first-out by the requests they match."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def take(self, path: str, stage: Stage) -> Fault | None:
        """The first fault matching ``path`` at ``stage``, counting one use of it."""
        with self._lock:
            for fault in self._faults:
                if fault.applies(path, stage):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

"""Routing: which model answers a call, and what happens when one fails.

One package, one module per concern:

* ``plan``      — the vocabulary (``Candidate``, ``CallOptions``, ``Routed``, ``CallEvent``) and
  the pre-flight plan of a call: local-only, context windows, unsupported APIs (no I/O);
* ``router``    — ``Router``: walks the planned chain, calls providers, reports every attempt;
* ``retry``     — bounded retries with backoff for one candidate;
* ``cooldown``  — candidates that keep failing are skipped for a while;
* ``selection`` — choosing a model when the caller names none (``auto``).

The common names are importable from the package itself (``from offload.routing import
Router, CallOptions``); they are loaded lazily, so importing one submodule stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "CallEvent": "offload.routing.plan",
    "CallOptions": "offload.routing.plan",
    "Candidate": "offload.routing.plan",
    "Cooldowns": "offload.routing.cooldown",
    "Observer": "offload.routing.plan",
    "RetryPolicy": "offload.routing.retry",
    "Routed": "offload.routing.plan",
    "RoutedStream": "offload.routing.plan",
    "Router": "offload.routing.router",
}

__all__ = [
    "CallEvent",
    "CallOptions",
    "Candidate",
    "Cooldowns",
    "Observer",
    "RetryPolicy",
    "Routed",
    "RoutedStream",
    "Router",
]

if TYPE_CHECKING:
    from offload.routing.cooldown import Cooldowns
    from offload.routing.plan import CallEvent, CallOptions, Candidate, Observer, Routed, RoutedStream
    from offload.routing.retry import RetryPolicy
    from offload.routing.router import Router


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'offload.routing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

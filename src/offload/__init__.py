"""offload: move LLM work off paid providers onto local model servers when the local result is good enough.

The public names below are imported lazily, so ``import offload`` stays cheap (no HTTP library, no
engine) until one of them is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "AsyncLMStudio": "offload.client",
    "batch": "offload.batching",
    "LMStudio": "offload.client",
    "ChatRequest": "offload.types",
    "ChatResult": "offload.types",
    "JsonSchema": "offload.types",
    "LoadResult": "offload.types",
    "Message": "offload.types",
    "ModelInfo": "offload.types",
    "OffloadError": "offload.errors",
    "Offloader": "offload.offloader",
    "Routed": "offload.router",
    "TaskResult": "offload.tasks.runner",
    "RetryPolicy": "offload.retry",
    "StreamEnd": "offload.types",
    "TextDelta": "offload.types",
}

__all__ = [
    "AsyncLMStudio",
    "ChatRequest",
    "ChatResult",
    "JsonSchema",
    "LMStudio",
    "LoadResult",
    "Message",
    "ModelInfo",
    "OffloadError",
    "Offloader",
    "RetryPolicy",
    "Routed",
    "StreamEnd",
    "TaskResult",
    "TextDelta",
    "__version__",
    "batch",
]

if TYPE_CHECKING:
    from offload.batching import batch
    from offload.client import AsyncLMStudio, LMStudio
    from offload.errors import OffloadError
    from offload.offloader import Offloader
    from offload.retry import RetryPolicy
    from offload.router import Routed
    from offload.tasks.runner import TaskResult
    from offload.types import (
        ChatRequest,
        ChatResult,
        JsonSchema,
        LoadResult,
        Message,
        ModelInfo,
        StreamEnd,
        TextDelta,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'offload' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

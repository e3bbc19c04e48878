"""offload: move LLM work off paid providers onto local model servers when the local result is good enough.

Everything a user calls, catches or consumes is importable from here: the clients (``Offloader``,
``AsyncLMStudio``/``LMStudio``, ``batch``), the request and result types, the stream event types
(``StreamEvent`` is their union), and the whole error tree (``OffloadError`` and its subclasses).
The names are imported lazily, so ``import offload`` stays cheap (no httpx, no engine) until one
of them is used.
"""

import importlib as _importlib
import typing as _typing

__version__ = "0.1.0"

_EXPORTS: dict[str, tuple[str, ...]] = {
    "offload.client": (
        "AsyncLMStudio",
        "LMStudio",
    ),
    "offload.batching": ("batch",),
    "offload.batching.output": ("OutputFailed",),
    "offload.batching.rows": ("ItemResult",),
    "offload.errors": (
        "OffloadError",
        "ConfigError",
        "InputError",
        "ProviderError",
        "Unreachable",
        "Timeout",
        "EngineUnavailable",
        "AuthError",
        "BillingError",
        "ModelNotFound",
        "ModelNotLoaded",
        "ContextOverflow",
        "ResponseNotFound",
        "InvalidRequest",
        "RateLimited",
        "ServerError",
        "OutOfMemory",
        "BadResponse",
        "AllCandidatesFailed",
        "LocalOnlyRefused",
        "QualityGateFailed",
        "UnloadIncomplete",
        "Attempt",
    ),
    "offload.offloader": ("Offloader",),
    "offload.routing.plan": (
        "Routed",
        "RoutedStream",
    ),
    "offload.routing.retry": ("RetryPolicy",),
    "offload.tasks.runner": ("TaskResult",),
    "offload.types": (
        "ChatRequest",
        "ChatResult",
        "JsonSchema",
        "LoadResult",
        "LoadedInstance",
        "Message",
        "ModelInfo",
        "Usage",
        "StreamEvent",
        "TextDelta",
        "ReasoningDelta",
        "ToolCall",
        "ToolCallDelta",
        "Progress",
        "StreamEnd",
    ),
}
_MODULE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "AllCandidatesFailed",
    "AsyncLMStudio",
    "Attempt",
    "AuthError",
    "BadResponse",
    "BillingError",
    "ChatRequest",
    "ChatResult",
    "ConfigError",
    "ContextOverflow",
    "EngineUnavailable",
    "InputError",
    "InvalidRequest",
    "ItemResult",
    "JsonSchema",
    "LMStudio",
    "LoadResult",
    "LoadedInstance",
    "LocalOnlyRefused",
    "Message",
    "ModelInfo",
    "ModelNotFound",
    "ModelNotLoaded",
    "OffloadError",
    "Offloader",
    "OutOfMemory",
    "OutputFailed",
    "Progress",
    "ProviderError",
    "QualityGateFailed",
    "RateLimited",
    "ReasoningDelta",
    "ResponseNotFound",
    "RetryPolicy",
    "Routed",
    "RoutedStream",
    "ServerError",
    "StreamEnd",
    "StreamEvent",
    "TaskResult",
    "TextDelta",
    "Timeout",
    "ToolCall",
    "ToolCallDelta",
    "UnloadIncomplete",
    "Unreachable",
    "Usage",
    "__version__",
    "batch",
]

if _typing.TYPE_CHECKING:
    from offload.batching import batch
    from offload.batching.output import OutputFailed
    from offload.batching.rows import ItemResult
    from offload.client import AsyncLMStudio, LMStudio
    from offload.errors import (
        AllCandidatesFailed,
        Attempt,
        AuthError,
        BadResponse,
        BillingError,
        ConfigError,
        ContextOverflow,
        EngineUnavailable,
        InputError,
        InvalidRequest,
        LocalOnlyRefused,
        ModelNotFound,
        ModelNotLoaded,
        OffloadError,
        OutOfMemory,
        ProviderError,
        QualityGateFailed,
        RateLimited,
        ResponseNotFound,
        ServerError,
        Timeout,
        UnloadIncomplete,
        Unreachable,
    )
    from offload.offloader import Offloader
    from offload.routing.plan import Routed, RoutedStream
    from offload.routing.retry import RetryPolicy
    from offload.tasks.runner import TaskResult
    from offload.types import (
        ChatRequest,
        ChatResult,
        JsonSchema,
        LoadedInstance,
        LoadResult,
        Message,
        ModelInfo,
        Progress,
        ReasoningDelta,
        StreamEnd,
        StreamEvent,
        TextDelta,
        ToolCall,
        ToolCallDelta,
        Usage,
    )


def __getattr__(name: str) -> _typing.Any:
    module = _MODULE.get(name)
    if module is None:
        raise AttributeError(f"module 'offload' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)

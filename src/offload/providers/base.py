"""The provider contract every backend implements (LM Studio, OpenAI/Anthropic-style APIs, embedded).

A provider is one configured model server. It lists models, answers chats (whole or streamed)
and, when the server manages model memory, loads and unloads. Providers raise only
``offload.errors.ProviderError`` subclasses and never retry on their own: retry and failover
policy belongs to the caller (``offload.routing.retry`` / ``offload.routing.router``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from offload.types import ChatRequest, ChatResult, LoadResult, ModelInfo, StreamEvent


@runtime_checkable
class Provider(Protocol):
    """A model server offload can send chats to."""

    name: str
    """The provider id (``lmstudio``, ``embedded``, ``anthropic`` …)."""

    local: bool
    """True when calls stay on this machine or private network."""

    @property
    def address(self) -> str:
        """Where the provider lives, for messages (a base URL, or ``in-process``)."""
        ...

    async def models(self) -> list[ModelInfo]:
        """The models this provider can serve, with loaded state where known."""
        ...

    async def chat(self, request: ChatRequest) -> ChatResult:
        """Answer one request. ``request.model`` is a provider-local model id."""
        ...

    def stream_chat(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Answer one request as events; the last event is ``StreamEnd``."""
        ...

    async def aclose(self) -> None:
        """Release connections and in-process models."""
        ...


@runtime_checkable
class ModelManager(Protocol):
    """A provider that can load and unload models on request."""

    async def load(
        self,
        key: str,
        *,
        context_length: int | None = None,
        flash_attention: bool | None = None,
        eval_batch_size: int | None = None,
    ) -> LoadResult:
        """Load ``key`` and return the new instance."""
        ...

    async def unload(self, instance_id: str) -> None:
        """Unload one instance by its id."""
        ...

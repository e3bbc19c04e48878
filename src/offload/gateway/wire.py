"""The three client protocols behind one face: read a body, render an answer, stream, shape an error.

``for_step`` decides what a translated step is sent: the request with its tools when the
provider speaks OpenAI-style chat (LM Studio, llama.cpp, vLLM…), else tools flattened to text.

Also maps offload's errors onto HTTP statuses, so each protocol's error keeps its meaning.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from typing import Protocol as Interface

from offload.errors import (
    AllCandidatesFailed,
    ContextOverflow,
    InputError,
    InvalidRequest,
    LocalOnlyRefused,
    OffloadError,
    ProviderError,
    RateLimited,
    Timeout,
    Unreachable,
)
from offload.gateway.scenarios import Protocol
from offload.protocols import anthropic_server, openai_chat_server, responses_server
from offload.protocols.incoming import Incoming, flatten_tools
from offload.redact import text as mask_secrets
from offload.types import ChatRequest, ChatResult, ToolCallDelta


class Writer(Interface):
    """What every protocol's stream writer offers."""

    def start(self) -> bytes: ...
    def text(self, text: str) -> bytes: ...
    def tool(self, piece: ToolCallDelta) -> bytes: ...
    def end(self, result: ChatResult) -> bytes: ...
    def error(self, status: int, message: str) -> bytes: ...


def read(protocol: Protocol, body: Mapping[str, Any]) -> Incoming:
    """The body as an ``Incoming`` (raises ``InputError`` naming a bad field)."""
    if protocol == "anthropic":
        return anthropic_server.read(body)
    if protocol == "chat":
        return openai_chat_server.read(body)
    return responses_server.read(body)


def render(protocol: Protocol, result: ChatResult, incoming: Incoming) -> dict[str, Any]:
    """The whole (non-streamed) answer, named after the model the client asked for."""
    if protocol == "anthropic":
        return anthropic_server.render(result, incoming.model)
    if protocol == "chat":
        return openai_chat_server.render(result, incoming.model)
    return responses_server.SseWriter(incoming.model, incoming.request).render(result)


def writer(protocol: Protocol, incoming: Incoming) -> Writer:
    """A stream writer for one answer."""
    if protocol == "anthropic":
        return anthropic_server.SseWriter(incoming.model)
    if protocol == "chat":
        return openai_chat_server.SseWriter(incoming.model, incoming.include_usage)
    return responses_server.SseWriter(incoming.model, incoming.request)


TOOL_APIS = ("lmstudio", "openai-completions")


def for_step(request: ChatRequest, api: str) -> ChatRequest:
    """``request`` as ``api``'s provider can take it (tools kept only where they can be sent)."""
    return request if api in TOOL_APIS else flatten_tools(request)


def error_bytes(protocol: Protocol | None, status: int, message: str) -> bytes:
    """The JSON error body of a protocol (``None``: the OpenAI shape)."""
    text = mask_secrets(message)
    body = (
        anthropic_server.error_body(status, text)
        if protocol == "anthropic"
        else openai_chat_server.error_body(status, text)
    )
    return json.dumps(body, ensure_ascii=False).encode()


def status_of(exc: OffloadError) -> int:
    """The HTTP status that keeps an error's meaning for the client."""
    if isinstance(exc, ProviderError) and exc.status and 400 <= exc.status < 600 and exc.status != 401:
        return exc.status
    table: tuple[tuple[type[OffloadError], int], ...] = (
        (InputError, 400),
        (InvalidRequest, 400),
        (ContextOverflow, 400),
        (LocalOnlyRefused, 403),
        (RateLimited, 429),
        (Timeout, 504),
        (Unreachable, 502),
        (AllCandidatesFailed, 502),
    )
    for kind, status in table:
        if isinstance(exc, kind):
            return status
    return 502


def kind_of(exc: OffloadError) -> str:
    """The ledger's outcome word for an error."""
    return exc.kind

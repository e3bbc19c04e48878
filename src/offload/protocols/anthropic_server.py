"""Anthropic Messages, server side: a client's ``/v1/messages`` body in, our answer out (no I/O).

The reverse of ``anthropic_messages``: ``read`` turns a request body into an ``Incoming``
(system blocks joined, Claude Code's attribution line dropped, base64/URL images kept, thinking
blocks dropped, tool calls and results in the history kept as text). ``render`` and
``SseWriter`` produce the message JSON and the event stream in the order clients rely on:
``message_start`` → ``content_block_start`` → ``content_block_delta``* → ``content_block_stop``
→ ``message_delta`` → ``message_stop``; a failure after the first byte is an ``error`` event.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from offload.protocols.incoming import (
    Incoming,
    field_error,
    optional_float,
    optional_int,
    require_list,
    require_model,
    strip_attribution,
    tool_call_text,
    tool_result_text,
)
from offload.types import ChatRequest, ChatResult, Message, Usage

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "refusal": "refusal"}
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "api_error",
    529: "overloaded_error",
}


def _system(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return strip_attribution(value)
    if not isinstance(value, list):
        raise field_error("system", "a string or a list of text blocks", value)
    texts = [str(b.get("text", "")) for b in value if isinstance(b, Mapping) and b.get("type") == "text"]
    if texts:
        texts[0] = strip_attribution(texts[0])
    return "\n\n".join(t for t in texts if t)


def _image(block: Mapping[str, Any]) -> str | None:
    source = block.get("source")
    if not isinstance(source, Mapping):
        return None
    if source.get("type") == "base64":
        return f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    url = source.get("url")
    return url if isinstance(url, str) else None


def _message(raw: Any, index: int) -> Message | None:
    if not isinstance(raw, Mapping):
        raise field_error(f"messages[{index}]", "an object", raw)
    role = raw.get("role")
    if role not in ("user", "assistant"):
        raise field_error(f"messages[{index}].role", '"user" or "assistant"', role)
    content = raw.get("content")
    if isinstance(content, str):
        return Message(role, content)
    if not isinstance(content, list):
        raise field_error(f"messages[{index}].content", "a string or a list of blocks", content)
    texts: list[str] = []
    images: list[str] = []
    for block in content:
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "image" and (url := _image(block)):
            images.append(url)
        elif kind == "tool_use":
            texts.append(tool_call_text(str(block.get("name", "")), block.get("input", {})))
        elif kind == "tool_result":
            texts.append(tool_result_text(block.get("content", "")))
    if not texts and not images:
        return None
    return Message(role, "\n\n".join(texts), tuple(images))


def read(body: Mapping[str, Any]) -> Incoming:
    """Read a ``/v1/messages`` body; a malformed field raises ``InputError`` naming it."""
    model = require_model(body)
    raw_messages = require_list(body, "messages")
    messages = [m for i, raw in enumerate(raw_messages) if (m := _message(raw, i)) is not None]
    system = _system(body.get("system"))
    if system:
        messages.insert(0, Message("system", system))
    thinking = body.get("thinking")
    tools = body.get("tools")
    request = ChatRequest(
        messages=tuple(messages),
        max_output_tokens=optional_int(body, "max_tokens"),
        temperature=optional_float(body, "temperature"),
        top_p=optional_float(body, "top_p"),
        store=False,
    )
    return Incoming(
        request=request,
        model=model,
        stream=body.get("stream") is True,
        has_tools=isinstance(tools, list) and bool(tools),
        thinking=isinstance(thinking, Mapping) and thinking.get("type") in ("enabled", "adaptive"),
    )


def message_id() -> str:
    """A fresh ``msg_…`` id."""
    return f"msg_{uuid.uuid4().hex[:24]}"


def _usage(usage: Usage) -> dict[str, int]:
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}


def render(result: ChatResult, model: str) -> dict[str, Any]:
    """The non-streamed ``message`` object for ``result`` (named after the model asked for)."""
    return {
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": result.content}],
        "stop_reason": STOP_REASONS.get(result.finish_reason or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": _usage(result.usage),
    }


def error_body(status: int, message: str) -> dict[str, Any]:
    """Anthropic's error envelope for ``status``."""
    kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def _event(name: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'), ensure_ascii=False)}\n\n".encode()


class SseWriter:
    """The event stream of one answer, produced piece by piece."""

    def __init__(self, model: str, input_tokens: int = 0) -> None:
        self.model = model
        self.input_tokens = input_tokens

    def start(self) -> bytes:
        """``message_start`` and the text block's ``content_block_start``."""
        message: dict[str, Any] = {
            "id": message_id(),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": 0},
        }
        return _event("message_start", {"type": "message_start", "message": message}) + _event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        )

    def text(self, text: str) -> bytes:
        """One ``text_delta``."""
        delta = {"type": "text_delta", "text": text}
        return _event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})

    def end(self, result: ChatResult) -> bytes:
        """``content_block_stop``, ``message_delta`` (stop reason, usage) and ``message_stop``."""
        stop = STOP_REASONS.get(result.finish_reason or "stop", "end_turn")
        return (
            _event("content_block_stop", {"type": "content_block_stop", "index": 0})
            + _event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": _usage(result.usage),
                },
            )
            + _event("message_stop", {"type": "message_stop"})
        )

    def error(self, status: int, message: str) -> bytes:
        """An ``error`` event: the stream failed after it began."""
        return _event("error", error_body(status, message))

"""Anthropic Messages, server side: a client's ``/v1/messages`` body in, our answer out (no I/O).

The reverse of ``anthropic_messages``: ``read`` turns a request body into an ``Incoming``
(system blocks joined, Claude Code's attribution line dropped, base64/URL images kept, thinking
blocks dropped, tools, tool calls and tool results carried as core types). ``render`` and
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
    json_arguments,
    optional_float,
    optional_int,
    require_list,
    require_model,
    strip_attribution,
)
from offload.types import ChatRequest, ChatResult, Message, ToolCall, ToolCallDelta, ToolSpec, Usage

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


def _messages(raw: Any, index: int) -> list[Message]:
    """One client message as core turns: tool results become ``tool`` turns ahead of the rest."""
    if not isinstance(raw, Mapping):
        raise field_error(f"messages[{index}]", "an object", raw)
    role = raw.get("role")
    if role not in ("user", "assistant"):
        raise field_error(f"messages[{index}].role", '"user" or "assistant"', role)
    content = raw.get("content")
    if isinstance(content, str):
        return [Message(role, content)]
    if not isinstance(content, list):
        raise field_error(f"messages[{index}].content", "a string or a list of blocks", content)
    texts: list[str] = []
    images: list[str] = []
    calls: list[ToolCall] = []
    results: list[Message] = []
    for block in content:
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "image" and (url := _image(block)):
            images.append(url)
        elif kind == "tool_use":
            calls.append(
                ToolCall(
                    str(block.get("id", "")), str(block.get("name", "")), json_arguments(block.get("input"))
                )
            )
        elif kind == "tool_result":
            results.append(
                Message(
                    "tool",
                    _result_text(block.get("content", "")),
                    tool_call_id=str(block.get("tool_use_id", "")),
                )
            )
    out = results
    if texts or images or calls:
        out.append(Message(role, "\n\n".join(texts), tuple(images), tuple(calls)))
    return out


def _result_text(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping) and "text" in p)
    return content if isinstance(content, str) else json.dumps(content)


def _tools(value: Any) -> tuple[ToolSpec, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(
        ToolSpec(str(t["name"]), str(t.get("description") or ""), dict(t["input_schema"]))
        for t in value
        if isinstance(t, Mapping)
        and isinstance(t.get("name"), str)
        and isinstance(t.get("input_schema"), Mapping)
    )


def _tool_choice(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return None
    kind = value.get("type")
    if kind == "tool" and isinstance(value.get("name"), str):
        return str(value["name"])
    return {"auto": "auto", "any": "required", "none": "none"}.get(str(kind))


def read(body: Mapping[str, Any]) -> Incoming:
    """Read a ``/v1/messages`` body; a malformed field raises ``InputError`` naming it."""
    model = require_model(body)
    messages = [m for i, raw in enumerate(require_list(body, "messages")) for m in _messages(raw, i)]
    system = _system(body.get("system"))
    if system:
        messages.insert(0, Message("system", system))
    thinking = body.get("thinking")
    tools = _tools(body.get("tools"))
    request = ChatRequest(
        messages=tuple(messages),
        max_output_tokens=optional_int(body, "max_tokens"),
        temperature=optional_float(body, "temperature"),
        top_p=optional_float(body, "top_p"),
        store=False,
        tools=tools,
        tool_choice=_tool_choice(body.get("tool_choice")) if tools else None,
    )
    return Incoming(
        request=request,
        model=model,
        stream=body.get("stream") is True,
        has_tools=bool(tools),
        thinking=isinstance(thinking, Mapping) and thinking.get("type") in ("enabled", "adaptive"),
    )


def message_id() -> str:
    """A fresh ``msg_…`` id."""
    return f"msg_{uuid.uuid4().hex[:24]}"


def _usage(usage: Usage) -> dict[str, int]:
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}


def _stop(result: ChatResult) -> str:
    if result.tool_calls:
        return "tool_use"
    return STOP_REASONS.get(result.finish_reason or "stop", "end_turn")


def _input(arguments: str) -> Any:
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        return {"input": arguments}
    return value if isinstance(value, dict) else {"value": value}


def render(result: ChatResult, model: str) -> dict[str, Any]:
    """The non-streamed ``message`` object for ``result`` (named after the model asked for)."""
    content: list[dict[str, Any]] = [{"type": "text", "text": result.content}] if result.content else []
    content += [
        {"type": "tool_use", "id": c.id, "name": c.name, "input": _input(c.arguments)}
        for c in result.tool_calls
    ]
    return {
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content or [{"type": "text", "text": ""}],
        "stop_reason": _stop(result),
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
    """The event stream of one answer, produced piece by piece (blocks opened as content arrives)."""

    def __init__(self, model: str, input_tokens: int = 0) -> None:
        self.model = model
        self.input_tokens = input_tokens
        self._block = -1
        self._open: str | None = None
        self._calls: dict[int, int] = {}

    def start(self) -> bytes:
        """``message_start``."""
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
        return _event("message_start", {"type": "message_start", "message": message})

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return _event("content_block_stop", {"type": "content_block_stop", "index": self._block})

    def _begin(self, kind: str, block: Mapping[str, Any]) -> bytes:
        out = self._close()
        self._block += 1
        self._open = kind
        start = {"type": "content_block_start", "index": self._block, "content_block": dict(block)}
        return out + _event("content_block_start", start)

    def _delta(self, delta: Mapping[str, Any]) -> bytes:
        body = {"type": "content_block_delta", "index": self._block, "delta": dict(delta)}
        return _event("content_block_delta", body)

    def text(self, text: str) -> bytes:
        """One ``text_delta`` (opening a text block first when needed)."""
        out = b"" if self._open == "text" else self._begin("text", {"type": "text", "text": ""})
        return out + self._delta({"type": "text_delta", "text": text})

    def tool(self, piece: ToolCallDelta) -> bytes:
        """A piece of a tool call: a new ``tool_use`` block, then ``input_json_delta`` fragments."""
        out = b""
        if piece.index not in self._calls:
            block = {
                "type": "tool_use",
                "id": piece.id or f"toolu_{uuid.uuid4().hex[:24]}",
                "name": piece.name or "",
                "input": {},
            }
            out = self._begin("tool", block)
            self._calls[piece.index] = self._block
        if piece.arguments:
            out += self._delta({"type": "input_json_delta", "partial_json": piece.arguments})
        return out

    def end(self, result: ChatResult) -> bytes:
        """The last block's stop, ``message_delta`` (stop reason, usage) and ``message_stop``."""
        out = (
            self._close()
            if self._block >= 0
            else self._begin("text", {"type": "text", "text": ""}) + self._close()
        )
        return (
            out
            + _event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": _stop(result), "stop_sequence": None},
                    "usage": _usage(result.usage),
                },
            )
            + _event("message_stop", {"type": "message_stop"})
        )

    def error(self, status: int, message: str) -> bytes:
        """An ``error`` event: the stream failed after it began."""
        return _event("error", error_body(status, message))

"""OpenAI Chat Completions, server side: a client's ``/v1/chat/completions`` body in, our answer out.

``read`` turns the body into an ``Incoming`` (``system``/``developer`` turns become the system
prompt, ``image_url`` parts are kept, tools, tool calls and ``tool`` turns become core types).
``render`` builds a ``chat.completion``; ``SseWriter`` the ``chat.completion.chunk`` stream: a
role chunk, content chunks, tool-call pieces (``index`` always; ``id``, type and name on a call's
first piece), a chunk with ``finish_reason``, a usage chunk when ``stream_options.include_usage``
asked for one, then ``[DONE]``. A failure after the first byte is a ``data: {"error": …}`` event.
"""

from __future__ import annotations

import json
import time
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
)
from offload.types import ChatRequest, ChatResult, Message, Role, ToolCall, ToolCallDelta, ToolSpec, Usage

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}
ROLES: dict[str, Role] = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def _text(content: Any, path: str) -> tuple[str, tuple[str, ...]]:
    if content is None:
        return "", ()
    if isinstance(content, str):
        return content, ()
    if not isinstance(content, list):
        raise field_error(path, "a string or a list of parts", content)
    texts: list[str] = []
    images: list[str] = []
    for part in content:
        if not isinstance(part, Mapping):
            continue
        if part.get("type") in ("text", "input_text", "output_text"):
            texts.append(str(part.get("text", "")))
        elif part.get("type") == "image_url":
            url = part.get("image_url")
            url = url.get("url") if isinstance(url, Mapping) else url
            if isinstance(url, str):
                images.append(url)
    return "\n\n".join(texts), tuple(images)


def _message(raw: Any, index: int) -> Message | None:
    path = f"messages[{index}]"
    if not isinstance(raw, Mapping):
        raise field_error(path, "an object", raw)
    role = raw.get("role")
    text, images = _text(raw.get("content"), f"{path}.content")
    if role == "tool":
        return Message("tool", text, tool_call_id=str(raw.get("tool_call_id") or ""))
    if role not in ROLES:
        raise field_error(f"{path}.role", '"system", "developer", "user", "assistant" or "tool"', role)
    calls = tuple(
        ToolCall(
            str(c.get("id") or f"call_{i}"), str(fn.get("name") or ""), json_arguments(fn.get("arguments"))
        )
        for i, c in enumerate(raw.get("tool_calls") or [])
        if isinstance(c, Mapping) and isinstance(fn := c.get("function"), Mapping)
    )
    if not text and not images and not calls:
        return None
    return Message(ROLES[role], text, images, calls)


def _tools(value: Any) -> tuple[ToolSpec, ...]:
    out: list[ToolSpec] = []
    for tool in value if isinstance(value, list) else []:
        fn = tool.get("function") if isinstance(tool, Mapping) else None
        if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
            params = fn.get("parameters")
            out.append(
                ToolSpec(
                    fn["name"],
                    str(fn.get("description") or ""),
                    dict(params) if isinstance(params, Mapping) else {},
                )
            )
    return tuple(out)


def tool_choice_of(value: Any) -> str | None:
    """``tool_choice`` of either OpenAI API as a core word or tool name."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        fn = value.get("function")
        name = fn.get("name") if isinstance(fn, Mapping) else value.get("name")
        return str(name) if isinstance(name, str) else None
    return None


def read(body: Mapping[str, Any]) -> Incoming:
    """Read a ``/v1/chat/completions`` body; a malformed field raises ``InputError`` naming it."""
    model = require_model(body)
    messages = [m for i, raw in enumerate(require_list(body, "messages")) if (m := _message(raw, i))]
    tools = _tools(body.get("tools"))
    options = body.get("stream_options")
    effort = body.get("reasoning_effort")
    request = ChatRequest(
        messages=tuple(messages),
        max_output_tokens=optional_int(body, "max_completion_tokens", "max_tokens"),
        temperature=optional_float(body, "temperature"),
        top_p=optional_float(body, "top_p"),
        store=False,
        tools=tools,
        tool_choice=tool_choice_of(body.get("tool_choice")) if tools else None,
    )
    return Incoming(
        request=request,
        model=model,
        stream=body.get("stream") is True,
        has_tools=bool(tools),
        thinking=isinstance(effort, str) and effort not in ("none", "minimal"),
        include_usage=isinstance(options, Mapping) and options.get("include_usage") is True,
    )


def _usage(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }


def _finish(result: ChatResult) -> str:
    if result.tool_calls:
        return "tool_calls"
    reason = result.finish_reason or "stop"
    return reason if reason in ("stop", "length", "tool_calls", "content_filter") else "stop"


def render(result: ChatResult, model: str) -> dict[str, Any]:
    """The ``chat.completion`` object for ``result``."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": _message_out(result),
                "finish_reason": _finish(result),
            }
        ],
        "usage": _usage(result.usage),
    }


def _message_out(result: ChatResult) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": result.content or None}
    if result.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in result.tool_calls
        ]
    else:
        message["content"] = result.content
    return message


def error_body(status: int, message: str) -> dict[str, Any]:
    """OpenAI's error envelope for ``status``."""
    kind = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _data(value: Mapping[str, Any]) -> bytes:
    return f"data: {json.dumps(value, separators=(',', ':'), ensure_ascii=False)}\n\n".encode()


class SseWriter:
    """The chunk stream of one answer, produced piece by piece."""

    def __init__(self, model: str, include_usage: bool = False) -> None:
        self.model = model
        self.include_usage = include_usage
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self._seen: set[int] = set()

    def _chunk(self, delta: Mapping[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": dict(delta), "finish_reason": finish}],
        }

    def start(self) -> bytes:
        """The first chunk: the assistant role."""
        return _data(self._chunk({"role": "assistant", "content": ""}))

    def text(self, text: str) -> bytes:
        """One content chunk."""
        return _data(self._chunk({"content": text}))

    def tool(self, piece: ToolCallDelta) -> bytes:
        """A piece of a tool call: ``index`` always, ``id``/``type``/name on the call's first piece."""
        call: dict[str, Any] = {"index": piece.index, "function": {"arguments": piece.arguments}}
        if piece.index not in self._seen:
            self._seen.add(piece.index)
            call["id"] = piece.id or f"call_{uuid.uuid4().hex[:24]}"
            call["type"] = "function"
            call["function"]["name"] = piece.name or ""
        return _data(self._chunk({"tool_calls": [call]}))

    def end(self, result: ChatResult) -> bytes:
        """The finish chunk, the usage chunk when asked for, and ``[DONE]``."""
        out = _data(self._chunk({}, _finish(result)))
        if self.include_usage:
            usage = {**self._chunk({}), "choices": [], "usage": _usage(result.usage)}
            out += _data(usage)
        return out + b"data: [DONE]\n\n"

    def error(self, status: int, message: str) -> bytes:
        """An error event: the stream failed after it began (no ``[DONE]`` follows)."""
        return _data(error_body(status, message))

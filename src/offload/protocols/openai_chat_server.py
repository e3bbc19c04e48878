"""OpenAI Chat Completions, server side: a client's ``/v1/chat/completions`` body in, our answer out.

``read`` turns the body into an ``Incoming`` (``system``/``developer`` turns become the system
prompt, ``image_url`` parts are kept, tool calls and ``tool`` turns stay as text). ``render``
builds a ``chat.completion``; ``SseWriter`` the ``chat.completion.chunk`` stream: a role chunk,
content chunks, a chunk with ``finish_reason``, a usage chunk when ``stream_options.include_usage``
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
    optional_float,
    optional_int,
    require_list,
    require_model,
    tool_call_text,
    tool_result_text,
)
from offload.types import ChatRequest, ChatResult, Message, Role, Usage

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
        return Message("user", tool_result_text(text))
    if role not in ROLES:
        raise field_error(f"{path}.role", '"system", "developer", "user", "assistant" or "tool"', role)
    calls = raw.get("tool_calls")
    if isinstance(calls, list):
        for call in calls:
            fn = call.get("function", {}) if isinstance(call, Mapping) else {}
            if isinstance(fn, Mapping):
                text = "\n\n".join(
                    t for t in (text, tool_call_text(str(fn.get("name")), fn.get("arguments"))) if t
                )
    if not text and not images:
        return None
    return Message(ROLES[role], text, images)


def read(body: Mapping[str, Any]) -> Incoming:
    """Read a ``/v1/chat/completions`` body; a malformed field raises ``InputError`` naming it."""
    model = require_model(body)
    messages = [m for i, raw in enumerate(require_list(body, "messages")) if (m := _message(raw, i))]
    tools = body.get("tools")
    options = body.get("stream_options")
    effort = body.get("reasoning_effort")
    request = ChatRequest(
        messages=tuple(messages),
        max_output_tokens=optional_int(body, "max_completion_tokens", "max_tokens"),
        temperature=optional_float(body, "temperature"),
        top_p=optional_float(body, "top_p"),
        store=False,
    )
    return Incoming(
        request=request,
        model=model,
        stream=body.get("stream") is True,
        has_tools=isinstance(tools, list) and bool(tools),
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
                "message": {"role": "assistant", "content": result.content},
                "finish_reason": _finish(result),
            }
        ],
        "usage": _usage(result.usage),
    }


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

"""OpenAI Responses, server side: a client's ``/v1/responses`` body in, our answer out (no I/O).

``read`` turns ``instructions`` + ``input`` (a string or items: messages, function and custom
tool calls and their outputs, reasoning items dropped) into an ``Incoming``. ``render`` builds
the ``response`` object; ``SseWriter`` the event stream Codex reads: ``response.created``,
``response.output_item.added``, ``response.content_part.added``, ``response.output_text.delta``*,
the matching ``.done`` events, ``response.output_item.done`` and ``response.completed`` (with
the response id and usage). A failure after the first byte is ``response.failed``.
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
    require_model,
    tool_call_text,
    tool_result_text,
)
from offload.protocols.openai_chat_server import ROLES
from offload.protocols.openai_chat_server import error_body as chat_error_body
from offload.types import ChatRequest, ChatResult, Message, Usage

FAILURE_CODES = {429: "rate_limit_exceeded", 400: "invalid_prompt", 413: "context_length_exceeded"}


def _parts(content: Any, path: str) -> tuple[str, tuple[str, ...]]:
    if isinstance(content, str):
        return content, ()
    if not isinstance(content, list):
        raise field_error(path, "a string or a list of parts", content)
    texts: list[str] = []
    images: list[str] = []
    for part in content:
        if not isinstance(part, Mapping):
            continue
        if part.get("type") in ("input_text", "output_text", "text"):
            texts.append(str(part.get("text", "")))
        elif part.get("type") == "input_image" and isinstance(part.get("image_url"), str):
            images.append(part["image_url"])
    return "\n\n".join(texts), tuple(images)


def _item(raw: Any, index: int) -> Message | None:
    path = f"input[{index}]"
    if not isinstance(raw, Mapping):
        raise field_error(path, "an object", raw)
    kind = raw.get("type", "message")
    if kind in ("function_call", "custom_tool_call"):
        args = raw.get("arguments") if kind == "function_call" else raw.get("input")
        return Message("assistant", tool_call_text(str(raw.get("name", "")), args))
    if kind in ("function_call_output", "custom_tool_call_output"):
        return Message("user", tool_result_text(raw.get("output", "")))
    if kind != "message":
        return None  # reasoning and other item kinds carry nothing a local model needs
    role = raw.get("role")
    if role not in ROLES:
        raise field_error(f"{path}.role", '"system", "developer", "user" or "assistant"', role)
    text, images = _parts(raw.get("content", ""), f"{path}.content")
    return Message(ROLES[role], text, images) if text or images else None


def read(body: Mapping[str, Any]) -> Incoming:
    """Read a ``/v1/responses`` body; a malformed field raises ``InputError`` naming it."""
    model = require_model(body)
    raw = body.get("input")
    messages: list[Message] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append(Message("system", instructions))
    if isinstance(raw, str):
        messages.append(Message("user", raw))
    elif isinstance(raw, list):
        messages += [m for i, item in enumerate(raw) if (m := _item(item, i)) is not None]
    else:
        raise field_error("input", "a string or a list of items", raw)
    reasoning = body.get("reasoning")
    tools = body.get("tools")
    request = ChatRequest(
        messages=tuple(messages),
        max_output_tokens=optional_int(body, "max_output_tokens"),
        temperature=optional_float(body, "temperature"),
        top_p=optional_float(body, "top_p"),
        store=False,
    )
    return Incoming(
        request=request,
        model=model,
        stream=body.get("stream") is True,
        has_tools=isinstance(tools, list) and bool(tools),
        thinking=isinstance(reasoning, Mapping) and reasoning.get("effort") not in (None, "none", "minimal"),
    )


def _usage(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def error_body(status: int, message: str) -> dict[str, Any]:
    """The error envelope (the Responses API shares Chat Completions')."""
    return chat_error_body(status, message)


def _event(name: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'), ensure_ascii=False)}\n\n".encode()


class SseWriter:
    """One response: ``render`` for a whole answer, or its event stream piece by piece."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.id = f"resp_{uuid.uuid4().hex}"
        self.item_id = f"msg_{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.seq = 0
        self.text_so_far: list[str] = []

    def _response(self, status: str, output: list[dict[str, Any]], usage: Usage | None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "model": self.model,
            "output": output,
            "usage": _usage(usage) if usage is not None else None,
            "error": None,
            "incomplete_details": None,
            "parallel_tool_calls": False,
            "tool_choice": "auto",
            "tools": [],
        }

    def _message(self, text: str, status: str) -> dict[str, Any]:
        content = [{"type": "output_text", "text": text, "annotations": []}] if status == "completed" else []
        return {
            "type": "message",
            "id": self.item_id,
            "status": status,
            "role": "assistant",
            "content": content,
        }

    def render(self, result: ChatResult) -> dict[str, Any]:
        """The whole ``response`` object for ``result``."""
        return self._response("completed", [self._message(result.content, "completed")], result.usage)

    def _event(self, name: str, data: Mapping[str, Any]) -> bytes:
        self.seq += 1
        return _event(name, {"type": name, "sequence_number": self.seq, **data})

    def start(self) -> bytes:
        """``response.created``, the message item and its empty text part."""
        where = {"item_id": self.item_id, "output_index": 0, "content_index": 0}
        return (
            self._event("response.created", {"response": self._response("in_progress", [], None)})
            + self._event(
                "response.output_item.added", {"output_index": 0, "item": self._message("", "in_progress")}
            )
            + self._event(
                "response.content_part.added",
                {**where, "part": {"type": "output_text", "text": "", "annotations": []}},
            )
        )

    def text(self, text: str) -> bytes:
        """One ``response.output_text.delta``."""
        self.text_so_far.append(text)
        where = {"item_id": self.item_id, "output_index": 0, "content_index": 0}
        return self._event("response.output_text.delta", {**where, "delta": text, "logprobs": []})

    def end(self, result: ChatResult) -> bytes:
        """The ``.done`` events and ``response.completed``."""
        text = "".join(self.text_so_far) or result.content
        where = {"item_id": self.item_id, "output_index": 0, "content_index": 0}
        part = {"type": "output_text", "text": text, "annotations": []}
        item = self._message(text, "completed")
        final = self._response("completed", [item], result.usage)
        return (
            self._event("response.output_text.done", {**where, "text": text, "logprobs": []})
            + self._event("response.content_part.done", {**where, "part": part})
            + self._event("response.output_item.done", {"output_index": 0, "item": item})
            + self._event("response.completed", {"response": final})
        )

    def error(self, status: int, message: str) -> bytes:
        """``response.failed``: the stream failed after it began."""
        failed = self._response("failed", [], None)
        failed["error"] = {"code": FAILURE_CODES.get(status, "server_error"), "message": message}
        return self._event("response.failed", {"response": failed})

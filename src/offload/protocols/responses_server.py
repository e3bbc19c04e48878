"""OpenAI Responses, server side: a client's ``/v1/responses`` body in, our answer out (no I/O).

``read`` turns ``instructions`` + ``input`` (a string or items: messages, function and custom
tool calls and their outputs, reasoning items dropped) and ``tools`` (custom tools marked as such)
into an ``Incoming``. ``render`` builds
the ``response`` object; ``SseWriter`` the event stream Codex reads: ``response.created``,
then per output item ``response.output_item.added``, its deltas (``output_text`` or
``function_call_arguments``) and ``.done`` events, ``response.output_item.done`` — the only way
items enter Codex's history — and ``response.completed`` (with the response id and usage). A
failure after the first byte is ``response.failed``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

from offload.protocols.incoming import (
    Incoming,
    custom_input,
    field_error,
    is_custom,
    json_arguments,
    optional_float,
    optional_int,
    require_model,
)
from offload.protocols.openai_chat_server import ROLES, tool_choice_of
from offload.protocols.openai_chat_server import error_body as chat_error_body
from offload.protocols.openai_tools import CUSTOM_INPUT
from offload.types import ChatRequest, ChatResult, Message, ToolCall, ToolCallDelta, ToolSpec, Usage

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
    call_id = str(raw.get("call_id") or raw.get("id") or f"call_{index}")
    if kind == "function_call":
        call = ToolCall(call_id, str(raw.get("name", "")), json_arguments(raw.get("arguments")))
        return Message("assistant", "", tool_calls=(call,))
    if kind == "custom_tool_call":
        arguments = json.dumps({CUSTOM_INPUT: str(raw.get("input", ""))}, ensure_ascii=False)
        return Message("assistant", "", tool_calls=(ToolCall(call_id, str(raw.get("name", "")), arguments),))
    if kind in ("function_call_output", "custom_tool_call_output"):
        output = raw.get("output", "")
        text = output if isinstance(output, str) else _parts(output, f"{path}.output")[0]
        return Message("tool", text, tool_call_id=call_id)
    if kind != "message":
        return None  # reasoning and other item kinds carry nothing a local model needs
    role = raw.get("role")
    if role not in ROLES:
        raise field_error(f"{path}.role", '"system", "developer", "user" or "assistant"', role)
    text, images = _parts(raw.get("content", ""), f"{path}.content")
    return Message(ROLES[role], text, images) if text or images else None


def _merged(messages: list[Message]) -> list[Message]:
    """Consecutive assistant calls as one assistant turn (as chat servers expect them)."""
    out: list[Message] = []
    for m in messages:
        last = out[-1] if out else None
        if (
            last is not None
            and m.tool_calls
            and last.role == "assistant"
            and (last.tool_calls or not m.content)
        ):
            out[-1] = Message("assistant", last.content, last.images, last.tool_calls + m.tool_calls)
        else:
            out.append(m)
    return out


def _tools(value: Any) -> tuple[ToolSpec, ...]:
    out: list[ToolSpec] = []
    for tool in value if isinstance(value, list) else []:
        if not isinstance(tool, Mapping) or not isinstance(tool.get("name"), str):
            continue
        if tool.get("type") == "function":
            params = tool.get("parameters")
            parameters = dict(params) if isinstance(params, Mapping) else {}
            out.append(ToolSpec(tool["name"], str(tool.get("description") or ""), parameters))
        elif tool.get("type") == "custom":
            out.append(ToolSpec(tool["name"], str(tool.get("description") or ""), custom=True))
    return tuple(out)


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
        messages += _merged([m for i, item in enumerate(raw) if (m := _item(item, i)) is not None])
    else:
        raise field_error("input", "a string or a list of items", raw)
    reasoning = body.get("reasoning")
    tools = _tools(body.get("tools"))
    request = ChatRequest(
        messages=tuple(messages),
        max_output_tokens=optional_int(body, "max_output_tokens"),
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
    """One response: ``render`` for a whole answer, or its event stream piece by piece.

    Output items open as content arrives: a message item for text, a ``function_call`` item per
    call (a ``custom_tool_call`` for the request's custom tools, given whole when done).
    """

    def __init__(self, model: str, request: ChatRequest | None = None) -> None:
        self.model = model
        self.request = request or ChatRequest(messages=())
        self.id = f"resp_{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.seq = 0
        self._items: list[dict[str, Any]] = []
        self._open: dict[str, Any] | None = None
        self._calls: dict[int, dict[str, Any]] = {}

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

    def _call_item(self, call: ToolCall, status: str) -> dict[str, Any]:
        if is_custom(self.request, call.name):
            return {
                "type": "custom_tool_call",
                "id": f"ctc_{call.id}",
                "call_id": call.id,
                "name": call.name,
                "input": custom_input(call.arguments) if status == "completed" else "",
                "status": status,
            }
        return {
            "type": "function_call",
            "id": f"fc_{call.id}",
            "call_id": call.id,
            "name": call.name,
            "arguments": call.arguments,
            "status": status,
        }

    def render(self, result: ChatResult) -> dict[str, Any]:
        """The whole ``response`` object for ``result``."""
        output: list[dict[str, Any]] = []
        if result.content or not result.tool_calls:
            output.append(_text_item(f"msg_{uuid.uuid4().hex}", result.content, "completed"))
        output += [self._call_item(c, "completed") for c in result.tool_calls]
        return self._response("completed", output, result.usage)

    def _event(self, name: str, data: Mapping[str, Any]) -> bytes:
        self.seq += 1
        return _event(name, {"type": name, "sequence_number": self.seq, **data})

    def start(self) -> bytes:
        """``response.created``."""
        return self._event("response.created", {"response": self._response("in_progress", [], None)})

    def _close(self) -> bytes:
        item, self._open = self._open, None
        if item is None:
            return b""
        index = len(self._items)
        if item["type"] == "message":
            text = "".join(item.pop("_text"))
            where = {"item_id": item["id"], "output_index": index, "content_index": 0}
            part = {"type": "output_text", "text": text, "annotations": []}
            done = _text_item(item["id"], text, "completed")
            self._items.append(done)
            return (
                self._event("response.output_text.done", {**where, "text": text, "logprobs": []})
                + self._event("response.content_part.done", {**where, "part": part})
                + self._event("response.output_item.done", {"output_index": index, "item": done})
            )
        call = ToolCall(item["call_id"], item["name"], "".join(item.pop("_args")) or "{}")
        done = self._call_item(call, "completed")
        self._items.append(done)
        out = b""
        if done["type"] == "function_call":
            where = {"item_id": done["id"], "output_index": index}
            out = self._event("response.function_call_arguments.done", {**where, "arguments": call.arguments})
        return out + self._event("response.output_item.done", {"output_index": index, "item": done})

    def text(self, text: str) -> bytes:
        """One ``response.output_text.delta`` (opening a message item first when needed)."""
        out = b""
        if self._open is None or self._open["type"] != "message":
            out = self._close()
            item_id = f"msg_{uuid.uuid4().hex}"
            self._open = {"type": "message", "id": item_id, "_text": []}
            where = {"item_id": item_id, "output_index": len(self._items), "content_index": 0}
            out += self._event(
                "response.output_item.added",
                {"output_index": len(self._items), "item": _text_item(item_id, "", "in_progress")},
            ) + self._event(
                "response.content_part.added",
                {**where, "part": {"type": "output_text", "text": "", "annotations": []}},
            )
        self._open["_text"].append(text)
        where = {"item_id": self._open["id"], "output_index": len(self._items), "content_index": 0}
        return out + self._event("response.output_text.delta", {**where, "delta": text, "logprobs": []})

    def tool(self, piece: ToolCallDelta) -> bytes:
        """A piece of a call: a new item on its first piece, then argument deltas."""
        out = b""
        if piece.index not in self._calls:
            out = self._close()
            call = ToolCall(piece.id or f"call_{uuid.uuid4().hex[:24]}", piece.name or "", "")
            item = {**self._call_item(call, "in_progress"), "_args": []}
            self._calls[piece.index] = item
            self._open = item
            added = {k: v for k, v in item.items() if not k.startswith("_")}
            out += self._event(
                "response.output_item.added", {"output_index": len(self._items), "item": added}
            )
        item = self._calls[piece.index]
        if item is not self._open:
            return out  # pieces of an earlier call after a later one began: kept out of order
        item["_args"].append(piece.arguments)
        if piece.arguments and item["type"] == "function_call":
            where = {"item_id": item["id"], "output_index": len(self._items)}
            out += self._event("response.function_call_arguments.delta", {**where, "delta": piece.arguments})
        return out

    def end(self, result: ChatResult) -> bytes:
        """The open item's ``.done`` events and ``response.completed``."""
        out = self._close()
        if not self._items:
            out += self.text(result.content) + self._close()
        final = self._response("completed", self._items, result.usage)
        return out + self._event("response.completed", {"response": final})

    def error(self, status: int, message: str) -> bytes:
        """``response.failed``: the stream failed after it began."""
        failed = self._response("failed", [], None)
        failed["error"] = {"code": FAILURE_CODES.get(status, "server_error"), "message": message}
        return self._event("response.failed", {"response": failed})


def _text_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": []}] if status == "completed" else []
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": content}

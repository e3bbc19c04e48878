"""Tools on the Chat Completions wire: tool definitions, tool-call turns, and streamed call pieces.

Custom (free-text) tools, which OpenAI-compatible local servers reject, go out as function tools
taking one string ``input`` (``custom_parameters``); turning the calls back is the caller's job.
Streamed calls arrive as pieces keyed by ``index``: the first piece of a call carries its ``id``
and function name, later ones only argument fragments; ``ToolCalls`` puts them together.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from offload.types import ChatRequest, Message, ToolCall, ToolCallDelta, ToolSpec

CUSTOM_INPUT = "input"


def custom_parameters() -> dict[str, Any]:
    """The JSON schema a custom tool is given as a function tool."""
    return {"type": "object", "properties": {CUSTOM_INPUT: {"type": "string"}}, "required": [CUSTOM_INPUT]}


def tool_dict(tool: ToolSpec) -> dict[str, Any]:
    """One ``tools`` entry."""
    parameters = custom_parameters() if tool.custom else dict(tool.parameters) or {"type": "object"}
    function: dict[str, Any] = {"name": tool.name, "parameters": parameters}
    if tool.description:
        function["description"] = tool.description
    return {"type": "function", "function": function}


def tool_choice(choice: str | None) -> Any:
    """``tool_choice``: a mode word, or the one function to call."""
    if choice is None or choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def add_tools(body: dict[str, Any], request: ChatRequest) -> None:
    """Put the request's tools and tool choice on a body."""
    if request.tools:
        body["tools"] = [tool_dict(t) for t in request.tools]
        choice = tool_choice(request.tool_choice)
        if choice is not None:
            body["tool_choice"] = choice


def message_dict(message: Message, content: Any) -> dict[str, Any]:
    """One ``messages`` entry with its tool calls or the call id it answers."""
    entry: dict[str, Any] = {"role": message.role, "content": content}
    if message.tool_calls:
        entry["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
        if not message.content:
            entry["content"] = None
    if message.tool_call_id is not None:
        entry["tool_call_id"] = message.tool_call_id
    return entry


def parse_tool_calls(message: Mapping[str, Any]) -> tuple[ToolCall, ...]:
    """The calls in a whole reply's message."""
    out: list[ToolCall] = []
    for i, raw in enumerate(message.get("tool_calls") or []):
        fn = raw.get("function") if isinstance(raw, Mapping) else None
        if not isinstance(fn, Mapping):
            continue
        arguments = fn.get("arguments")
        text = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
        out.append(ToolCall(str(raw.get("id") or f"call_{i}"), str(fn.get("name") or ""), text))
    return tuple(out)


def parse_call_deltas(delta: Mapping[str, Any]) -> list[ToolCallDelta]:
    """The call pieces in one streamed delta."""
    out: list[ToolCallDelta] = []
    for position, raw in enumerate(delta.get("tool_calls") or []):
        if not isinstance(raw, Mapping):
            continue
        got = raw.get("function")
        fn: Mapping[str, Any] = got if isinstance(got, Mapping) else {}
        index = raw.get("index")
        arguments = fn.get("arguments")
        out.append(
            ToolCallDelta(
                index=index if isinstance(index, int) else position,
                id=str(raw["id"]) if raw.get("id") else None,
                name=str(fn["name"]) if fn.get("name") else None,
                arguments=arguments if isinstance(arguments, str) else "",
            )
        )
    return out


class ToolCalls:
    """Puts streamed call pieces back together, in index order."""

    def __init__(self) -> None:
        self._calls: dict[int, list[str]] = {}

    def add(self, piece: ToolCallDelta) -> None:
        """Take one piece."""
        call = self._calls.setdefault(piece.index, ["", "", ""])
        if piece.id:
            call[0] = piece.id
        if piece.name:
            call[1] = piece.name
        call[2] += piece.arguments

    def calls(self) -> tuple[ToolCall, ...]:
        """The complete calls."""
        return tuple(
            ToolCall(c[0] or f"call_{i}", c[1], c[2] or "{}") for i, c in sorted(self._calls.items())
        )

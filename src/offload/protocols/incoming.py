"""What a client sent to ``offload serve``, read into core types: the shared shape of the server codecs.

Each server-side codec (``anthropic_server``, ``openai_chat_server``, ``responses_server``)
reads a request body into an ``Incoming``: the ``ChatRequest`` a local model answers, plus the
facts routing needs (the model name the client asked for, streaming, tools, thinking). Tool
definitions, calls and results are carried as core types; ``flatten_tools`` turns them into text
for a model that cannot be given tools.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from offload.errors import InputError
from offload.types import ChatRequest, Message

ATTRIBUTION_PREFIX = "x-anthropic-billing-header:"
"""Claude Code's per-request attribution line at the start of ``system[0]``."""


@dataclass(frozen=True, slots=True)
class Incoming:
    """One client request: the core request plus what routing looks at."""

    request: ChatRequest
    model: str
    stream: bool
    has_tools: bool = False
    thinking: bool = False
    include_usage: bool = False


def field_error(path: str, expected: str, got: Any) -> InputError:
    """A 400-worthy problem naming the body field."""
    shown = (
        json.dumps(got)[:60] if isinstance(got, str | int | float | bool | type(None)) else type(got).__name__
    )
    return InputError(f"{path}: expected {expected}, got {shown}")


def require_model(body: Mapping[str, Any]) -> str:
    """The ``model`` field, a non-empty string."""
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise field_error("model", "a non-empty string", model)
    return model


def require_list(body: Mapping[str, Any], key: str) -> list[Any]:
    """``body[key]`` when it is a list."""
    value = body.get(key)
    if not isinstance(value, list):
        raise field_error(key, "a list", value)
    return value


def optional_int(body: Mapping[str, Any], *keys: str) -> int | None:
    """The first of ``keys`` holding a positive integer; a wrong type is an error."""
    for key in keys:
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        raise field_error(key, "a positive integer", value)
    return None


def optional_float(body: Mapping[str, Any], key: str) -> float | None:
    """``body[key]`` as a number, or ``None``."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise field_error(key, "a number", value)


def tool_call_text(name: str, arguments: Any) -> str:
    """A tool call in the history, as text for a model that was not given tools."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    return f"[called tool {name} with {args}]"


def tool_result_text(content: Any) -> str:
    """A tool result in the history, as text."""
    if isinstance(content, list):
        content = "\n".join(
            str(part.get("text", "")) for part in content if isinstance(part, Mapping) and "text" in part
        )
    return f"[tool result]\n{content if isinstance(content, str) else json.dumps(content)}"


def strip_attribution(text: str) -> str:
    """``text`` without Claude Code's attribution line (it changes every request)."""
    if not text.startswith(ATTRIBUTION_PREFIX):
        return text
    _, _, rest = text.partition("\n")
    return rest.lstrip("\n")


def custom_input(arguments: str) -> str:
    """The free text of a custom tool call sent as a function call (``{"input": …}``)."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return arguments
    if isinstance(value, Mapping) and isinstance(value.get("input"), str):
        return str(value["input"])
    return arguments


def is_custom(request: ChatRequest, name: str) -> bool:
    """True when ``name`` is one of the request's custom (free-text) tools."""
    return any(t.custom and t.name == name for t in request.tools)


def flatten_tools(request: ChatRequest) -> ChatRequest:
    """``request`` for a model that is not given tools: no tool list, calls and results as text."""
    if not request.tools and not any(m.tool_calls or m.role == "tool" for m in request.messages):
        return request
    messages: list[Message] = []
    for m in request.messages:
        if m.role == "tool":
            messages.append(Message("user", tool_result_text(m.content)))
        elif m.tool_calls:
            calls = [tool_call_text(c.name, c.arguments) for c in m.tool_calls]
            messages.append(Message(m.role, "\n\n".join([m.content, *calls]).strip(), m.images))
        else:
            messages.append(m)
    return replace(request, messages=tuple(messages), tools=(), tool_choice=None)


def json_arguments(value: Any) -> str:
    """Tool-call arguments as JSON text."""
    if isinstance(value, str):
        return value
    return json.dumps(value if value is not None else {}, ensure_ascii=False)

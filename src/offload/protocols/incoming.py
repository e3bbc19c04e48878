"""What a client sent to ``offload serve``, read into core types: the shared shape of the server codecs.

Each server-side codec (``anthropic_server``, ``openai_chat_server``, ``responses_server``)
reads a request body into an ``Incoming``: the ``ChatRequest`` a local model answers, plus the
facts routing needs (the model name the client asked for, streaming, tools, thinking). Tool
definitions are not carried to local models; tool calls and results already in the history are
kept as text so the model still sees what happened.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from offload.errors import InputError
from offload.types import ChatRequest

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

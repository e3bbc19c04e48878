"""What the hosted-API fakes' model says: deterministic replies, token counts, schema-valid JSON.

No I/O. Tokens are counted at about four characters each; the default reply echoes the last
user message; structured-output requests get a small value valid against their JSON schema
(types, enums, consts, ``$ref``, ``anyOf``, bounds); ``max_tokens`` cuts the reply and turns
the finish into ``length``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


def count_tokens(text: str) -> int:
    """About four characters a token (0 for empty text)."""
    return math.ceil(len(text) / 4) if text else 0


def snippet(text: str, limit: int = 80) -> str:
    """``text`` with whitespace collapsed, cut to ``limit`` characters."""
    return " ".join(text.split())[:limit]


def default_reply(prompt: str) -> str:
    """The deterministic answer a fake gives when nothing is scripted."""
    return f"This is a fake answer to: {snippet(prompt)}" if prompt.strip() else "This is a fake answer."


def fake_reasoning(prompt: str) -> str:
    """The deterministic reasoning a fake shows when reasoning was asked for."""
    return f"The user asks: {snippet(prompt, 60)}. A short, direct answer will do."


def pieces(text: str) -> list[str]:
    """``text`` cut into word-sized stream deltas; joined they give ``text`` back exactly."""
    return re.findall(r"\S+\s*|\s+", text)


def content_text(content: Any) -> tuple[str, int]:
    """Text and image count of a message's ``content`` (string or parts)."""
    if isinstance(content, str):
        return content, 0
    text: list[str] = []
    images = 0
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, Mapping):
            continue
        if part.get("type") in ("text", "input_text", "output_text"):
            text.append(str(part.get("text") or ""))
        elif part.get("type") in ("image_url", "input_image", "image"):
            images += 1
    return "\n".join(text), images


def prompt_of(messages: Iterable[Any]) -> tuple[str, str, int]:
    """All text, the last user text and the image count of chat messages or input items."""
    texts: list[str] = []
    last_user = ""
    images = 0
    for m in messages:
        if not isinstance(m, Mapping):
            continue
        text, n = content_text(m.get("content"))
        texts.append(text)
        images += n
        if m.get("role", "user") == "user":
            last_user = text
    return "\n".join(texts), last_user, images


_FORMATS = {
    "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z",
    "time": "00:00:00",
    "email": "user@example.com",
    "uri": "https://example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def schema_instance(schema: Any, root: Any = None, depth: int = 0) -> Any:
    """A small value valid against ``schema`` (types, enums, consts, $ref, anyOf, bounds)."""
    root = schema if root is None else root
    if not isinstance(schema, Mapping) or depth > 12:
        return None
    if isinstance(schema.get("$ref"), str):
        return schema_instance(_resolve(schema["$ref"], root), root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            usable = [o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")]
            return schema_instance((usable or options)[0], root, depth + 1)
    return _typed_instance(schema, _type_of(schema), root, depth)


def _resolve(ref: str, root: Any) -> Any:
    node = root
    for part in ref.removeprefix("#/").split("/"):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def _type_of(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        return kind
    return "object" if "properties" in schema else "array" if "items" in schema else "string"


def _typed_instance(schema: Mapping[str, Any], kind: str, root: Any, depth: int) -> Any:
    if kind == "object":
        props = schema.get("properties") or {}
        return {k: schema_instance(v, root, depth + 1) for k, v in props.items()}
    if kind == "array":
        count = max(int(schema.get("minItems") or 0), 1)
        count = min(count, int(schema.get("maxItems", count)))
        return [schema_instance(schema.get("items") or {}, root, depth + 1) for _ in range(count)]
    if kind in ("integer", "number"):
        return _number(schema, integer=kind == "integer")
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string(schema)


def _number(schema: Mapping[str, Any], *, integer: bool) -> int | float:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    value: float = 0 if low is None else float(low) + (1 if "exclusiveMinimum" in schema else 0)
    high = schema.get("maximum")
    if high is not None and value > float(high):
        value = float(high)
    return math.ceil(value) if integer else value


def _string(schema: Mapping[str, Any]) -> str:
    text = _FORMATS.get(str(schema.get("format")), "example")
    text = text.ljust(int(schema.get("minLength") or 0), "x")
    return text[: int(schema["maxLength"])] if "maxLength" in schema else text


@dataclass(frozen=True, slots=True)
class Reply:
    """What a fake model says to one request, with its token counts."""

    text: str
    reasoning: str
    finish: str
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int


def plan_reply(
    *,
    scripted: str | None,
    prompt: str,
    input_tokens: int,
    schema: Mapping[str, Any] | None = None,
    max_tokens: int | None = None,
    reasoning: bool = False,
) -> Reply:
    """The reply: scripted text, else schema-valid JSON, else the default; cut at ``max_tokens``."""
    if scripted is not None:
        text = scripted
    elif schema is not None:
        text = json.dumps(schema_instance(schema))
    else:
        text = default_reply(prompt)
    thought = fake_reasoning(prompt) if reasoning else ""
    out = count_tokens(text)
    finish = "stop"
    if max_tokens is not None and out > max_tokens:
        text, out, finish = text[: max_tokens * 4], max_tokens, "length"
    thought_tokens = count_tokens(thought)
    return Reply(text, thought, finish, input_tokens, out + thought_tokens, thought_tokens)

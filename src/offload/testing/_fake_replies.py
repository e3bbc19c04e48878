"""What the hosted-API fakes' model says: deterministic replies, token counts, schema-valid JSON.

No I/O. Tokens are counted at about four characters each; the default reply echoes the last
user message; structured-output requests get a small value valid against their JSON schema
(``offload.testing._schema_fill``); ``max_tokens`` cuts the reply and turns
the finish into ``length``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from offload.testing._schema_fill import fill_schema


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
        text = json.dumps(fill_schema(schema, prompt.split()))
    else:
        text = default_reply(prompt)
    thought = fake_reasoning(prompt) if reasoning else ""
    out = count_tokens(text)
    finish = "stop"
    if max_tokens is not None and out > max_tokens:
        text, out, finish = text[: max_tokens * 4], max_tokens, "length"
    thought_tokens = count_tokens(thought)
    return Reply(text, thought, finish, input_tokens, out + thought_tokens, thought_tokens)

"""Text side of the LM Studio fake: what a responder sees, token counting and the default replies.

Owns ``FakeMessage`` and ``FakeTurn`` (the responder's view of one generation), the token model
(input: about 1 token per 4 characters plus a small chat-template overhead; output: one word-piece
``\\s*\\S+\\s*`` per token and per streamed delta), the deterministic ``default_responder`` and
``default_reasoning``; structured output comes from ``offload.testing._schema_fill``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from offload.testing._schema_fill import fill_schema

TEMPLATE_TOKENS = 9
MESSAGE_TOKENS = 4
IMAGE_TOKENS = 256

_PIECE = re.compile(r"\s*\S+\s*")
_WORD = re.compile(r"[\w'’-]+")
_EXACT = re.compile(r"\b(?:reply|respond|answer|say)\s+with\s+(?:exactly|only|just)\s*:?\s*(.+)", re.I | re.S)
_QUOTED = re.compile(r"<<<\s*(.*?)\s*>>>", re.S)
_GREETINGS = frozenset({"hi", "hello", "hey", "hiya", "howdy", "greetings", "yo", "hallo", "morning"})


@dataclass(frozen=True)
class FakeMessage:
    """One earlier message of a conversation (``role`` is ``"user"`` or ``"assistant"``)."""

    role: str
    content: str


@dataclass(frozen=True)
class FakeTurn:
    """Everything a responder needs to produce one reply.

    ``model`` is the model key, ``instance_id`` the answering instance, ``route`` the request path.
    ``history`` holds the earlier turns (stateful threads or sent messages), oldest first.
    ``json_schema`` is set when structured output was requested; ``reasoning`` is the effective
    reasoning setting (``None`` for models without reasoning). ``request`` is the raw JSON body.
    """

    model: str
    instance_id: str
    route: str
    user_text: str
    system_prompt: str | None = None
    history: tuple[FakeMessage, ...] = ()
    max_output_tokens: int | None = None
    json_schema: Mapping[str, Any] | None = None
    reasoning: str | None = None
    images: tuple[str, ...] = ()
    request: Mapping[str, Any] = field(default_factory=dict)


Responder = Callable[[FakeTurn], str | Awaitable[str]]


def text_tokens(text: str) -> int:
    """Tokens of a piece of input text: one per 4 characters, rounded up."""
    return (len(text) + 3) // 4


def count_input_tokens(
    system_prompt: str | None, history: Sequence[FakeMessage], user_text: str, images: int = 0
) -> int:
    """Prompt tokens as LM Studio reports them: template overhead + every message + images."""
    texts = [system_prompt] if system_prompt else []
    texts += [m.content for m in history]
    texts.append(user_text)
    return TEMPLATE_TOKENS + sum(MESSAGE_TOKENS + text_tokens(t) for t in texts) + IMAGE_TOKENS * images


def split_pieces(text: str) -> list[str]:
    """Output word-pieces: one per token and per streamed delta; ``"".join(pieces) == text``."""
    pieces = _PIECE.findall(text)
    return pieces if pieces else ([text] if text else [])


def words_of(text: str) -> list[str]:
    return _WORD.findall(text)


def default_responder(turn: FakeTurn) -> str:
    """Deterministic, input-dependent reply.

    JSON matching ``turn.json_schema`` when one is given; the requested text for "Reply with
    exactly: X"; for an offload task prompt (text quoted in ``<<< >>>``, in this turn or an
    earlier one) "In short: " and the first words of that text, so a re-ask gets an answer
    rather than an echo; ``"Hi."`` for a short greeting; otherwise a short sentence from the
    first words.
    """
    words = words_of(turn.user_text)
    if turn.json_schema is not None:
        return json.dumps(fill_schema(turn.json_schema, words))
    exact = _EXACT.search(turn.user_text)
    if exact:
        return exact.group(1).strip().strip("\"'`")
    quoted = [
        m.group(1) for t in (turn.user_text, *(h.content for h in turn.history)) for m in _QUOTED.finditer(t)
    ]
    if quoted and (gist := words_of(quoted[0])[:8]):
        return "In short: " + " ".join(gist) + "."
    if not words:
        return "I did not receive any text."
    if len(words) <= 3 and words[0].lower() in _GREETINGS:
        return "Hi."
    return "Understood: " + " ".join(words[:8]) + "."


def default_reasoning(turn: FakeTurn) -> str:
    """The reasoning text of reasoning models: short and derived from the input."""
    snippet = " ".join(words_of(turn.user_text)[:5]) or "nothing"
    return f'The user wrote "{snippet}". A short, direct answer fits.'

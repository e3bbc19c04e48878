"""Real text for the fakes: a responder that answers every fake request with the embedded engine.

``LMStudioFake(responder=embedded_responder())`` serves model-written answers through LM Studio's
exact wire shapes, so the native-API client, the router and the tasks are exercised end to end
with real generation (SmolLM2 by default) instead of canned strings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from offload.types import ChatRequest, JsonSchema, Message

if TYPE_CHECKING:
    from offload.providers.embedded import EmbeddedProvider
    from offload.testing._lmstudio_text import FakeTurn, Responder

DEFAULT_MODEL = "smollm2-135m-instruct"


def embedded_responder(
    provider: EmbeddedProvider | None = None, *, model: str = DEFAULT_MODEL, max_output_tokens: int = 96
) -> Responder:
    """A fake responder backed by ``provider`` (a new ``EmbeddedProvider`` when ``None``)."""
    from offload.providers.embedded import EmbeddedProvider

    engine = provider or EmbeddedProvider()

    async def respond(turn: FakeTurn) -> str:
        messages = [Message("system", turn.system_prompt)] if turn.system_prompt else []
        messages += [
            Message("assistant" if m.role == "assistant" else "user", m.content) for m in turn.history
        ]
        messages.append(Message("user", turn.user_text))
        schema = JsonSchema(turn.json_schema) if turn.json_schema else None
        limit = min(turn.max_output_tokens or max_output_tokens, max_output_tokens)
        request = ChatRequest(
            tuple(messages), model=model, max_output_tokens=limit, temperature=0.0, response_format=schema
        )
        return (await engine.chat(request)).content

    return respond

"""``POST /v1/messages`` of the LM Studio fake (Anthropic-compatible, LM Studio 0.4.1+).

Owns the Anthropic message body (``content`` blocks, ``stop_reason``, ``usage``), its SSE stream
(``message_start``, ``content_block_start``/``_delta``/``_stop``, ``message_delta``,
``message_stop``) and Anthropic-style error envelopes. Reasoning models answer with a
``thinking`` block before the ``text`` block. The response shape follows Anthropic's API (LM
Studio's own was not recorded).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from offload.testing import _lmstudio_errors as errors
from offload.testing._lmstudio_engine import Engine, collect, prestart
from offload.testing._lmstudio_errors import ApiError, TurnError
from offload.testing._lmstudio_events import Delta, Event, Finished, Started, TurnPlan, TurnResult
from offload.testing._lmstudio_http import Call, Handler, JsonKind, check_types, drive, event_stream, sse
from offload.testing._lmstudio_openai import content_parts, lm_id, parse_messages, split_conversation

TYPES: dict[str, tuple[JsonKind, ...]] = {
    "model": ("string",),
    "messages": ("array",),
    "max_tokens": ("integer",),
    "system": ("string", "array"),
    "stream": ("boolean",),
    "temperature": ("number",),
    "stop_sequences": ("array",),
}


def routes(engine: Engine) -> list[tuple[str, str, Handler]]:
    async def messages(call: Call) -> Response:
        try:
            return await _messages(engine, call)
        except ApiError as err:
            if "type" in err.body:
                raise
            raise errors.anthropic(err.status, err.message) from err

    return [("POST", "/v1/messages", messages)]


def _type_error(name: str, expected: str) -> ApiError:
    return errors.anthropic(400, f"{name}: expected {expected}")


def _plan(engine: Engine, call: Call) -> TurnPlan:
    body = call.body
    check_types(body, TYPES, _type_error)
    if body.get("max_tokens") is None:
        raise errors.anthropic(400, "max_tokens: Field required")
    system_blocks = body.get("system")
    system_text = content_parts(system_blocks)[0] if system_blocks is not None else None
    system, history, user_text, images = split_conversation(parse_messages(body.get("messages")))
    target = engine.resolve_compat(str(body.get("model") or ""))
    return TurnPlan(
        target=target,
        route=call.path,
        user_text=user_text,
        system_prompt=system_text or system,
        history=history,
        images=tuple(images),
        max_output_tokens=body["max_tokens"],
        reasoning=target.model.default_reasoning,
        stop=tuple(str(s) for s in body.get("stop_sequences") or ()),
        fault=call.fault,
        request=body,
    )


async def _messages(engine: Engine, call: Call) -> Response:
    plan = _plan(engine, call)
    message_id = lm_id("msg_", 24)
    events = engine.run(plan)
    try:
        if call.stream:
            head, events = await prestart(events)
            return event_stream(drive(call, events, MessagesStream(message_id), head))
        result = await collect(events)
    except TurnError as err:
        raise errors.anthropic_turn_error(err) from err
    return JSONResponse(message_body(message_id, result))


def _stop_reason(result: TurnResult) -> tuple[str, str | None]:
    if result.finish_reason == "length":
        return "max_tokens", None
    if result.stop_sequence is not None:
        return "stop_sequence", result.stop_sequence
    return "end_turn", None


def message_body(message_id: str, result: TurnResult) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if result.reasoning:
        content.append({"type": "thinking", "thinking": result.reasoning, "signature": ""})
    content.append({"type": "text", "text": result.text})
    stop_reason, stop_sequence = _stop_reason(result)
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": result.instance_id,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": {"input_tokens": result.input_tokens, "output_tokens": result.output_tokens},
    }


class MessagesStream:
    """Renders engine events as Anthropic streaming events."""

    def __init__(self, message_id: str) -> None:
        self.message_id = message_id
        self.channel: str | None = None
        self.index = -1

    @staticmethod
    def _event(kind: str, **fields: Any) -> bytes:
        return sse(kind, {"type": kind, **fields})

    def render(self, event: Event) -> list[bytes]:
        if isinstance(event, Started):
            message: dict[str, Any] = {
                "id": self.message_id,
                "type": "message",
                "role": "assistant",
                "model": event.instance_id,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }
            return [self._event("message_start", message=message)]
        if isinstance(event, Delta):
            delta: dict[str, Any] = (
                {"type": "thinking_delta", "thinking": event.text}
                if event.channel == "reasoning"
                else {"type": "text_delta", "text": event.text}
            )
            return [
                *self._switch(event.channel),
                self._event("content_block_delta", index=self.index, delta=delta),
            ]
        if isinstance(event, Finished):
            result = event.result
            stop_reason, stop_sequence = _stop_reason(result)
            delta = {"stop_reason": stop_reason, "stop_sequence": stop_sequence}
            usage = {"input_tokens": result.input_tokens, "output_tokens": result.output_tokens}
            return [
                *self._switch(None),
                self._event("message_delta", delta=delta, usage=usage),
                self._event("message_stop"),
            ]
        return []

    def _switch(self, channel: str | None) -> list[bytes]:
        if channel == self.channel:
            return []
        chunks = [self._event("content_block_stop", index=self.index)] if self.channel else []
        self.channel = channel
        if channel is not None:
            self.index += 1
            block = (
                {"type": "thinking", "thinking": ""}
                if channel == "reasoning"
                else {"type": "text", "text": ""}
            )
            chunks.append(self._event("content_block_start", index=self.index, content_block=block))
        return chunks

    def error(self, err: TurnError) -> list[bytes]:
        return [self._event("error", error={"type": "api_error", "message": err.message})]

"""OpenAI Chat Completions (``POST /chat/completions``, ``GET /models``): bodies out, results and events in.

Pure functions, no I/O. The same shapes serve OpenAI itself and the servers that copy it
(OpenRouter, vLLM, llama.cpp's llama-server, Ollama's ``/v1``, LiteLLM, LM Studio's ``/v1``).
Reasoning is read from ``reasoning_content`` (DeepSeek, vLLM, LM Studio) or ``reasoning``
(gpt-oss, OpenRouter) and never mixed into the answer. ``classify_error`` adds the OpenAI
error codes (``insufficient_quota``, ``context_length_exceeded``) to the shared rules of
``offload.protocols.errors``; the Responses codec reuses it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from offload.errors import BadResponse, BillingError, ContextOverflow, InvalidRequest, ProviderError
from offload.protocols.errors import Envelope, ErrorContext, classify, parse_envelope
from offload.protocols.openai_tools import (
    ToolCalls,
    add_tools,
    message_dict,
    parse_call_deltas,
    parse_tool_calls,
)
from offload.types import (
    ChatRequest,
    ChatResult,
    JsonSchema,
    Message,
    ModelInfo,
    ReasoningDelta,
    ReasoningLevel,
    StreamEvent,
    TextDelta,
    Timings,
    ToolCallDelta,
    Usage,
)

CHAT = "/chat/completions"
MODELS = "/models"
EFFORTS = ("low", "medium", "high")
OVERFLOW_CODES = frozenset({"context_length_exceeded"})
BILLING_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "billing_not_active"})
STATUS_FOR = {
    "invalid_request_error": 400,
    "context_length_exceeded": 400,
    "invalid_api_key": 401,
    "authentication_error": 401,
    "permission_error": 403,
    "model_not_found": 404,
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "requests": 429,
    "tokens": 429,
    "server_error": 500,
    "overloaded": 503,
}
"""The HTTP status an error seen inside a 200 stream would have had, by its ``code`` or ``type``."""

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


# --- request -------------------------------------------------------------------------------


def reasoning_effort(level: ReasoningLevel | None) -> str | None:
    """``reasoning_effort`` for a level: low/medium/high pass through; off/on leave the model default."""
    return level if level in EFFORTS else None


def schema_name(schema: JsonSchema) -> str:
    """The schema's name made safe for OpenAI (``^[A-Za-z0-9_-]{1,64}$``)."""
    return _NAME_UNSAFE.sub("_", schema.name)[:64] or "output"


def content_of(message: Message) -> str | list[dict[str, Any]]:
    """A message's ``content``: a plain string, or text + ``image_url`` parts when it has images."""
    if not message.images:
        return message.content
    parts: list[dict[str, Any]] = [{"type": "text", "text": message.content}] if message.content else []
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in message.images]
    return parts


def response_format(schema: JsonSchema) -> dict[str, Any]:
    """The ``response_format`` asking for JSON that matches ``schema``."""
    return {
        "type": "json_schema",
        "json_schema": {"name": schema_name(schema), "schema": dict(schema.schema), "strict": schema.strict},
    }


def build_body(
    request: ChatRequest, *, model: str, stream: bool, max_tokens_field: str = "max_tokens"
) -> dict[str, Any]:
    """The ``/chat/completions`` body for ``request``; optional keys only when set."""
    if not request.messages:
        raise InvalidRequest("the request has no messages")
    body: dict[str, Any] = {
        "model": model,
        "messages": [message_dict(m, content_of(m)) for m in request.messages],
    }
    add_tools(body, request)
    optional = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        max_tokens_field: request.max_output_tokens,
        "reasoning_effort": reasoning_effort(request.reasoning),
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    if request.response_format is not None:
        body["response_format"] = response_format(request.response_format)
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


# --- response ------------------------------------------------------------------------------


def require(data: Any, key: str, what: str) -> Mapping[str, Any]:
    """``data`` as a mapping holding ``key``, else ``BadResponse``."""
    if not isinstance(data, Mapping) or key not in data:
        raise BadResponse(f"unexpected {what} body (no {key!r}): {str(data)[:200]}")
    return data


def text_of(value: Any) -> str:
    """Message content as text: a string, or the ``text`` of content parts."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(str(p.get("text") or "") for p in value if isinstance(p, Mapping))
    return ""


def reasoning_of(message: Mapping[str, Any]) -> str:
    """The reasoning text of a message or delta, under either field name."""
    return text_of(message.get("reasoning_content") or message.get("reasoning"))


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def parse_usage(raw: Any) -> Usage:
    """Read ``usage`` (``completion_tokens`` already includes reasoning tokens)."""
    if not isinstance(raw, Mapping):
        return Usage()
    details = raw.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=_int(raw.get("prompt_tokens")),
        output_tokens=_int(raw.get("completion_tokens")),
        reasoning_tokens=_int(details.get("reasoning_tokens")) if isinstance(details, Mapping) else 0,
    )


def parse_timings(raw: Any) -> Timings:
    """Read llama-server's ``timings`` block (absent elsewhere)."""
    if not isinstance(raw, Mapping):
        return Timings()
    speed = raw.get("predicted_per_second")
    prompt_ms = raw.get("prompt_ms")
    return Timings(
        tokens_per_second=float(speed) if isinstance(speed, int | float) else None,
        time_to_first_token=float(prompt_ms) / 1000 if isinstance(prompt_ms, int | float) else None,
    )


def first_choice(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """``choices[0]`` (or an empty mapping)."""
    choices = body.get("choices") or []
    first = choices[0] if isinstance(choices, list) and choices else {}
    return first if isinstance(first, Mapping) else {}


def parse_response(data: Any, *, provider: str, model: str = "") -> ChatResult:
    """Read a ``/chat/completions`` reply. A refusal with no content becomes the content."""
    body = require(data, "choices", "chat completion")
    choice = first_choice(body)
    message = choice.get("message") or {}
    if not isinstance(message, Mapping):
        raise BadResponse(f"unexpected chat completion message: {str(message)[:200]}")
    content = text_of(message.get("content"))
    finish = choice.get("finish_reason")
    if not content and message.get("refusal"):
        content, finish = str(message["refusal"]), "refusal"
    return ChatResult(
        content=content,
        reasoning=reasoning_of(message),
        model=str(body.get("model") or model),
        provider=provider,
        finish_reason=str(finish) if finish is not None else None,
        usage=parse_usage(body.get("usage")),
        timings=parse_timings(body.get("timings")),
        tool_calls=parse_tool_calls(message),
    )


# --- streaming -----------------------------------------------------------------------------


def parse_chunk(data: Any) -> list[StreamEvent]:
    """The deltas in one ``chat.completion.chunk`` (reasoning before text, choice 0 only)."""
    if not isinstance(data, Mapping):
        return []
    delta = first_choice(data).get("delta") or {}
    if not isinstance(delta, Mapping):
        return []
    events: list[StreamEvent] = []
    reasoning = reasoning_of(delta)
    if reasoning:
        events.append(ReasoningDelta(reasoning))
    text = text_of(delta.get("content")) or text_of(delta.get("refusal"))
    if text:
        events.append(TextDelta(text))
    events += parse_call_deltas(delta)
    return events


class ChatStream:
    """Accumulates streamed chunks into the final ``ChatResult``; raises on in-stream errors."""

    def __init__(self, ctx: ErrorContext, *, model: str = "") -> None:
        self._ctx = ctx
        self._model = model
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._finish: str | None = None
        self._usage = Usage()
        self._timings = Timings()
        self._refused = False
        self._calls = ToolCalls()

    def feed(self, event: str, data: Any) -> list[StreamEvent]:
        """Take one SSE event (``event`` is its name, usually empty) and return its deltas."""
        if not isinstance(data, Mapping):
            raise BadResponse(f"{self._ctx.provider} sent an unreadable stream chunk: {str(data)[:200]}")
        if data.get("error"):
            raise stream_error(data, self._ctx)
        self._model = str(data.get("model") or self._model)
        if isinstance(data.get("usage"), Mapping):
            self._usage = parse_usage(data["usage"])
        if isinstance(data.get("timings"), Mapping):
            self._timings = parse_timings(data["timings"])
        choice = first_choice(data)
        if choice.get("finish_reason") is not None:
            self._finish = str(choice["finish_reason"])
        delta = choice.get("delta")
        if isinstance(delta, Mapping) and delta.get("refusal") and not delta.get("content"):
            self._refused = True
        events = parse_chunk(data)
        for e in events:
            if isinstance(e, TextDelta):
                self._text.append(e.text)
            elif isinstance(e, ReasoningDelta):
                self._reasoning.append(e.text)
            elif isinstance(e, ToolCallDelta):
                self._calls.add(e)
        return events

    def result(self) -> ChatResult:
        """The complete answer; ``BadResponse`` when the stream never said it finished."""
        if self._finish is None:
            raise BadResponse(
                f"{self._ctx.provider} at {self._ctx.address} ended the stream before the model finished",
                provider=self._ctx.provider,
                model=self._ctx.model,
                address=self._ctx.address,
            )
        return ChatResult(
            content="".join(self._text),
            reasoning="".join(self._reasoning),
            model=self._model,
            provider=self._ctx.provider,
            finish_reason="refusal" if self._refused else self._finish,
            usage=self._usage,
            timings=self._timings,
            tool_calls=self._calls.calls(),
        )


# --- models --------------------------------------------------------------------------------


def _context_length(m: Mapping[str, Any]) -> int | None:
    meta: Mapping[str, Any] = m["meta"] if isinstance(m.get("meta"), Mapping) else {}
    for value in (
        m.get("context_length"),
        m.get("max_model_len"),
        m.get("context_window"),
        meta.get("n_ctx"),
    ):
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def parse_model(m: Mapping[str, Any], *, provider: str) -> ModelInfo:
    """One ``/models`` entry (OpenAI, OpenRouter, vLLM, llama-server extras are read when present)."""
    key = str(m["id"])
    return ModelInfo(
        key=key,
        type="embedding" if "embed" in key.lower() else "llm",
        display_name=str(m["name"]) if m.get("name") else None,
        publisher=str(m["owned_by"]) if m.get("owned_by") else None,
        max_context_length=_context_length(m),
        provider=provider,
    )


def parse_models(data: Any, *, provider: str) -> list[ModelInfo]:
    """Read a ``GET /models`` body: ``{"object": "list", "data": [{"id": ...}, ...]}``."""
    body = require(data, "data", "model list")
    entries = body["data"] if isinstance(body["data"], list) else []
    return [parse_model(m, provider=provider) for m in entries if isinstance(m, Mapping) and "id" in m]


# --- errors --------------------------------------------------------------------------------


def classify_error(
    status: int, body: Any, ctx: ErrorContext, *, retry_after: float | None = None
) -> ProviderError:
    """The ``ProviderError`` for an OpenAI-style error response.

    ``insufficient_quota`` arrives as a 429 but is billing, not a rate limit: retrying will not
    help. ``context_length_exceeded`` is an overflow whatever the message says.
    """
    env = parse_envelope(body, status)
    kw: dict[str, Any] = {
        "provider": ctx.provider,
        "model": ctx.model,
        "address": ctx.address,
        "status": status,
        "code": env.code,
    }
    if env.code in BILLING_CODES or env.type in BILLING_CODES:
        return BillingError(
            f"{ctx.provider} at {ctx.address} refused the call for billing: {env.message}",
            remedy="add credits or raise the spending limit of this account, or use another provider",
            **kw,
        )
    if env.code in OVERFLOW_CODES:
        return ContextOverflow(env.message, **kw)
    return missing_endpoint(status, env, ctx) or classify(status, body, ctx, retry_after=retry_after)


def missing_endpoint(status: int, env: Envelope, ctx: ErrorContext) -> BadResponse | None:
    """A 404 that names no model means the path does not exist: usually a base URL missing ``/v1``
    (or carrying one too many). Told apart from an unknown model, which fails over differently."""
    if status != 404 or env.code == "model_not_found" or "model" in env.message.lower():
        return None
    return BadResponse(
        f"{ctx.provider} at {ctx.address} has no such endpoint (404): {env.message}",
        remedy="check the provider's base URL: OpenAI-style servers want it to end in /v1, "
        "Anthropic-style ones want the bare host",
        provider=ctx.provider,
        model=ctx.model,
        address=ctx.address,
        status=status,
        code=env.code,
    )


def stream_status(error: Mapping[str, Any]) -> int:
    """The status an in-stream error object stands for (by code, then type; 500 if unknown)."""
    code = error.get("code")
    if isinstance(code, int) and 400 <= code < 600:  # OpenRouter puts the status in ``code``
        return code
    for key in (code, error.get("type")):
        if isinstance(key, str) and key in STATUS_FOR:
            return STATUS_FOR[key]
    return 500


def stream_error(payload: Mapping[str, Any], ctx: ErrorContext) -> ProviderError:
    """The error a ``{"error": {...}}`` chunk inside a 200 stream describes."""
    err = payload.get("error")
    error = err if isinstance(err, Mapping) else {"message": str(err)}
    return classify_error(stream_status(error), {"error": dict(error)}, ctx)

"""Anthropic Messages API (``POST /v1/messages``, ``GET /v1/models``): bodies out, results and events in.

Pure functions, no I/O. The system prompt goes in ``system``; images become base64 ``image``
blocks. ``max_tokens`` is mandatory here, so a default is sent when the request has none.
Reasoning levels turn on extended thinking with a token budget added on top of the answer's
budget. Structured output uses a forced tool: the schema becomes the tool's ``input_schema``
and the ``tool_use.input`` the model returns becomes the (JSON text) content. Anthropic
refuses thinking together with forced tool use, so a JSON-schema request drops thinking.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from offload.errors import BadResponse, BillingError, ContextOverflow, InvalidRequest, ProviderError
from offload.protocols.errors import ErrorContext, classify, parse_envelope
from offload.protocols.openai_chat import missing_endpoint
from offload.types import (
    ChatRequest,
    ChatResult,
    JsonSchema,
    Message,
    ModelInfo,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    Usage,
)

MESSAGES = "/v1/messages"
MODELS = "/v1/models"
VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
THINKING_BUDGETS = {"low": 1024, "medium": 4096, "high": 16384, "on": 4096}
"""Extended-thinking ``budget_tokens`` per level (1024 is Anthropic's minimum)."""
STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "refusal",
}
STATUS_FOR = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}
"""HTTP status by error ``type`` (the documented table), for errors met inside a stream."""
BILLING_DETAIL_CODES = frozenset(
    {
        "enforced_spend_limit_reached",
        "contract_spend_limit_reached",
        "linked_organization_spend_limit_reached",
        "linked_organization_billing_unavailable",
    }
)
"""``error.details.error_code`` values that mean money, not pace (some arrive as 429s)."""
OVERFLOW = re.compile(r"prompt is too long|exceed context limit|context window", re.IGNORECASE)
DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+);base64,(?P<data>.+)$", re.DOTALL)
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


# --- request -------------------------------------------------------------------------------


def tool_name(schema: JsonSchema) -> str:
    """The forced tool's name for a schema (``^[A-Za-z0-9_-]{1,64}$``)."""
    return _NAME_UNSAFE.sub("_", schema.name)[:64] or "output"


def structured_tool(request: ChatRequest) -> str | None:
    """The forced tool name when ``request`` asks for JSON, else ``None``."""
    return tool_name(request.response_format) if request.response_format is not None else None


def image_block(url: str) -> dict[str, Any]:
    """An ``image`` block: base64 from a ``data:`` URL, else a URL source."""
    match = DATA_URL.match(url)
    if match:
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": match["mime"], "data": match["data"]},
        }
    return {"type": "image", "source": {"type": "url", "url": url}}


def message_dict(message: Message) -> dict[str, Any]:
    """One ``messages`` entry: string content, or image blocks followed by the text."""
    if not message.images:
        return {"role": message.role, "content": message.content}
    blocks = [image_block(url) for url in message.images]
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    return {"role": message.role, "content": blocks}


def thinking_budget(request: ChatRequest) -> int | None:
    """Thinking tokens for the request's level; ``None`` when off or when forcing a tool."""
    if request.response_format is not None or not request.reasoning:
        return None
    return THINKING_BUDGETS.get(request.reasoning)


def build_body(
    request: ChatRequest, *, model: str, stream: bool, default_max_tokens: int = DEFAULT_MAX_TOKENS
) -> dict[str, Any]:
    """The ``/v1/messages`` body. With thinking on, ``max_tokens`` = answer budget + thinking budget
    and ``temperature``/``top_p`` are left out (Anthropic rejects them alongside thinking)."""
    turns = request.turns
    if not turns:
        raise InvalidRequest("the request has no user message")
    answer_budget = request.max_output_tokens or default_max_tokens
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": answer_budget,
        "messages": [message_dict(m) for m in turns],
    }
    if request.system:
        body["system"] = request.system
    budget = thinking_budget(request)
    if budget:
        body["max_tokens"] = answer_budget + budget
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    else:
        optional = {"temperature": request.temperature, "top_p": request.top_p}
        body.update({k: v for k, v in optional.items() if v is not None})
    if request.response_format is not None:
        name = tool_name(request.response_format)
        body["tools"] = [
            {
                "name": name,
                "description": "Record the answer as JSON matching the input schema.",
                "input_schema": dict(request.response_format.schema),
            }
        ]
        body["tool_choice"] = {"type": "tool", "name": name}
    if stream:
        body["stream"] = True
    return body


# --- response ------------------------------------------------------------------------------


def parse_usage(raw: Any) -> Usage:
    """Read ``usage``; cached input counts as input. Thinking tokens are not reported apart."""
    if not isinstance(raw, Mapping):
        return Usage()
    inputs = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    return Usage(
        input_tokens=sum(int(raw.get(k) or 0) for k in inputs),
        output_tokens=int(raw.get("output_tokens") or 0),
    )


def finish_reason(stop_reason: Any, *, structured: bool) -> str | None:
    """``stop_reason`` in OpenAI words; a forced structured-output tool call is a normal ``stop``."""
    if stop_reason is None:
        return None
    if structured and stop_reason == "tool_use":
        return "stop"
    return STOP_REASONS.get(str(stop_reason), str(stop_reason))


def parse_response(data: Any, *, provider: str, tool: str | None = None, model: str = "") -> ChatResult:
    """Read a message: text blocks are the content, thinking blocks the reasoning, and the
    forced ``tool`` call's input (as JSON text) the content of a structured-output reply."""
    if not isinstance(data, Mapping) or not isinstance(data.get("content"), list):
        raise BadResponse(f"unexpected message body (no 'content' list): {str(data)[:200]}")
    text: list[str] = []
    thinking: list[str] = []
    tool_inputs: list[str] = []
    for block in data["content"]:
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "text":
            text.append(str(block.get("text") or ""))
        elif kind == "thinking":
            thinking.append(str(block.get("thinking") or ""))
        elif kind == "tool_use" and tool is not None and block.get("name") == tool:
            tool_inputs.append(json.dumps(block.get("input") or {}, ensure_ascii=False))
    return ChatResult(
        content=tool_inputs[0] if tool_inputs else "".join(text),
        reasoning="".join(thinking),
        model=str(data.get("model") or model),
        provider=provider,
        finish_reason=finish_reason(data.get("stop_reason"), structured=bool(tool_inputs)),
        usage=parse_usage(data.get("usage")),
    )


# --- streaming -----------------------------------------------------------------------------


class MessagesStream:
    """Accumulates Messages stream events into the final ``ChatResult``; raises on ``error`` events.

    With a forced ``tool``, the tool's ``input_json_delta`` fragments are the text deltas, so the
    joined deltas equal the final content exactly.
    """

    def __init__(self, ctx: ErrorContext, *, tool: str | None = None, model: str = "") -> None:
        self._ctx = ctx
        self._tool = tool
        self._model = model
        self._blocks: dict[int, str] = {}
        self._text: list[str] = []
        self._json: list[str] = []
        self._reasoning: list[str] = []
        self._stop: Any = None
        self._usage: dict[str, Any] = {}
        self._done = False

    def feed(self, event: str, data: Any) -> list[StreamEvent]:
        """Take one SSE event and return its deltas (dispatches on ``data["type"]``)."""
        payload = data if isinstance(data, Mapping) else {}
        kind = str(payload.get("type") or event)
        if kind == "error":
            raise stream_error(payload, self._ctx)
        if kind == "message_start" and isinstance(payload.get("message"), Mapping):
            message = payload["message"]
            self._model = str(message.get("model") or self._model)
            self._usage.update(message.get("usage") or {})
        elif kind == "content_block_start":
            return self._start(payload)
        elif kind == "content_block_delta":
            return self._delta(payload)
        elif kind == "message_delta":
            delta = payload.get("delta") or {}
            self._stop = delta.get("stop_reason", self._stop)
            self._usage.update({k: v for k, v in (payload.get("usage") or {}).items() if v is not None})
        elif kind == "message_stop":
            self._done = True
        return []

    def _start(self, payload: Mapping[str, Any]) -> list[StreamEvent]:
        block = payload.get("content_block") or {}
        index = int(payload.get("index") or 0)
        kind = str(block.get("type") or "")
        if kind == "tool_use":
            kind = "structured" if self._tool is not None and block.get("name") == self._tool else "tool_use"
        self._blocks[index] = kind
        if kind == "text" and block.get("text"):
            return self._add(TextDelta(str(block["text"])))
        if kind == "thinking" and block.get("thinking"):
            return self._add(ReasoningDelta(str(block["thinking"])))
        return []

    def _delta(self, payload: Mapping[str, Any]) -> list[StreamEvent]:
        delta = payload.get("delta") or {}
        kind = self._blocks.get(int(payload.get("index") or 0), "")
        dtype = delta.get("type")
        if dtype == "text_delta" and kind == "text":
            return self._add(TextDelta(str(delta.get("text") or "")))
        if dtype == "thinking_delta":
            return self._add(ReasoningDelta(str(delta.get("thinking") or "")))
        if dtype == "input_json_delta" and kind == "structured":
            fragment = str(delta.get("partial_json") or "")
            self._json.append(fragment)
            return [TextDelta(fragment)] if fragment else []
        return []

    def _add(self, event: TextDelta | ReasoningDelta) -> list[StreamEvent]:
        if not event.text:
            return []
        (self._text if isinstance(event, TextDelta) else self._reasoning).append(event.text)
        return [event]

    def result(self) -> ChatResult:
        """The complete answer; ``BadResponse`` when the stream ended before ``message_stop``."""
        if not self._done:
            raise BadResponse(
                f"{self._ctx.provider} at {self._ctx.address} ended the stream before message_stop",
                provider=self._ctx.provider,
                model=self._ctx.model,
                address=self._ctx.address,
            )
        structured = "structured" in self._blocks.values()
        return ChatResult(
            content="".join(self._json) if structured else "".join(self._text),
            reasoning="".join(self._reasoning),
            model=self._model,
            provider=self._ctx.provider,
            finish_reason=finish_reason(self._stop, structured=structured),
            usage=parse_usage(self._usage),
        )


# --- models --------------------------------------------------------------------------------


def parse_models(data: Any, *, provider: str) -> list[ModelInfo]:
    """Read a ``GET /v1/models`` page: ``{"data": [{"id", "display_name", ...}], "has_more", ...}``."""
    if not isinstance(data, Mapping) or not isinstance(data.get("data"), list):
        raise BadResponse(f"unexpected model list body (no 'data'): {str(data)[:200]}")
    return [
        ModelInfo(
            key=str(m["id"]),
            display_name=str(m["display_name"]) if m.get("display_name") else None,
            publisher="anthropic",
            max_context_length=m.get("max_input_tokens")
            if isinstance(m.get("max_input_tokens"), int)
            else None,
            provider=provider,
        )
        for m in data["data"]
        if isinstance(m, Mapping) and "id" in m
    ]


def next_page(data: Any) -> str | None:
    """The ``after_id`` for the next model page, or ``None`` on the last page."""
    if isinstance(data, Mapping) and data.get("has_more") and data.get("last_id"):
        return str(data["last_id"])
    return None


# --- errors --------------------------------------------------------------------------------


def classify_error(
    status: int, body: Any, ctx: ErrorContext, *, retry_after: float | None = None
) -> ProviderError:
    """The ``ProviderError`` for an Anthropic error response (``{"type": "error", "error": {...}}``)."""
    env = parse_envelope(body, status)
    if detail_code(body) in BILLING_DETAIL_CODES:
        return BillingError(
            f"{ctx.provider} at {ctx.address} refused the call for billing: {env.message}",
            remedy="raise the spend limit or add credits for this account, or use another provider",
            provider=ctx.provider,
            model=ctx.model,
            address=ctx.address,
            status=status,
            code=detail_code(body),
        )
    if status == 400 and OVERFLOW.search(env.message):
        return ContextOverflow(
            env.message,
            provider=ctx.provider,
            model=ctx.model,
            address=ctx.address,
            status=status,
            code=env.type,
        )
    return missing_endpoint(status, env, ctx) or classify(status, body, ctx, retry_after=retry_after)


def detail_code(body: Any) -> str | None:
    """``error.details.error_code``, the finer code newer Anthropic errors carry."""
    error = body.get("error") if isinstance(body, Mapping) else None
    details = error.get("details") if isinstance(error, Mapping) else None
    code = details.get("error_code") if isinstance(details, Mapping) else None
    return code if isinstance(code, str) else None


def stream_error(payload: Mapping[str, Any], ctx: ErrorContext) -> ProviderError:
    """The error an ``error`` event inside a 200 stream describes (status from its type)."""
    error = payload.get("error")
    etype = error.get("type") if isinstance(error, Mapping) else None
    return classify_error(STATUS_FOR.get(str(etype), 500), payload, ctx)

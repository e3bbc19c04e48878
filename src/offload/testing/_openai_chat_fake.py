"""Wire shapes for ``OpenAIFake``: OpenAI error bodies and faults, and Chat Completions objects and chunks.

Error bodies are ``{"error": {"message", "type", "param", "code"}}`` with OpenAI's messages and
codes (``invalid_api_key``, ``model_not_found``, ``rate_limit_exceeded``, ``insufficient_quota``,
``context_length_exceeded``). Completions and chunks carry the same fields OpenAI sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse, Response

from offload.testing._fake_replies import Reply, pieces
from offload.testing._hosted_fake import Fault, sse

FINGERPRINT = "fp_offload_fake"
IMAGE_TOKENS = 85
ROLES = ("system", "developer", "user", "assistant", "tool")
QUOTA = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."
)
STATUS_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: (
        "Incorrect API key provided: sk-***. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    ),
    402: (
        "Insufficient credits: add a payment method or top up.",
        "insufficient_quota",
        "insufficient_quota",
    ),
    403: (
        "Country, region, or territory not supported",
        "request_forbidden",
        "unsupported_country_region_territory",
    ),
    404: (
        "The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    413: ("Request too large.", "invalid_request_error", "request_too_large"),
    429: (
        "Rate limit reached for {model} on requests per min (RPM): Limit 3, Used 3, Requested 1. "
        "Please try again in 1s.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


def error_body(
    message: str, *, type_: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """OpenAI's error envelope."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_response(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON error response."""
    return JSONResponse(dict(body), status_code=status, headers=dict(headers or {}))


def overflow_body(
    window: int, prompt: int, completion: int | None = None, *, param: str = "messages"
) -> dict[str, Any]:
    """The ``context_length_exceeded`` error for a prompt of ``prompt`` tokens."""
    if completion:
        detail = (
            f"you requested {prompt + completion} tokens ({prompt} in the messages, {completion} in the "
            "completion). Please reduce the length of the messages or completion."
        )
    else:
        detail = f"your messages resulted in {prompt} tokens. Please reduce the length of the messages."
    message = f"This model's maximum context length is {window} tokens. However, {detail}"
    return error_body(message, param=param, code="context_length_exceeded")


def fault_error(fault: Fault, model: str, window: int) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, body and headers of an injected failure."""
    headers: dict[str, str] = {}
    if fault.name == "insufficient_quota":
        return 429, error_body(QUOTA, type_="insufficient_quota", code="insufficient_quota"), headers
    if fault.name == "context_length_exceeded":
        return 400, overflow_body(window, window + 1), headers
    if fault.status in (429, 503) and fault.retry_after is not None:
        headers["retry-after"] = f"{fault.retry_after:g}"
    generic = (
        ("Invalid request.", "invalid_request_error", None) if fault.status < 500 else STATUS_ERRORS[500]
    )
    message, type_, code = STATUS_ERRORS.get(fault.status, generic)
    return (
        fault.status,
        error_body(message.format(model=model or "the model"), type_=type_, code=code),
        headers,
    )


def chat_usage(reply: Reply) -> dict[str, Any]:
    """The Chat Completions ``usage`` block."""
    return {
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.input_tokens + reply.output_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reply.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def completion(
    cid: str, created: int, model: str, reply: Reply, reasoning_field: str | None
) -> dict[str, Any]:
    """A whole ``chat.completion`` object (reasoning under ``reasoning_field`` when shown)."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None, "annotations": []}
    if reasoning_field and reply.reasoning:
        message[reasoning_field] = reply.reasoning
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish}],
        "usage": chat_usage(reply),
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }


def chunks(
    cid: str, created: int, model: str, reply: Reply, *, include_usage: bool, reasoning_field: str | None
) -> list[bytes]:
    """The ``chat.completion.chunk`` events: role, deltas, finish, then usage when asked (no ``[DONE]``)."""
    base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
    base |= {"service_tier": "default", "system_fingerprint": FINGERPRINT}
    extra: dict[str, Any] = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse({**base, "choices": [choice], **extra})

    out = [chunk({"role": "assistant", "content": "", "refusal": None})]
    if reasoning_field:
        out += [chunk({reasoning_field: p}) for p in pieces(reply.reasoning)]
    out += [chunk({"content": p}) for p in pieces(reply.text)]
    out.append(chunk({}, reply.finish))
    if include_usage:
        out.append(sse({**base, "choices": [], "usage": chat_usage(reply)}))
    return out

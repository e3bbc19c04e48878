"""Reading error responses of every API family and mapping them onto offload's error tree.

Servers disagree on envelopes: LM Studio's native routes send ``{"error": {message, type, code,
param}}``, its OpenAI-compatible routes sometimes send ``{"error": "plain string"}``, unknown
routes answer **200** with ``{"error": "Unexpected endpoint…"}``, Anthropic wraps errors in
``{"type": "error", "error": {type, message}}``. ``parse_envelope`` reads them all;
``classify`` turns status + envelope into the right ``ProviderError`` subclass.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from offload.errors import (
    AuthError,
    BadResponse,
    BillingError,
    ContextOverflow,
    InvalidRequest,
    ModelNotFound,
    ModelNotLoaded,
    ProviderError,
    RateLimited,
    ResponseNotFound,
    ServerError,
    Timeout,
)

OVERFLOW = re.compile(
    r"tokens to keep from the initial prompt is greater than the context length"
    r"|not enough.*context length|context[_ ]length[_ ]exceeded|maximum context length"
    r"|prompt is too long|exceeds (the )?(model'?s? )?context|context (window|overflow)"
    r"|request_too_large|too many tokens|input is too long",
    re.IGNORECASE,
)
NO_MODELS_LOADED = re.compile(r"no models? (are )?loaded|model is unloaded|failed to load model", re.I)
MODEL_MISSING = re.compile(
    r"invalid model identifier|model .*not found|unknown model|no such model|does not exist", re.I
)
BILLING = re.compile(r"credit balance|insufficient (credits|quota|funds)|payment required|billing", re.I)


@dataclass(frozen=True, slots=True)
class Envelope:
    """The parts of an error body that every family has in some form."""

    message: str
    type: str | None = None
    code: str | None = None
    param: str | None = None


@dataclass(frozen=True, slots=True)
class ErrorContext:
    """Where the error happened, for messages and remedies."""

    provider: str
    address: str
    model: str | None = None
    auth_remedy: str = "check the API key configured for this provider"


def parse_envelope(body: Any, status: int | None = None) -> Envelope:
    """Read any known error body shape; falls back to the raw text or the status."""
    if isinstance(body, Mapping):
        err = body.get("error")
        if isinstance(err, str):
            return Envelope(err)
        if isinstance(err, Mapping):
            return Envelope(
                message=str(err.get("message") or err.get("type") or f"HTTP {status}"),
                type=_str(err.get("type")),
                code=_str(err.get("code")),
                param=_str(err.get("param")),
            )
        if "message" in body:
            return Envelope(str(body["message"]), type=_str(body.get("type")))
        if "detail" in body:
            return Envelope(str(body["detail"]))
    if isinstance(body, str) and body.strip():
        return Envelope(body.strip()[:500])
    return Envelope(f"HTTP {status}" if status else "empty response")


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def error_in_ok_body(body: Any, expected_key: str) -> bool:
    """True for LM Studio's 200-with-``error`` quirk: an ``error`` key and no expected payload."""
    return isinstance(body, Mapping) and "error" in body and expected_key not in body


def classify(
    status: int,
    body: Any,
    ctx: ErrorContext,
    *,
    retry_after: float | None = None,
) -> ProviderError:
    """The ``ProviderError`` subclass that describes this error response."""
    env = parse_envelope(body, status)
    kw: dict[str, Any] = {
        "provider": ctx.provider,
        "model": ctx.model,
        "address": ctx.address,
        "status": status,
        "code": env.code,
    }
    text = env.message
    where = f"{ctx.provider} at {ctx.address}"
    if (
        status in (401, 403)
        or env.code == "invalid_api_key"
        or env.type
        in (
            "authentication_error",
            "permission_error",
        )
    ):
        if status == 402 or BILLING.search(text):
            return BillingError(f"{where} refused the call for billing: {text}", **kw)
        return AuthError(f"{where} rejected the credentials ({status}): {text}", remedy=ctx.auth_remedy, **kw)
    if status == 402 or (env.type == "billing_error") or (status == 400 and BILLING.search(text)):
        return BillingError(
            f"{where} refused the call for billing: {text}",
            remedy="top up or switch the account for this provider",
            **kw,
        )
    if OVERFLOW.search(text) or status == 413:
        return ContextOverflow(text, **kw)
    if env.param == "previous_response_id" or env.code in ("previous_response_not_found",):
        return ResponseNotFound(
            text, remedy="start a new conversation (drop --previous-response-id or use a new name)", **kw
        )
    if NO_MODELS_LOADED.search(text):
        return ModelNotLoaded(
            text, remedy="load a model first (offload load KEY) or enable JIT loading", **kw
        )
    if (
        status == 404
        or env.code == "model_not_found"
        or env.type in ("model_not_found", "not_found_error")
        or (MODEL_MISSING.search(text) and env.param in (None, "model"))
    ):
        return ModelNotFound(text, **kw)
    if status == 408:
        return Timeout(f"{where} timed out: {text}", **kw)
    if status == 429 or env.type == "rate_limit_error":
        return RateLimited(f"{where} is rate limiting: {text}", retry_after=retry_after, **kw)
    if status >= 500 or env.type in ("overloaded_error", "api_error"):
        return ServerError(f"{where} failed ({status}): {text}", retry_after=retry_after, **kw)
    if 400 <= status < 500:
        return InvalidRequest(f"{where} rejected the request: {text}", param=env.param, **kw)
    return BadResponse(f"{where} answered something unexpected ({status}): {text}", **kw)

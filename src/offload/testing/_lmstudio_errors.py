"""Error bodies of the LM Studio fake, per endpoint family, with the recorded texts.

Owns ``ApiError`` (an HTTP error answer: status + JSON body), ``TurnError`` (a failure during
generation, rendered differently by each route family and as an SSE ``error`` event when
streaming) and one constructor per error the fake can give. Texts marked "recorded" are the
exact ones LM Studio 0.4.x sent (``tests/fixtures/lmstudio-recorded``); the others are inferred.
"""

from __future__ import annotations

import http
import re
from collections.abc import Iterable
from typing import Any, Literal

from starlette.responses import JSONResponse

# recorded
CONTEXT_OVERFLOW = (
    "The number of tokens to keep from the initial prompt is greater than the context length. "
    "Try to load the model with a larger context length, or provide a shorter input"
)
# recorded
NO_MODELS_LOADED = (
    "No models loaded. Please load a model in the developer page or use the 'lms load' command."
)
# recorded (issue #2219)
SYSTEM_ROLE_BUG = "Only user, assistant and tool roles are supported, got system"
# recorded
AUTH_MISSING = (
    "An LM Studio API token is required to make requests to this server, but none was provided using the "
    "Authorization header using the 'Bearer' scheme (i.e., 'Authorization: Bearer $LM_API_TOKEN'). "
    "Learn more at: https://lmstudio.ai/docs/developer/core/authentication."
)
AUTH_INVALID = (
    "The LM Studio API token provided in the Authorization header is invalid or has been revoked. "
    "Learn more at: https://lmstudio.ai/docs/developer/core/authentication."
)

AUTH_MALFORMED = (
    "The LM Studio API token provided in the Authorization header is not a valid token "
    "(expected the form sk-lm-XXXXXXXX:YYYYYYYYYYYYYYYYYYYY). "
    "Learn more at: https://lmstudio.ai/docs/developer/core/authentication."
)
#: LM Studio's token format (the official Python SDK validates tokens with the same shape).
TOKEN_FORMAT = re.compile(r"^sk-lm-[A-Za-z0-9]{8}:[A-Za-z0-9]{20}$")

TurnErrorKind = Literal["context_overflow", "system_role", "load_failed", "crash"]


class ApiError(Exception):
    """An error answer: ``status`` and the JSON ``body`` to send."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status)

    @property
    def message(self) -> str:
        error = self.body.get("error")
        if isinstance(error, dict):
            return str(error.get("message", ""))
        return str(error)


class TurnError(Exception):
    """A generation that failed after it was accepted (load, prompt processing or mid-output)."""

    def __init__(self, kind: TurnErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def native(
    status: int,
    message: str,
    type_: str = "invalid_request",
    code: str | None = None,
    param: str | None = None,
) -> ApiError:
    """The native ``/api/v1`` envelope ``{"error": {message, type, code, param}}``."""
    return ApiError(status, {"error": {"message": message, "type": type_, "code": code, "param": param}})


def unrecognized_keys(keys: Iterable[str]) -> ApiError:
    names = ", ".join(f"'{key}'" for key in keys)
    return native(400, f"Unrecognized key(s) in object: {names}", code="unrecognized_keys")


def missing_parameter(name: str) -> ApiError:
    return native(400, f'"{name}" is required', code="missing_required_parameter", param=name)


def invalid_type(name: str, expected: str) -> ApiError:
    return native(400, f'Invalid type for "{name}": expected {expected}', code="invalid_type", param=name)


def invalid_value(name: str, message: str) -> ApiError:
    return native(400, message, code="invalid_value", param=name)


def malformed_json(detail: str) -> ApiError:
    return native(400, f"Invalid JSON in request body: {detail}", code="invalid_json")


def native_model_not_found(name: str) -> ApiError:
    return native(
        404,
        f"Model '{name}' not found. Use GET /api/v1/models to list the downloaded models.",
        type_="model_not_found",
        code="model_not_found",
        param="model",
    )


def instance_not_found(instance_id: str) -> ApiError:
    return native(
        404,
        f"No loaded model instance found with identifier '{instance_id}'.",
        type_="model_not_found",
        code="model_not_found",
        param="instance_id",
    )


def job_not_found(job_id: str) -> ApiError:
    return native(404, f"Download job '{job_id}' not found.", type_="job_not_found", code="job_not_found")


def no_models_loaded() -> ApiError:
    return native(400, NO_MODELS_LOADED, param="model")


def unknown_previous_response(response_id: str) -> ApiError:
    """Recorded 400 for an unknown ``previous_response_id`` on ``/api/v1/chat``."""
    message = (
        f"Could not find stored response for previous_response_id '{response_id}'. Please ensure the ID is "
        "correct. Current previous response auto-deletion policy: Responses older than 30 days are "
        "automatically deleted."
    )
    return ApiError(
        400,
        {
            "error": {
                "message": message,
                "type": "invalid_request",
                "param": "previous_response_id",
                "code": "invalid_value",
            }
        },
    )


def native_turn_error(err: TurnError) -> ApiError:
    """Generation failures on native routes: 500 ``internal_error`` (recorded for context overflow)."""
    return native(500, err.message, type_="internal_error", code="unknown")


def openai_model_not_found(name: str, examples: Iterable[str]) -> ApiError:
    """Recorded 400 of ``/v1/*`` for an unknown model when two or more models are loaded."""
    message = (
        f'Invalid model identifier "{name}". Please specify a valid downloaded model '
        f"(e.g., {', '.join(examples)})."
    )
    return ApiError(
        400,
        {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": "model",
                "code": "model_not_found",
            }
        },
    )


def openai_invalid(message: str, param: str | None = None, status: int = 400) -> ApiError:
    return ApiError(
        status, {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}}
    )


def openai_turn_error(err: TurnError) -> ApiError:
    """``/v1/chat/completions`` engine errors are plain strings; overflow is a recorded 400."""
    return ApiError(400 if err.kind == "context_overflow" else 500, {"error": err.message})


def responses_unknown_previous(response_id: str) -> ApiError:
    """Recorded 400 for an unknown ``previous_response_id`` on ``/v1/responses``."""
    message = (
        f"Prediction history node with id '{response_id}' not found while attempting to build chat "
        "history chain that includes this node."
    )
    body = {
        "message": message,
        "type": "invalid_request_error",
        "param": "previous_response_id",
        "code": "previous_response_not_found",
    }
    return ApiError(400, {"error": body})


def responses_turn_error(err: TurnError) -> ApiError:
    """``/v1/responses`` generation failures: 500 ``internal_error`` (recorded for overflow)."""
    return ApiError(
        500, {"error": {"message": err.message, "type": "internal_error", "param": None, "code": "unknown"}}
    )


def anthropic(status: int, message: str, type_: str = "invalid_request_error") -> ApiError:
    """Anthropic-style envelope for ``/v1/messages`` (shape inferred from Anthropic's API)."""
    return ApiError(status, {"type": "error", "error": {"type": type_, "message": message}})


def anthropic_turn_error(err: TurnError) -> ApiError:
    if err.kind == "context_overflow":
        return anthropic(400, err.message)
    return anthropic(500, err.message, "api_error")


def auth_missing() -> ApiError:
    """Recorded body for a missing token (status 401 as third parties report)."""
    return ApiError(
        401, {"error": {"type": "invalid_request", "code": "invalid_api_key", "message": AUTH_MISSING}}
    )


def auth_invalid(offered: str = "") -> ApiError:
    """401 for a token that is not this server's: malformed (not ``sk-lm-…:…``) or unknown.

    The real server's bodies for these cases are not recorded; the envelope is the recorded
    missing-token one, the messages are ours."""
    message = AUTH_INVALID if TOKEN_FORMAT.match(offered) else AUTH_MALFORMED
    return ApiError(
        401, {"error": {"type": "invalid_request", "code": "invalid_api_key", "message": message}}
    )


def unknown_endpoint(method: str, path: str) -> ApiError:
    """Recorded quirk: an unknown route answers **200** with a string error."""
    return ApiError(200, {"error": f"Unexpected endpoint or method. ({method} {path})"})


def injected_status(status: int) -> ApiError:
    """A native envelope for ``fail_next("status:N")``."""
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    if status == 401:
        return auth_missing()
    type_ = "internal_error" if status >= 500 else "invalid_request"
    return native(status, f"{phrase} (injected fault)", type_=type_, code="unknown")


def load_failed_message(key: str) -> str:
    return (
        f'Failed to load model "{key}". Error: Model loading was stopped due to insufficient system '
        "resources. Continuing to load the model will likely overload your system and cause it to freeze."
    )


CRASH_MESSAGE = "The model has crashed without additional information. (Exit code: null)"

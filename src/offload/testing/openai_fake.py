"""``OpenAIFake``: a faithful loopback fake of the OpenAI API (Chat Completions, Responses, Models).

Serves ``/v1/chat/completions``, ``/v1/responses`` and ``/v1/models`` in OpenAI's exact shapes,
so both offload's providers and the official ``openai`` SDK can talk to it. Errors use
OpenAI's body ``{"error": {"message", "type", "param", "code"}}`` and status codes. Requests
are recorded (``fake.requests``) so tests can prove a hosted API was, or was not, contacted.
Replies are scripted (``fake.script``) or derived from the input; faults are injected with
``fake.fail_next`` (any status, ``rate_limit``, ``insufficient_quota``,
``context_length_exceeded``, ``overloaded``, ``drop``, ``slow:SECONDS``, ``midstream:<fault>``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from offload.testing import _openai_responses_fake as rsp
from offload.testing._fake_replies import count_tokens, plan_reply, prompt_of
from offload.testing._hosted_fake import CutResponse, Fault, HostedFake, SseResponse, pause, sse
from offload.testing._openai_chat_fake import (
    IMAGE_TOKENS,
    ROLES,
    STATUS_ERRORS,
    chunks,
    completion,
    error_body,
    error_response,
    fault_error,
    overflow_body,
)


class OpenAIFake(HostedFake):
    """A loopback OpenAI API. ``base_url`` (``url + "/v1"``) is what OpenAI-style clients take.

    ``reasoning_field`` (``"reasoning_content"`` or ``"reasoning"``) makes reasoning requests
    show their reasoning the way gpt-oss/DeepSeek servers do; by default it stays hidden, as on
    OpenAI, and only ``reasoning_tokens`` reveal it.
    """

    named_faults: ClassVar[Mapping[str, int]] = {
        "invalid_request": 400,
        "context_length_exceeded": 400,
        "invalid_api_key": 401,
        "billing": 402,
        "forbidden": 403,
        "model_not_found": 404,
        "request_too_large": 413,
        "rate_limit": 429,
        "insufficient_quota": 429,
        "server_error": 500,
        "overloaded": 503,
    }
    default_context_window = 128_000

    def __init__(
        self,
        models: Iterable[str] = ("gpt-4o-mini", "gpt-4o"),
        *,
        api_key: str | None = None,
        context_windows: Mapping[str, int] | None = None,
        reasoning_field: str | None = None,
    ) -> None:
        super().__init__(models, api_key=api_key, context_windows=context_windows)
        self.reasoning_field = reasoning_field
        self._stored: dict[str, int] = {}
        self._app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/responses", self._responses, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1/models/{model:path}", self._model, methods=["GET"]),
                Route("/{path:path}", self._unknown, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
            ]
        )

    @property
    def app(self) -> Any:
        """The Starlette app."""
        return self._app

    @property
    def base_url(self) -> str:
        """The base URL OpenAI-style clients take (with ``/v1``)."""
        return self.url + "/v1"

    def reset(self) -> None:
        """Forget scripts, faults, recorded requests and stored responses."""
        super().reset()
        self._stored.clear()

    # --- shared request handling -------------------------------------------------------------------

    def _auth(self, request: Request) -> Response | None:
        if self.api_key is None:
            return None
        header = request.headers.get("authorization", "")
        if not header:
            message = (
                "You didn't provide an API key. You need to provide your API key in an Authorization "
                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
            return error_response(401, error_body(message))
        if header != f"Bearer {self.api_key}":
            key = header.removeprefix("Bearer ")
            masked = f"{key[:3]}{'*' * max(len(key) - 7, 1)}{key[-4:]}"
            message = STATUS_ERRORS[401][0].replace("sk-***", masked)
            return error_response(401, error_body(message, code="invalid_api_key"))
        return None

    async def _begin(self, request: Request) -> tuple[dict[str, Any], Fault | None] | Response:
        """Record, apply faults and auth, and check the body and model; the body on success."""
        body, ok = await self.record(request)
        fault = self.take_fault()
        await pause(fault)
        streaming = isinstance(body, dict) and bool(body.get("stream"))
        if fault is not None and fault.status and not (fault.midstream and streaming):
            model = str(body.get("model") or "") if isinstance(body, dict) else ""
            status, err, headers = fault_error(fault, model, self.window(model))
            return error_response(status, err, headers)
        denied = self._auth(request)
        if denied is not None:
            return denied
        if not ok or not isinstance(body, dict):
            return error_response(400, error_body("We could not parse the JSON body of your request."))
        if not body.get("model"):
            return error_response(400, error_body("you must provide a model parameter"))
        if body["model"] not in self.models:
            message = STATUS_ERRORS[404][0].format(model=body["model"])
            return error_response(404, error_body(message, code="model_not_found"))
        return body, fault

    # --- chat completions --------------------------------------------------------------------------

    def _chat_problem(self, body: Mapping[str, Any]) -> Response | None:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            message = "Missing required parameter: 'messages'." if messages is None else "Invalid 'messages'."
            return error_response(
                400, error_body(message, param="messages", code="missing_required_parameter")
            )
        for i, m in enumerate(messages):
            role = m.get("role") if isinstance(m, Mapping) else None
            if role not in ROLES:
                message = f"Invalid value: '{role}'. Supported values are: {', '.join(map(repr, ROLES))}."
                return error_response(
                    400, error_body(message, param=f"messages[{i}].role", code="invalid_value")
                )
        if body.get("stream_options") is not None and not body.get("stream"):
            message = "The 'stream_options' parameter is only allowed when 'stream' is enabled."
            return error_response(400, error_body(message, param="stream_options"))
        fmt = body.get("response_format")
        if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema" and not fmt.get("json_schema"):
            message = "Missing required parameter: 'response_format.json_schema'."
            param = "response_format.json_schema"
            return error_response(400, error_body(message, param=param, code="missing_required_parameter"))
        return None

    async def _chat(self, request: Request) -> Response:
        begun = await self._begin(request)
        if isinstance(begun, Response):
            return begun
        body, fault = begun
        problem = self._chat_problem(body)
        if problem is not None:
            return problem
        model = str(body["model"])
        everything, last_user, images = prompt_of(body["messages"])
        prompt_tokens = count_tokens(everything) + IMAGE_TOKENS * images
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if prompt_tokens + (limit or 0) > self.window(model):
            return error_response(400, overflow_body(self.window(model), prompt_tokens, limit))
        fmt: Mapping[str, Any] = (
            body["response_format"] if isinstance(body.get("response_format"), Mapping) else {}
        )
        schema = (
            (fmt.get("json_schema") or {}).get("schema", {}) if fmt.get("type") == "json_schema" else None
        )
        effort = body.get("reasoning_effort")
        reply = plan_reply(
            scripted=self.take_reply(),
            prompt=last_user,
            input_tokens=prompt_tokens,
            schema=schema,
            max_tokens=limit,
            reasoning=bool(effort) and effort != "none",
        )
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            events = chunks(
                cid, created, model, reply, include_usage=include_usage, reasoning_field=self.reasoning_field
            )
            return self._cut_stream(events, fault, model)
        whole = completion(cid, created, model, reply, self.reasoning_field)
        if fault is not None and fault.drop:
            return CutResponse(whole)
        return JSONResponse(whole, headers={"x-request-id": f"req_{uuid.uuid4().hex}"})

    def _cut_stream(self, events: list[bytes], fault: Fault | None, model: str) -> Response:
        """The stream ending in ``[DONE]``, cut after three chunks (``drop``), or ending in an error chunk."""
        if fault is not None and fault.drop:
            return SseResponse(events[:3], cut=True)
        if fault is not None and fault.midstream:
            _, err, _ = fault_error(fault, model, self.window(model))
            return SseResponse([*events[:3], sse(err)])
        return SseResponse([*events, b"data: [DONE]\n\n"])

    # --- responses ----------------------------------------------------------------------------------

    def _responses_problem(self, body: Mapping[str, Any]) -> Response | None:
        previous = body.get("previous_response_id")
        if body.get("input") in (None, "", []) and not previous:
            return error_response(400, error_body("Missing required parameter: 'input'.", param="input"))
        if previous is not None and previous not in self._stored:
            message = f"Previous response with id '{previous}' not found."
            code = "previous_response_not_found"
            return error_response(400, error_body(message, param="previous_response_id", code=code))
        return None

    async def _responses(self, request: Request) -> Response:
        begun = await self._begin(request)
        if isinstance(begun, Response):
            return begun
        body, fault = begun
        problem = self._responses_problem(body)
        if problem is not None:
            return problem
        model = str(body["model"])
        given = body.get("input")
        items = [{"role": "user", "content": given}] if isinstance(given, str) else list(given or [])
        system = {"role": "system", "content": body.get("instructions") or ""}
        everything, last_user, images = prompt_of([system, *items])
        prior = self._stored.get(str(body.get("previous_response_id")), 0)
        prompt_tokens = prior + count_tokens(everything) + IMAGE_TOKENS * images
        if prompt_tokens > self.window(model):
            message = (
                "Your input exceeds the context window of this model. Please adjust your input and try again."
            )
            return error_response(400, error_body(message, param="input", code="context_length_exceeded"))
        fmt = (body.get("text") or {}).get("format") or {}
        effort = (body.get("reasoning") or {}).get("effort")
        reply = plan_reply(
            scripted=self.take_reply(),
            prompt=last_user,
            input_tokens=prompt_tokens,
            schema=fmt.get("schema", {}) if fmt.get("type") == "json_schema" else None,
            max_tokens=body.get("max_output_tokens"),
            reasoning=bool(effort) and effort != "none",
        )
        hexes = uuid.uuid4().hex
        draft = rsp.Draft(
            f"resp_{hexes}",
            model,
            int(time.time()),
            body,
            reply,
            self.reasoning_field is not None,
            f"rs_{hexes}",
            f"msg_{hexes}",
        )
        if body.get("store", True):
            self._stored[draft.rid] = prompt_tokens + reply.output_tokens
        if body.get("stream"):
            return self._responses_stream(draft, fault, model)
        if fault is not None and fault.drop:
            return CutResponse(rsp.response_json(draft))
        return JSONResponse(rsp.response_json(draft), headers={"x-request-id": f"req_{hexes}"})

    def _responses_stream(self, draft: rsp.Draft, fault: Fault | None, model: str) -> Response:
        if fault is not None and fault.midstream:
            status, err, _ = fault_error(fault, model, self.window(model))
            chunks, _ = rsp.stream_events(draft, error={**err["error"], "status": status})
            return SseResponse(chunks)
        chunks, cut = rsp.stream_events(draft)
        if fault is not None and fault.drop:
            return SseResponse(chunks[:cut], cut=True)
        return SseResponse(chunks)

    # --- models and the rest -------------------------------------------------------------------------

    def _model_entry(self, model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": 1_700_000_000, "owned_by": "openai"}

    async def _models(self, request: Request) -> Response:
        denied = await self._simple(request)
        if denied is not None:
            return denied
        return JSONResponse({"object": "list", "data": [self._model_entry(m) for m in self.models]})

    async def _model(self, request: Request) -> Response:
        denied = await self._simple(request)
        if denied is not None:
            return denied
        model = request.path_params["model"]
        if model not in self.models:
            message = f"The model '{model}' does not exist"
            return error_response(404, error_body(message, param="model", code="model_not_found"))
        return JSONResponse(self._model_entry(model))

    async def _simple(self, request: Request) -> Response | None:
        """Record, apply faults and auth for a request without a body."""
        await self.record(request)
        fault = self.take_fault()
        await pause(fault)
        if fault is not None and fault.drop:
            return CutResponse({"object": "list", "data": [self._model_entry(m) for m in self.models]})
        if fault is not None and fault.status:
            status, err, headers = fault_error(fault, "", self.default_context_window)
            return error_response(status, err, headers)
        return self._auth(request)

    async def _unknown(self, request: Request) -> Response:
        await self.record(request)
        message = f"Invalid URL ({request.method} {request.url.path})"
        return error_response(404, error_body(message))

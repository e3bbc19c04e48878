"""A faithful LM Studio fake: a real HTTP server answering like LM Studio 0.4.x, for tests and benches.

Owns ``LMStudioFake`` (configuration, the Starlette app, request recording, auth, fault
injection, and the Python-side controls tests use) and the command line
``python -m offload.testing.lmstudio_fake``. Route behaviour lives in the helper modules:
native REST v1 in ``_lmstudio_native``, OpenAI-compatible routes in ``_lmstudio_openai`` and
``_lmstudio_responses``, Anthropic-compatible in ``_lmstudio_anthropic``, the generation engine
in ``_lmstudio_engine``, state in ``_lmstudio_state`` and faults in ``_lmstudio_faults``.

Usage::

    fake = LMStudioFake(token_delay=0.01)
    with fake.serve() as server:
        httpx.post(f"{server.url}/api/v1/chat", json={"model": "google/gemma-3-1b", "input": "Hello"})
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from offload.testing import (
    _lmstudio_anthropic,
    _lmstudio_native,
    _lmstudio_openai,
    _lmstudio_responses,
    _lmstudio_v0,
)
from offload.testing import _lmstudio_errors as errors
from offload.testing._lmstudio_engine import Engine
from offload.testing._lmstudio_errors import ApiError
from offload.testing._lmstudio_faults import Fault, FaultQueue, parse_cli_fault, parse_fault
from offload.testing._lmstudio_http import (
    Call,
    DropResponse,
    Handler,
    NoDelayMiddleware,
    RecordedRequest,
    hold,
    parse_body,
    record,
)
from offload.testing._lmstudio_models import FakeModel, default_models
from offload.testing._lmstudio_state import FakeConfig, FakeStats, Registry, ThreadStore
from offload.testing._lmstudio_text import Responder
from offload.testing._server import RunningServer, start

#: How long a ``timeout`` fault holds a request when neither the client nor the server gives up.
HANG_SECONDS = 3600.0


class LMStudioFake:
    """An in-process LM Studio server double.

    Args:
        models: the downloaded models; default: the five of the recorded ``GET /api/v1/models``
            (``google/gemma-3-1b`` loaded with context 8192 and ``parallel`` slots; the nomic
            embedding loaded).
        auth_token: ``None`` accepts any or no ``Authorization``; a token (LM Studio's format,
            ``sk-lm-`` + 8 + ``:`` + 20 letters or digits, else ``ValueError``) requires
            ``Authorization: Bearer <token>`` (or ``x-api-key`` on ``/v1/messages``), else 401 —
            with a different message for a malformed token and for an unknown one.
        jit: load downloaded, unloaded models on inference requests.
        parallel: slots (concurrent generations) per instance loaded over HTTP; more requests queue.
        token_delay: seconds per generated token (streams emit one delta per token).
        service_time: seconds of prompt processing per request, spent inside a slot.
        load_delay: seconds a load takes (explicit or JIT); streams show ``model_load.progress``.
        responder: produces the reply text from a ``FakeTurn`` (sync or async); default deterministic.
        default_context_length: context of loads that do not name one.
        auto_evict: a JIT load unloads earlier JIT-loaded models (LM Studio's default setting).
        system_prompt_bug: reproduce LM Studio's 500 for ``system_prompt`` with ``previous_response_id``.
        memory_bytes: when set, a load (explicit or JIT) whose model's ``size_bytes`` does not fit
            next to the loaded instances fails with LM Studio's out-of-memory 500 (its "insufficient
            system resources" guardrail text; the exact REST body is not recorded, the shape is the
            native error envelope).

    All knobs live in ``self.config`` and may be changed while serving.
    """

    def __init__(
        self,
        models: Sequence[FakeModel] | None = None,
        *,
        auth_token: str | None = None,
        jit: bool = True,
        parallel: int = 4,
        token_delay: float = 0.0,
        service_time: float = 0.0,
        load_delay: float = 0.0,
        responder: Responder | None = None,
        default_context_length: int = 4096,
        auto_evict: bool = True,
        system_prompt_bug: bool = True,
        memory_bytes: int | None = None,
    ) -> None:
        if auth_token is not None and not errors.TOKEN_FORMAT.match(auth_token):
            raise ValueError(
                f"auth_token must look like a real LM Studio token, sk-lm-XXXXXXXX:YYYYYYYYYYYYYYYYYYYY "
                f"(8 and 20 letters or digits), not {auth_token[:6]!r}…"
            )
        self.config = FakeConfig(
            auth_token=auth_token,
            jit=jit,
            parallel=parallel,
            token_delay=token_delay,
            service_time=service_time,
            load_delay=load_delay,
            responder=responder,
            default_context_length=default_context_length,
            auto_evict=auto_evict,
            system_prompt_bug=system_prompt_bug,
            memory_bytes=memory_bytes,
        )
        self.stats = FakeStats()
        self.requests: list[RecordedRequest] = []
        self._registry = Registry(default_models(parallel) if models is None else models, self.config)
        self._store = ThreadStore()
        self._faults = FaultQueue()
        self._engine = Engine(self.config, self._registry, self._store, self._faults, self.stats)
        self._running: RunningServer | None = None
        self.request_log: Callable[[str], None] | None = None
        """Called with one LM Studio-style line per request (``--log-requests``); bodies only, no headers."""
        self.app = self._build_app()

    # serving

    @contextmanager
    def serve(self, port: int = 0) -> Iterator[RunningServer]:
        """Serve on 127.0.0.1 (a free port unless given) for the ``with`` block."""
        running = start(self.app, port)
        self._running = running
        try:
            yield running
        finally:
            running.stop()
            self._running = None

    def _stopping(self) -> bool:
        running = self._running
        return running is not None and bool(getattr(running._server, "should_exit", False))

    # controls for tests

    def script(self, *replies: str) -> None:
        """Queue exact reply texts, used first-in first-out before the responder."""
        self._engine.add_script(replies)

    def fail_next(self, fault: str, count: int = 1, path: str | None = None) -> None:
        """Inject ``fault`` into the next ``count`` matching requests (see ``_lmstudio_faults``).

        ``path`` is a path prefix; by default faults hit inference and load routes only.
        """
        self._faults.add(parse_fault(fault, count, path))

    def pending_faults(self) -> list[Fault]:
        return self._faults.pending()

    def clear_faults(self) -> None:
        self._faults.clear()

    def loaded_instances(self) -> list[str]:
        """Ids of the loaded instances, in load order."""
        return [instance.id for instance in self._registry.instances()]

    def load(
        self,
        model: str,
        *,
        context_length: int | None = None,
        parallel: int | None = None,
        identifier: str | None = None,
    ) -> str:
        """Load an instance immediately (like ``lms load --parallel N --identifier X``); returns its id."""
        found = self._registry.find_model(model)
        if found is None:
            raise KeyError(f"unknown or not downloaded model {model!r}")
        instance_id = self._registry.reserve_id(found.key, identifier)
        instance = self._registry.add_instance(
            found, context_length=context_length, parallel=parallel, instance_id=instance_id
        )
        return instance.id

    def instance_ttl(self, instance_id: str) -> float | None:
        """The idle TTL of a loaded instance (``None``: stays loaded until unloaded)."""
        instance = self._registry.instance(instance_id)
        if instance is None:
            raise KeyError(f"no loaded instance {instance_id!r}")
        return instance.ttl

    def pass_idle_time(self, seconds: float) -> list[str]:
        """Unload what an idle TTL would have unloaded after ``seconds`` more without requests."""
        return self._registry.expire_idle(time.monotonic() + seconds)

    def unload(self, instance_id: str) -> None:
        if self._registry.remove_instance(instance_id) is None:
            raise KeyError(f"no loaded instance {instance_id!r}")

    def response_ids(self) -> list[str]:
        """Ids of the stored responses (stateful chats), oldest first."""
        return self._store.ids()

    def forget_responses(self, response_id: str | None = None) -> None:
        """Delete one stored response, or all, as if they had expired."""
        self._store.forget(response_id)

    # the app

    def _build_app(self) -> Starlette:
        engine = self._engine
        handlers = [
            *_lmstudio_native.routes(engine),
            *_lmstudio_openai.routes(engine),
            *_lmstudio_responses.routes(engine),
            *_lmstudio_anthropic.routes(engine),
            *_lmstudio_v0.routes(engine),
        ]
        routes = [Route("/lmstudio-greeting", self._greeting, methods=["GET"])]
        routes += [
            Route(path, self._endpoint(handler), methods=[method]) for method, path, handler in handlers
        ]
        return Starlette(
            routes=routes,
            middleware=[Middleware(NoDelayMiddleware)],
            exception_handlers={404: self._unknown, 405: self._unknown},
        )

    def _note(self, request: Request, body: Any) -> None:
        self.stats.requests += 1
        self.requests.append(record(request, body))
        if self.request_log is not None:
            shown = json.dumps(body, ensure_ascii=False) if body is not None else "(none)"
            self.request_log(f"Received request: {request.method} to {request.url.path} with body {shown}")

    async def _greeting(self, request: Request) -> Response:
        self._note(request, None)
        return JSONResponse({"lmstudio": True})

    async def _unknown(self, request: Request, exc: Exception) -> Response:
        body, _ = parse_body(await request.body())
        self._note(request, body)
        return errors.unknown_endpoint(request.method, request.url.path).response()

    def _endpoint(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            body, bad_json = parse_body(await request.body())
            self._note(request, body)
            path = request.url.path
            self._registry.expire_idle(time.monotonic())
            try:
                early, fault = await self._apply_fault(request, self._faults.take(path, "request"), body)
                if early is not None:
                    return early
                self._check_auth(request, path)
                if bad_json is not None:
                    raise bad_json
                if not isinstance(body, dict):
                    raise errors.native(400, "Request body must be a JSON object.")
                return await handler(Call(request, path, body, fault))
            except ApiError as err:
                return err.response()

        return endpoint

    async def _apply_fault(
        self, request: Request, fault: Fault | None, body: Any
    ) -> tuple[Response | None, Fault | None]:
        """(an answer that replaces the normal one, a fault for the generation to apply)."""
        if fault is None:
            return None, None
        if fault.kind == "status":
            return errors.injected_status(fault.status).response(), None
        if fault.kind == "slow":
            alive = await hold(request, fault.seconds, self._stopping)
            return (None if alive else DropResponse()), None
        if fault.kind == "timeout":
            await hold(request, HANG_SECONDS, self._stopping)
            return DropResponse(), None
        streaming = isinstance(body, dict) and body.get("stream") is True
        if fault.kind == "drop" and not streaming:
            return DropResponse(), None
        return None, fault

    def _check_auth(self, request: Request, path: str) -> None:
        token = self.config.auth_token
        if token is None:
            return
        offered = []
        header = request.headers.get("authorization", "")
        if header[:7].lower() == "bearer " and header[7:].strip():
            offered.append(header[7:].strip())
        if path == "/v1/messages" and request.headers.get("x-api-key"):
            offered.append(request.headers["x-api-key"])
        if not offered:
            raise errors.auth_missing()
        if token not in offered:
            raise errors.auth_invalid(offered[0])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m offload.testing.lmstudio_fake", description="Run the LM Studio fake on 127.0.0.1."
    )
    parser.add_argument("--port", type=int, default=1234, help="port to bind (0 picks a free one)")
    parser.add_argument("--parallel", type=int, default=4, help="slots per loaded instance")
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds per generated token")
    parser.add_argument("--service-time", type=float, default=0.0, help="seconds per request inside a slot")
    parser.add_argument("--load-delay", type=float, default=0.0, help="seconds per model load")
    parser.add_argument("--auth-token", default=None, help="require this bearer token")
    parser.add_argument("--no-jit", action="store_true", help="turn off just-in-time model loading")
    parser.add_argument("--memory-gb", type=float, default=None, help="memory budget for loaded models")
    parser.add_argument(
        "--log-requests", action="store_true", help="print each request (method, path, body) on stderr"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND[xN][@PATH]",
        help="inject a fault into the next N matching requests: drop, status:CODE, slow:SECONDS, timeout, "
        "context_overflow, crash, load_failure (e.g. status:503x2@/api/v1/chat); repeatable",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; prints ``listening on http://127.0.0.1:PORT`` once ready."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        faults = [parse_cli_fault(text) for text in args.fault]
        fake = LMStudioFake(
            auth_token=args.auth_token,
            jit=not args.no_jit,
            parallel=args.parallel,
            token_delay=args.token_delay,
            service_time=args.service_time,
            load_delay=args.load_delay,
            memory_bytes=None if args.memory_gb is None else int(args.memory_gb * 1e9),
        )
    except ValueError as exc:
        parser.error(str(exc))
    for fault in faults:
        fake._faults.add(fault)
    if args.log_requests:
        fake.request_log = lambda line: print(line, file=sys.stderr, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with fake.serve(args.port) as server:
        print(f"listening on {server.url}", flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

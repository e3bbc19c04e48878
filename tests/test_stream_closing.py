"""Streams close their whole chain of async generators in the task that reads them.

A stream that fails mid-way, is cut, is refused before its first byte, or is left early by its
reader must not leave a suspended generator for the garbage collector: asyncio would then close
it later from another task and report "an error occurred during closing of asynchronous
generator" through the loop's exception handler. Each test records what reaches that handler
(after ``gc.collect()`` and a few loop turns) and expects nothing; right after each call it also
checks that no HTTP connection is still lent to an unreleased response.

Real HTTP on 127.0.0.1 against the package's fakes (LM Studio, OpenAI, Anthropic).
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import aclosing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

import offload as offload_package
from offload.config import parse_config
from offload.errors import OffloadError
from offload.offloader import Offloader
from offload.testing import AnthropicFake, LMStudioFake, OpenAIFake
from offload.types import TextDelta
from tests.e2e import offload

OPENAI_KEY = "sk-test-openai-0123456789"
ANTHROPIC_KEY = "sk-ant-test-0123456789"
PROMPT = "Stream a short sentence about rivers."
OFFLOAD_SRC = str(Path(offload_package.__file__).parent)
TESTING_SRC = str(Path(offload_package.__file__).parent / "testing")


@pytest.fixture(scope="module")
def lmstudio() -> Iterator[tuple[LMStudioFake, str]]:
    fake = LMStudioFake(parallel=8)
    with fake.serve() as server:
        yield fake, server.url


@pytest.fixture(scope="module")
def openai_fake() -> Iterator[OpenAIFake]:
    with OpenAIFake(("gpt-4o-mini",), api_key=OPENAI_KEY) as fake:
        yield fake


@pytest.fixture(scope="module")
def anthropic_fake() -> Iterator[AnthropicFake]:
    with AnthropicFake(("claude-haiku-4-5",), api_key=ANTHROPIC_KEY) as fake:
        yield fake


@pytest.fixture
def fakes(
    lmstudio: tuple[LMStudioFake, str], openai_fake: OpenAIFake, anthropic_fake: AnthropicFake
) -> tuple[LMStudioFake, OpenAIFake, AnthropicFake]:
    lmstudio[0].clear_faults()
    openai_fake.reset()
    anthropic_fake.reset()
    gc.collect()  # garbage of earlier tests is theirs: collect it before this test starts watching
    return lmstudio[0], openai_fake, anthropic_fake


@dataclass
class Watch:
    """What the loop saw: exception-handler reports, and offload's async generators that were
    left unfinished to asyncio's finalizer hook (garbage collection, loop shutdown), by name."""

    reports: list[dict[str, Any]] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)

    def messages(self) -> list[str]:
        return [f"{c.get('message')}: {c.get('exception')!r}" for c in self.reports]


@contextmanager
def watching() -> Iterator[Watch]:
    """Record reports and abandoned generators on the running loop (inside the test's own
    coroutine: the loop puts its own generator hooks back after every ``run_until_complete``)."""
    loop = asyncio.get_running_loop()
    seen = Watch()
    handler = loop.get_exception_handler()
    hooks = sys.get_asyncgen_hooks()
    loop_finalizer = hooks.finalizer
    assert loop_finalizer is not None

    def finalizer(agen: Any) -> None:
        where = agen.ag_code.co_filename
        if OFFLOAD_SRC in where and TESTING_SRC not in where:
            seen.abandoned.append(agen.__qualname__)
        loop_finalizer(agen)

    loop.set_exception_handler(lambda _loop, context: seen.reports.append(context))
    sys.set_asyncgen_hooks(firstiter=hooks.firstiter, finalizer=finalizer)
    try:
        yield seen
    finally:
        sys.set_asyncgen_hooks(*hooks)
        loop.set_exception_handler(handler)


async def settle() -> None:
    """Collect garbage and let the loop run what that scheduled (finalizers' ``aclose`` tasks)."""
    for _ in range(3):
        gc.collect()
        for _ in range(5):
            await asyncio.sleep(0)


def lent() -> int:
    """HTTP connections handed to responses that were not released yet, over every open aiohttp
    connector in this process (aiohttp keeps them in ``_acquired``; it has no public counter)."""
    return sum(
        len(obj._acquired)
        for obj in gc.get_objects()
        if isinstance(obj, aiohttp.BaseConnector) and not obj.closed
    )


def offloader(
    lms_url: str, openai_fake: OpenAIFake, anthropic_fake: AnthropicFake, primary: str, *fallbacks: str
) -> Offloader:
    raw = {
        "agents": {"defaults": {"model": {"primary": primary, "fallbacks": list(fallbacks)}}},
        "models": {
            "mode": "replace",
            "providers": {
                "lmstudio": {"baseUrl": lms_url, "api": "lmstudio"},
                "openai": {
                    "baseUrl": openai_fake.base_url,
                    "api": "openai-completions",
                    "apiKey": OPENAI_KEY,
                    "local": False,
                    "models": [{"id": "gpt-4o-mini"}],
                },
                "anthropic": {
                    "baseUrl": anthropic_fake.url,
                    "api": "anthropic-messages",
                    "apiKey": ANTHROPIC_KEY,
                    "local": False,
                    "models": [{"id": "claude-haiku-4-5"}],
                },
            },
        },
    }
    return Offloader(parse_config(raw, env={}), ledger=False, notify=lambda _m: None)


async def drain(off: Offloader) -> str:
    """Read one whole stream; the error kind when it fails, else ``ok``."""
    try:
        async for _ in off.stream(PROMPT, max_output_tokens=32):
            pass
    except OffloadError as exc:
        return exc.kind
    return "ok"


@pytest.mark.parametrize("fault", ["crash", "drop", "status:503"])
async def test_lmstudio_stream_failures_close_in_the_reading_task(
    fakes: tuple[LMStudioFake, OpenAIFake, AnthropicFake], lmstudio: tuple[LMStudioFake, str], fault: str
) -> None:
    lms, oai, claude = fakes
    with watching() as watch:
        async with offloader(lmstudio[1], oai, claude, "lmstudio/auto") as off:
            lms.fail_next(fault, count=3)
            kind = await drain(off)
            in_use = lent()
            await settle()
        await settle()
    assert kind != "ok"
    assert in_use == 0
    assert watch.abandoned == []
    assert watch.messages() == []


@pytest.mark.parametrize("model", ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"])
@pytest.mark.parametrize("fault", ["midstream:overloaded", "drop"])
async def test_hosted_stream_failures_close_in_the_reading_task(
    fakes: tuple[LMStudioFake, OpenAIFake, AnthropicFake],
    lmstudio: tuple[LMStudioFake, str],
    model: str,
    fault: str,
) -> None:
    _, oai, claude = fakes
    fake = oai if model.startswith("openai") else claude
    with watching() as watch:
        async with offloader(lmstudio[1], oai, claude, model) as off:
            fake.fail_next(fault, count=3)
            kind = await drain(off)
            in_use = lent()
            await settle()
        await settle()
    assert kind != "ok"
    assert in_use == 0
    assert watch.abandoned == []
    assert watch.messages() == []


@pytest.mark.parametrize("model", ["lmstudio/auto", "openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"])
async def test_a_reader_that_leaves_early_closes_the_stream(
    fakes: tuple[LMStudioFake, OpenAIFake, AnthropicFake], lmstudio: tuple[LMStudioFake, str], model: str
) -> None:
    _, oai, claude = fakes
    with watching() as watch:
        async with offloader(lmstudio[1], oai, claude, model) as off:
            async with aclosing(off.stream(PROMPT, max_output_tokens=64)) as stream:
                async for event in stream:
                    if isinstance(event, TextDelta):
                        break
            in_use = lent()
            await settle()
        await settle()
    assert in_use == 0
    assert watch.abandoned == []
    assert watch.messages() == []


async def test_a_stream_left_unclosed_mid_way_is_finalized_without_errors(
    fakes: tuple[LMStudioFake, OpenAIFake, AnthropicFake], lmstudio: tuple[LMStudioFake, str]
) -> None:
    """A careless reader (``break`` and forget): the collector finalizes every generator of the
    chain, each in a task of its own and in no set order; none of them may fail."""
    _, oai, claude = fakes
    with watching() as watch:
        async with offloader(lmstudio[1], oai, claude, "lmstudio/auto") as off:
            stream = off.stream(PROMPT, max_output_tokens=64)
            async for event in stream:
                if isinstance(event, TextDelta):
                    break
            del stream
            await settle()
            in_use = lent()
        await settle()
    assert "Offloader._events" in watch.abandoned  # the case under test: left to the collector
    assert in_use == 0
    assert watch.messages() == []


@pytest.mark.parametrize("model", ["lmstudio/auto", "openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"])
def test_a_stream_still_open_when_the_loop_ends_closes_without_errors(
    lmstudio: tuple[LMStudioFake, str], openai_fake: OpenAIFake, anthropic_fake: AnthropicFake, model: str
) -> None:
    """``asyncio.run`` closes every generator still open at its end, all at once (what a command
    does after ``| head``); the chain must stand being closed in any order."""
    kept: list[Any] = []

    async def main() -> list[str]:
        with watching() as watch:
            async with offloader(lmstudio[1], openai_fake, anthropic_fake, model) as off:
                stream = off.stream(PROMPT, max_output_tokens=64)
                async for event in stream:
                    if isinstance(event, TextDelta):
                        break
                kept.append(stream)  # still referenced when asyncio.run shuts the loop down
        asyncio.get_running_loop().set_exception_handler(lambda _loop, context: seen.append(context))
        return watch.abandoned

    seen: list[dict[str, Any]] = []
    asyncio.run(main())
    kept.clear()
    assert [f"{c.get('message')}: {c.get('exception')!r}" for c in seen] == []


async def test_a_503_before_the_first_byte_fails_over_cleanly(
    fakes: tuple[LMStudioFake, OpenAIFake, AnthropicFake], lmstudio: tuple[LMStudioFake, str]
) -> None:
    lms, oai, claude = fakes
    with watching() as watch:
        async with offloader(lmstudio[1], oai, claude, "lmstudio/auto", "openai/gpt-4o-mini") as off:
            lms.fail_next("status:503", count=3)
            stream = off.stream(PROMPT, max_output_tokens=32)
            text = "".join([e.text async for e in stream if isinstance(e, TextDelta)])
            in_use = lent()
            routed = stream.routed
            await settle()
        await settle()
    assert text
    assert routed is not None
    assert routed.candidate.name == "openai/gpt-4o-mini"
    assert in_use == 0
    assert watch.abandoned == []
    assert watch.messages() == []


@pytest.mark.parametrize("fault", ["crash", "drop"])
def test_the_cli_reports_a_failed_stream_without_finalizer_noise(
    lmstudio: tuple[LMStudioFake, str], fault: str
) -> None:
    """``offload ask --stream`` installs no filter on the loop's reports: a stream that fails
    mid-way leaves nothing for asyncio to complain about."""
    fake, url = lmstudio
    fake.clear_faults()
    fake.fail_next(fault, count=3)
    run = offload("ask", "--stream", "--no-fallback", PROMPT, env={"LM_STUDIO_API_URL": url})
    fake.clear_faults()
    assert run.code != 0
    assert "asynchronous generator" not in run.err
    assert "Traceback" not in run.err


# --- the gateway relaying a stream to a client that goes away ---------------------------------


@contextmanager
def gateway_on(
    loop: asyncio.AbstractEventLoop, lms_url: str, claude: AnthropicFake, gpt: OpenAIFake
) -> Iterator[str]:
    """A gateway (in front of the fakes) served by ``loop``, running in a thread of its own."""
    from offload.gateway.server import start_gateway
    from tests.gateway_stack import gateway_config

    thread = threading.Thread(target=loop.run_forever, name="stream-closing-gateway", daemon=True)
    thread.start()
    config = gateway_config(lms_url, claude.url, gpt.url)
    gw = asyncio.run_coroutine_threadsafe(start_gateway(config, port=0, ledger=False), loop).result(60)
    try:
        yield gw.url
    finally:
        asyncio.run_coroutine_threadsafe(gw.close(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(60)
        loop.close()


def test_the_gateway_closes_a_relayed_stream_when_its_client_leaves(
    openai_fake: OpenAIFake, anthropic_fake: AnthropicFake
) -> None:
    """The client reads a few chunks of a long local answer and hangs up: the gateway closes the
    whole chain in the handler's task, so the LM Studio fake sees its request end (a free slot)
    long before the answer would have, and the gateway's loop reports nothing."""
    slow = LMStudioFake(token_delay=0.05)
    slow.script(" ".join(f"word{i}" for i in range(4000)))  # minutes of streaming at that pace
    loop = asyncio.new_event_loop()
    watch: list[Watch] = []
    on = watching()  # entered and left on the gateway's loop, in its thread

    async def start_watching() -> None:
        watch.append(on.__enter__())

    async def stop_watching() -> None:
        await settle()
        on.__exit__(None, None, None)

    with slow.serve() as server, gateway_on(loop, server.url, anthropic_fake, openai_fake) as url:
        asyncio.run_coroutine_threadsafe(start_watching(), loop).result(30)
        body = {"model": "gpt-local", "stream": True, "messages": [{"role": "user", "content": "long"}]}
        with (
            httpx.Client(timeout=60) as client,
            client.stream("POST", f"{url}/v1/chat/completions", json=body) as response,
        ):
            assert response.status_code == 200
            lines = response.iter_lines()
            assert any("word" in next(lines) for _ in range(5))
            busy = slow.stats.active
        deadline = time.monotonic() + 60  # the whole answer would take over three minutes
        while slow.stats.active and time.monotonic() < deadline:
            time.sleep(0.05)
        freed = slow.stats.active
        asyncio.run_coroutine_threadsafe(stop_watching(), loop).result(30)
    print("DEBUG", busy, freed, watch[0].abandoned, watch[0].messages())
    assert busy == 1
    assert freed == 0
    assert watch[0].abandoned == []
    assert watch[0].messages() == []

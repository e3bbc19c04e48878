"""``offload.batch`` against real loopback servers: slots, resume, cache, failures, several servers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import offload
from offload.batching.output import read_rows
from offload.config import Config, parse_config
from offload.errors import Unreachable
from offload.offloader import Offloader
from offload.routing.retry import RetryPolicy
from offload.testing import FakeTurn, LMStudioFake, OpenAIFake, serve
from offload.testing._lmstudio_text import default_responder

TEXT = "The committee met on Tuesday and approved the new budget for the library renovation. " * 4


def items(n: int, prefix: str = "i", **fields: Any) -> list[dict[str, Any]]:
    return [{"id": f"{prefix}{k}", "text": f"Item {k}. {TEXT}", **fields} for k in range(n)]


def lms_config(*urls: str, fallbacks: Sequence[str] = (), cloud: str | None = None) -> Config:
    """LM Studio at ``urls``; with ``cloud`` (an OpenAI-style base URL) a hosted ``cloud/big``."""
    providers: dict[str, Any] = {"lmstudio": {"baseUrls": list(urls), "api": "lmstudio"}}
    if cloud:
        providers["cloud"] = {
            "baseUrl": cloud,
            "api": "openai-completions",
            "apiKey": "sk-test-cloud",
            "local": False,
            "models": [{"id": "big"}],
        }
    return parse_config(
        {
            "agents": {"defaults": {"model": {"primary": "lmstudio/auto", "fallbacks": list(fallbacks)}}},
            "models": {"mode": "replace", "providers": providers},
        },
        env={},
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def lms() -> Iterator[tuple[LMStudioFake, str]]:
    fake = LMStudioFake(parallel=4, service_time=0.01)
    with fake.serve() as server:
        yield fake, server.url


async def test_every_item_once_on_every_slot(lms: tuple[LMStudioFake, str], tmp_path: Path) -> None:
    fake, url = lms
    out = tmp_path / "out.jsonl"
    run = offload.batch("summarize", items(40), output=out, config=lms_config(url), length="sentence")
    results = [r async for r in run]
    assert sorted(r.id for r in results) == sorted(f"i{k}" for k in range(40))
    assert all(r.ok and r.result is not None for r in results)
    rows = read_rows(out)
    assert [r["id"] for r in rows] == [r.id for r in results]  # written in completion order, once each
    first = rows[0]
    assert first["model"] == "lmstudio/google/gemma-3-1b"
    assert first["server"] == url
    assert first["tokens"]["output"] > 0
    assert first["error"] is None
    assert first["cached"] is False
    assert fake.stats.max_concurrency == 4  # the loaded instance's parallel slots, all used…
    assert fake.stats.max_queued <= 2  # …with at most two (half the slots) waiting in its queue
    assert run.fleet is not None
    assert run.fleet.pinned == {"lmstudio": "google/gemma-3-1b"}
    endpoint = run.fleet.sets["lmstudio"].endpoints[0]
    assert (endpoint.limit, endpoint.source, endpoint.served) == (4, "LM Studio parallel", 40)
    assert run.tally.done == 40
    assert run.tally.failed == 0
    assert fake.response_ids() == []  # nothing stored server-side (store=False)


async def test_rerun_skips_written_ids_and_the_cache_answers_identical_items(
    lms: tuple[LMStudioFake, str], tmp_path: Path
) -> None:
    fake, url = lms
    cfg = lms_config(url)
    out = tmp_path / "out.jsonl"
    await offload.batch("classify", items(12), output=out, config=cfg, labels=["budget", "other"]).run()
    calls = fake.stats.generations
    again = offload.batch("classify", items(12), output=out, config=cfg, labels=["budget", "other"])
    assert [r async for r in again] == []
    assert again.tally.skipped == 12
    assert fake.stats.generations == calls  # no server contact at all
    other = tmp_path / "other.jsonl"
    cached = offload.batch("classify", items(12), output=other, config=cfg, labels=["budget", "other"])
    results = [r async for r in cached]
    assert len(results) == 12
    assert all(r.cached for r in results)
    assert fake.stats.generations == calls + 1  # only the warm-up request
    assert {r["output"]["label"] for r in read_rows(other)} <= {"budget", "other"}
    fresh = offload.batch(
        "classify",
        items(12),
        output=tmp_path / "fresh.jsonl",
        config=cfg,
        labels=["budget", "other"],
        cache=False,
    )
    assert not any(r.cached for r in [r async for r in fresh])
    assert fake.stats.generations == calls + 1 + 13
    relabeled = offload.batch("classify", items(12), config=cfg, labels=["budget", "sports"])
    assert not any(r.cached for r in [r async for r in relabeled])  # another request: another key


def empty_for_flagged(turn: FakeTurn) -> str:
    """Empty answers (a gate failure) for inputs marked FLAG, re-asks included."""
    flagged = "FLAG" in turn.user_text or any("FLAG" in m.content for m in turn.history)
    return "" if flagged else default_responder(turn)


async def test_item_failures_are_written_with_their_error_and_the_run_goes_on(tmp_path: Path) -> None:
    fake = LMStudioFake(parallel=2, responder=empty_for_flagged)
    data = items(10)
    for k in (2, 5):
        data[k]["text"] = "FLAG " + data[k]["text"]
    out = tmp_path / "out.jsonl"
    with fake.serve() as server:
        run = offload.batch("rewrite", data, output=out, config=lms_config(server.url), instruction="shorter")
        results = {r.id: r async for r in run}
    assert {k for k, r in results.items() if not r.ok} == {"i2", "i5"}
    failed = results["i2"].row["error"]
    assert failed["kind"] == "quality_gate"
    assert "the answer is empty" in failed["message"]
    assert results["i2"].error is not None
    assert results["i2"].error.exit_code == 12
    assert run.tally.failed == 2
    assert run.tally.done == 10
    assert run.tally.errors == {"quality_gate": 2}
    assert len(read_rows(out)) == 10


async def test_gate_failures_escalate_to_the_hosted_fallback(tmp_path: Path) -> None:
    fake = LMStudioFake(parallel=2, responder=empty_for_flagged)
    data = items(6)
    data[3]["text"] = "FLAG " + data[3]["text"]
    with fake.serve() as server, OpenAIFake(["big"], api_key="sk-test-cloud") as cloud:
        cloud.script("A short summary from the cloud.")
        config = lms_config(server.url, fallbacks=["cloud/big"], cloud=cloud.base_url)
        off = Offloader(config, state_dir=tmp_path)
        async with off:
            run = offload.batch("summarize", data, offloader=off, length="sentence")
            results = {r.id: r async for r in run}
        asked = [r for r in cloud.requests if r.path.endswith("/chat/completions")]
    assert results["i3"].row["model"] == "cloud/big"
    assert results["i3"].row["escalated"] is True
    assert results["i3"].row["output"] == "A short summary from the cloud."
    assert results["i3"].row["escalations"] == ["lmstudio/auto: the answer is empty"]
    assert all(r.row["model"].startswith("lmstudio/") for k, r in results.items() if k != "i3")
    assert run.tally.escalated == 1
    assert len(asked) == 1


@contextlib.contextmanager
def fake_process(parallel: int, service_time: float) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The LM Studio fake in its own process (so it can die abruptly); yields it and its URL."""
    command = [
        *(sys.executable, "-m", "offload.testing.lmstudio_fake", "--port", "0"),
        *("--parallel", str(parallel), "--service-time", str(service_time)),
    ]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on "), line
        yield proc, line.split()[-1]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


async def test_a_server_killed_mid_run_has_its_in_flight_items_answered_by_the_other(tmp_path: Path) -> None:
    b = LMStudioFake(parallel=4, service_time=0.05)
    out = tmp_path / "out.jsonl"
    with fake_process(4, 0.2) as (proc_a, url_a), b.serve() as server_b:
        run = offload.batch("summarize", items(80), output=out, config=lms_config(url_a, server_b.url))
        seen = 0
        async for result in run:
            assert result.ok, result.row
            seen += 1
            if seen == 15:
                proc_a.send_signal(signal.SIGKILL)
    rows = read_rows(out)
    assert sorted(r["id"] for r in rows) == sorted(f"i{k}" for k in range(80))
    assert len(rows) == 80
    by_a = sum(1 for r in rows if r["server"] == url_a)
    by_b = sum(1 for r in rows if r["server"] == server_b.url)
    assert by_a + by_b == 80
    assert by_b > by_a > 0
    assert run.fleet is not None
    dead = next(ep for ep in run.fleet.sets["lmstudio"].endpoints if ep.url == url_a)
    assert dead.lost >= 1  # requests cut off on A when it died, each answered by B instead
    assert dead.downs >= 1
    assert dead.last_error is not None
    assert "unreachable" in dead.last_error
    assert run.tally.failed == 0


async def test_no_server_stops_the_run_without_writing_anything(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    off = Offloader(
        lms_config(f"http://127.0.0.1:{closed_port()}"), state_dir=tmp_path, retry=RetryPolicy(attempts=1)
    )
    async with off:
        run = offload.batch("summarize", items(30), output=out, offloader=off, patience=0)
        with pytest.raises(Unreachable, match=r"connection refused|not answering"):
            async for _ in run:
                pass
    assert out.read_bytes() == b""
    assert run.aborted is not None
    assert run.tally.done == 0


async def test_a_server_outage_shorter_than_the_patience_costs_no_item(
    lms: tuple[LMStudioFake, str], tmp_path: Path
) -> None:
    fake, url = lms
    out = tmp_path / "out.jsonl"
    run = offload.batch("summarize", items(20), output=out, config=lms_config(url))
    seen = 0
    async for result in run:
        assert result.ok, result.row
        seen += 1
        if seen == 3:
            fake.fail_next("drop", count=5)  # every request for a while is cut off
    rows = read_rows(out)
    assert sorted(r["id"] for r in rows) == sorted(f"i{k}" for k in range(20))
    assert run.aborted is None
    assert fake.pending_faults() == []
    assert run.fleet is not None
    assert run.fleet.sets["lmstudio"].endpoints[0].lost >= 1


async def test_empty_input_contacts_no_server(tmp_path: Path) -> None:
    src = tmp_path / "empty.jsonl"
    src.write_text("")
    run = offload.batch(
        "summarize",
        str(src),
        output=tmp_path / "out.jsonl",
        config=lms_config(f"http://127.0.0.1:{closed_port()}"),
    )
    assert [r async for r in run] == []
    assert run.tally.total == 0
    assert run.fleet is None
    assert (tmp_path / "out.jsonl").read_bytes() == b""


async def test_a_huge_item_is_split_for_summaries_and_rejected_clearly_otherwise(
    lms: tuple[LMStudioFake, str], tmp_path: Path
) -> None:
    _, url = lms
    huge = {"id": "huge", "text": " ".join(f"Sentence {k} says the budget grew." for k in range(6000))}
    data = [*items(3), huge]
    summaries = {r.id: r async for r in offload.batch("summarize", data, config=lms_config(url))}
    assert summaries["huge"].ok
    assert summaries["huge"].row["parts"] > 1
    assert all(summaries[f"i{k}"].row["parts"] == 1 for k in range(3))
    labels = {
        r.id: r async for r in offload.batch("classify", data, config=lms_config(url), labels=["a", "b"])
    }
    error = labels["huge"].row["error"]
    assert error["kind"] == "context_overflow"
    assert "8192" in error["message"]
    assert all(labels[f"i{k}"].ok for k in range(3))


async def test_ask_prompt_templates_and_per_item_options(lms: tuple[LMStudioFake, str]) -> None:
    fake, url = lms
    data = [{"id": 1, "title": "Budget", "text": "Approved."}, {"id": 2, "title": "Roof", "text": "Leaks."}]
    asked = [
        r
        async for r in offload.batch(
            "ask", data, config=lms_config(url), prompt="Reply with exactly: {title} ok", gate="off"
        )
    ]
    assert sorted(r.output for r in asked) == ["Budget ok", "Roof ok"]
    langs = [
        {"id": "x", "text": "Good morning, friends.", "lang": "German"},
        {"id": "y", "text": "Hi.", "lang": "French"},
    ]
    await offload.batch("translate", langs, config=lms_config(url), target="{lang}", gate="off").run()
    prompts = [str(r.body) for r in fake.requests if r.path.endswith("chat")]
    assert any("into German" in p for p in prompts)
    assert any("into French" in p for p in prompts)


async def test_interrupt_cancels_in_flight_items_and_a_rerun_completes_exactly_once(
    lms: tuple[LMStudioFake, str], tmp_path: Path
) -> None:
    fake, url = lms
    fake.config.service_time = 0.03
    out = tmp_path / "out.jsonl"
    run = offload.batch("summarize", items(60), output=out, config=lms_config(url))
    got = 0
    async for _ in run:
        got += 1
        if got == 10:
            run.interrupt()
    written = read_rows(out)
    assert run.interrupted
    assert len(written) == got < 60
    rest = offload.batch("summarize", items(60), output=out, config=lms_config(url), cache=False)
    await rest.run()
    rows = read_rows(out)
    assert sorted(r["id"] for r in rows) == sorted(f"i{k}" for k in range(60))
    assert len(rows) == 60
    assert rest.tally.skipped == got


# --- an OpenAI-style server (llama.cpp-like), with and without a slot count ------------------------


class SlotServer:
    """A tiny OpenAI-compatible server with ``slots`` parallel slots and optional ``/slots``."""

    def __init__(self, slots: int, service: float, *, expose: bool) -> None:
        self.slots = slots
        self.service = service
        self.in_flight = 0
        self.max_in_flight = 0
        self.gate = asyncio.Semaphore(slots)
        routes = [Route("/v1/chat/completions", self.chat, methods=["POST"])]
        if expose:
            routes.append(Route("/slots", self.slot_list, methods=["GET"]))
        self.app = Starlette(routes=routes)

    async def slot_list(self, request: Request) -> JSONResponse:
        return JSONResponse([{"id": k, "is_processing": False} for k in range(self.slots)])

    async def chat(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            async with self.gate:
                await asyncio.sleep(self.service)
        finally:
            self.in_flight -= 1
        text = "A short summary."
        return JSONResponse(
            {
                "id": "c",
                "object": "chat.completion",
                "model": body.get("model", "m"),
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 50, "completion_tokens": 4, "total_tokens": 54},
            }
        )


def openai_config(url: str) -> Config:
    return parse_config(
        {
            "agents": {"defaults": {"model": {"primary": "llama/m"}}},
            "models": {
                "mode": "replace",
                "providers": {
                    "llama": {"baseUrl": f"{url}/v1", "api": "openai-completions", "models": [{"id": "m"}]}
                },
            },
        },
        env={},
    )


async def test_llama_cpp_slots_endpoint_sets_the_concurrency() -> None:
    server = SlotServer(3, 0.01, expose=True)
    with serve(server.app) as running:
        cfg = openai_config(f"http://127.0.0.1:{closed_port()}")
        run = offload.batch("summarize", items(30), config=cfg, base_urls=[running.url], gate="off")
        assert len([r async for r in run]) == 30
    assert run.fleet is not None
    ep = run.fleet.sets["llama"].endpoints[0]
    assert (ep.url, ep.limit, ep.source) == (f"{running.url}/v1", 3, "llama.cpp /slots")
    assert server.max_in_flight == 4  # three slots busy, one request (3 // 2) standing by


async def test_without_a_slot_count_concurrency_is_probed_upwards() -> None:
    # 0.1 s per request: each probe window spans ~0.2-0.4 s, so doubling 2 -> 4 slots shows as a
    # ~2x rate even on a noisy machine (the probe's own arithmetic is unit-tested with fixed times).
    server = SlotServer(4, 0.1, expose=False)
    with serve(server.app) as running:
        run = offload.batch("summarize", items(120), config=openai_config(running.url), gate="off")
        assert len([r async for r in run]) == 120
    assert run.fleet is not None
    ep = run.fleet.sets["llama"].endpoints[0]
    assert ep.probe is not None
    assert ep.probe.rates[0][0] == 2
    assert ep.limit >= 4
    assert server.max_in_flight >= 4
    assert ep.source in ("probing", "probed")


async def test_concurrency_option_overrides_what_the_server_says(lms: tuple[LMStudioFake, str]) -> None:
    fake, url = lms
    run = offload.batch("summarize", items(20), config=lms_config(url), concurrency=2)
    await run.run()
    assert fake.stats.max_concurrency == 2
    assert fake.stats.max_queued == 0
    assert run.fleet is not None
    assert run.fleet.sets["lmstudio"].endpoints[0].source == "--concurrency"


def test_output_lines_are_plain_json(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({"id": 1, "error": None}) + "\n")
    assert read_rows(path) == [{"id": 1, "error": None}]

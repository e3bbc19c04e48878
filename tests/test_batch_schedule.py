"""``EndpointSet`` with in-process servers: slot limits, free-slot choice, failover, back-off."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import offload
from offload.batching.engine import Batch
from offload.batching.inputs import check_paths, read_input
from offload.batching.schedule import Endpoint, EndpointSet
from offload.errors import InputError, Unreachable
from offload.types import ChatRequest, ChatResult

REQUEST = ChatRequest.from_prompt("hi", max_output_tokens=5).with_model("m")


class Server:
    """An in-process provider with a gate the test opens, counting what is in flight."""

    local = True

    def __init__(self, name: str) -> None:
        self.name = name
        self.in_flight = 0
        self.max_in_flight = 0
        self.calls = 0
        self.release = asyncio.Event()
        self.fail: Exception | None = None
        self.cut: Exception | None = None
        """Raised by requests already in flight when they are released (a connection cut)."""

    @property
    def address(self) -> str:
        return f"mem://{self.name}"

    async def models(self) -> list[object]:
        return []

    async def chat(self, request: ChatRequest) -> ChatResult:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self.release.wait()
        finally:
            self.in_flight -= 1
        if self.cut is not None:
            raise self.cut
        return ChatResult(f"from {self.name}", model=request.model or "")

    def stream_chat(self, request: ChatRequest) -> object:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass


def endpoints(*servers: tuple[Server, int], clock: list[float] | None = None) -> EndpointSet:
    eps = [Endpoint(s.address, s, limit) for s, limit in servers]  # type: ignore[arg-type]
    if clock is None:
        return EndpointSet("local", eps)
    return EndpointSet("local", eps, clock=lambda: clock[0])


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_requests_fill_free_slots_and_wait_for_the_rest() -> None:
    a, b = Server("a"), Server("b")
    eps = endpoints((a, 2), (b, 3))
    tasks = [asyncio.create_task(eps.chat(REQUEST)) for _ in range(8)]
    await settle()
    assert (a.in_flight, b.in_flight) == (2, 3)  # every slot busy, three requests wait client side
    assert sum(ep.in_flight for ep in eps.endpoints) == 5
    a.release.set()
    b.release.set()
    results = await asyncio.gather(*tasks)
    assert len(results) == 8
    assert a.max_in_flight == 2
    assert b.max_in_flight == 3
    assert [ep.served for ep in eps.endpoints] == [a.calls, b.calls]
    assert a.calls + b.calls == 8


async def test_the_answering_server_travels_back_with_the_answer() -> None:
    a = Server("a")
    a.release.set()
    eps = endpoints((a, 1))
    result = await eps.chat(REQUEST)
    assert result.server == "mem://a"


async def test_a_refusing_server_is_set_aside_and_the_request_goes_to_the_other() -> None:
    now = [100.0]
    a, b = Server("a"), Server("b")
    a.fail = Unreachable("refused", refused=True)
    b.release.set()
    eps = endpoints((a, 4), (b, 1), clock=now)
    result = await eps.chat(REQUEST)
    assert result.content == "from b"
    down = eps.endpoints[0]
    assert down.downs == 1
    assert down.down_until == 101.0
    assert not down.live(now[0])
    assert eps.slots() == 1
    await eps.chat(REQUEST)
    assert a.calls == 1  # not tried again while down
    now[0] = 101.5
    a.fail = None
    a.release.set()
    assert (await eps.chat(REQUEST)).content == "from a"  # back after the back-off
    assert eps.endpoints[0].downs == 0


async def test_a_dropped_connection_is_retried_elsewhere_and_counted_as_lost() -> None:
    a, b = Server("a"), Server("b")
    a.fail = Unreachable("reset by peer")
    b.release.set()
    eps = endpoints((a, 1), (b, 1))
    assert (await eps.chat(REQUEST)).content == "from b"
    assert eps.endpoints[0].lost == 1
    assert eps.endpoints[0].downs == 0  # one drop is not an outage


async def test_a_lone_server_gets_one_more_try_then_the_error_reaches_the_router() -> None:
    a = Server("a")
    a.fail = Unreachable("reset by peer")
    eps = endpoints((a, 2))
    with pytest.raises(Unreachable):
        await eps.chat(REQUEST)
    assert a.calls == 2
    assert eps.endpoints[0].downs == 1
    with pytest.raises(Unreachable, match="no server of local is answering"):
        await eps.chat(REQUEST)
    assert a.calls == 2


async def test_a_server_without_the_model_takes_no_work() -> None:
    a, b = Server("a"), Server("b")
    b.release.set()
    eps = endpoints((a, 4), (b, 1))
    eps.endpoints[0].excluded = "lacks model m"
    await asyncio.gather(*(eps.chat(REQUEST) for _ in range(3)))
    assert a.calls == 0
    assert b.calls == 3


async def test_raising_a_limit_wakes_waiting_requests() -> None:
    a = Server("a")
    eps = endpoints((a, 1))
    tasks = [asyncio.create_task(eps.chat(REQUEST)) for _ in range(4)]
    await settle()
    assert a.in_flight == 1
    eps.set_limit(eps.endpoints[0], 3, "probed")
    await settle()
    assert a.in_flight == 3
    assert eps.endpoints[0].source == "probed"
    a.release.set()
    await asyncio.gather(*tasks)


async def test_cancelled_waiters_release_nothing_they_did_not_hold() -> None:
    a = Server("a")
    eps = endpoints((a, 1))
    first = asyncio.create_task(eps.chat(REQUEST))
    waiting = asyncio.create_task(eps.chat(REQUEST))
    await settle()
    waiting.cancel()
    await settle()
    assert eps.endpoints[0].in_flight == 1
    a.release.set()
    await first
    assert eps.endpoints[0].in_flight == 0
    assert a.calls == 1


# --- paths -----------------------------------------------------------------------------------------


def test_the_output_cannot_be_the_input(tmp_path: Path) -> None:
    src = tmp_path / "items.jsonl"
    src.write_text('{"text": "x"}\n')
    with pytest.raises(InputError, match="is the input file"):
        check_paths(str(src), tmp_path / "." / "items.jsonl")
    check_paths(str(src), tmp_path / "out.jsonl")


def test_a_directory_walk_skips_the_output_inside_it(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "out.jsonl").write_text('{"id": "a.txt"}\n')
    got = read_input(tmp_path, exclude=[tmp_path / "out.jsonl"])
    assert [i.id for i in got.items] == ["a.txt"]


def test_offload_batch_is_callable_and_returns_a_batch() -> None:
    run = offload.batch("summarize", ["text"], length="sentence", gate="off")
    assert isinstance(run, Batch)
    assert run.spec.options == {"length": "sentence"}
    assert run.spec.settings == {"gate": "off"}
    assert offload.batching.batch is not None
    assert run.spec.items == ["text"]


async def test_after_a_back_off_one_request_proves_the_server_is_back() -> None:
    now = [0.0]
    a = Server("a")
    a.fail = Unreachable("refused", refused=True)
    eps = endpoints((a, 4), clock=now)
    ep = eps.endpoints[0]
    with pytest.raises(Unreachable):
        await eps.chat(REQUEST)
    assert (ep.downs, ep.down_until) == (1, 1.0)
    assert eps.slots() == 1
    now[0] = 1.0
    a.fail = None
    probes = [asyncio.create_task(eps.chat(REQUEST)) for _ in range(3)]
    await settle()
    assert a.in_flight == 1  # half-open: one request until one succeeds
    a.release.set()
    await asyncio.gather(*probes)
    assert ep.downs == 0
    assert eps.slots() == 4
    assert a.calls == 4


async def test_requests_lost_in_one_outage_do_not_lengthen_the_back_off() -> None:
    now = [0.0]
    a, b = Server("a"), Server("b")
    eps = endpoints((a, 4), (b, 1), clock=now)
    stuck = [asyncio.create_task(eps.chat(REQUEST)) for _ in range(3)]
    await settle()
    assert a.in_flight == 3
    now[0] = 0.5
    a.fail = Unreachable("refused", refused=True)
    b.release.set()
    assert (await eps.chat(REQUEST)).content == "from b"  # refused on a, answered by b
    ep = eps.endpoints[0]
    assert (ep.downs, ep.down_until) == (1, 1.5)
    a.cut = Unreachable("reset by peer")  # the three in flight on a are cut off
    a.release.set()
    results = await asyncio.gather(*stuck)
    # sent before a was set aside: lost and resent to b, and the back-off stays 1 s
    assert [r.content for r in results] == ["from b"] * 3
    assert ep.lost == 3
    assert (ep.downs, ep.down_until) == (1, 1.5)

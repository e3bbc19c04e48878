"""Routing with in-process scripted providers: failover per error kind, cooldowns, local-only, context."""

from __future__ import annotations

from typing import Any

import pytest

from offload.config import parse_config
from offload.errors import (
    AllCandidatesFailed,
    AuthError,
    BillingError,
    ContextOverflow,
    InvalidRequest,
    LocalOnlyRefused,
    ModelNotFound,
    ProviderError,
    RateLimited,
    ServerError,
    Timeout,
    Unreachable,
)
from offload.routing.cooldown import Cooldowns
from offload.routing.retry import RetryPolicy
from offload.routing.router import CallEvent, CallOptions, Router
from offload.testing.scripted import ScriptedProvider
from offload.types import ChatRequest, TextDelta

CONFIG: dict[str, Any] = {
    "agents": {"defaults": {"model": {"primary": "local/small", "fallbacks": ["cloud/big"]}}},
    "models": {
        "mode": "replace",
        "providers": {
            "local": {"baseUrl": "http://127.0.0.1:9", "models": [{"id": "small", "contextWindow": 4096}]},
            "cloud": {
                "baseUrl": "http://127.0.0.1:10/v1",
                "local": False,  # a loopback fake standing in for a hosted API
                "models": [{"id": "big", "contextWindow": 200000}],
            },
        },
    },
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def make(
    config: dict[str, Any] | None = None, **kw: Any
) -> tuple[Router, ScriptedProvider, ScriptedProvider, list[str], list[CallEvent], Clock]:
    cfg = parse_config(config or CONFIG, env={})
    clock = Clock()
    notes: list[str] = []
    events: list[CallEvent] = []
    router = Router(
        cfg,
        notify=notes.append,
        observers=[events.append],
        sleep=clock.sleep,
        clock=clock,
        retry=RetryPolicy(attempts=2, jitter=0.0),
        cooldowns=Cooldowns(clock),
        **kw,
    )
    local = ScriptedProvider("local")
    cloud = ScriptedProvider("cloud", local=False)
    router.pool.put("local", local)
    router.pool.put("cloud", cloud)
    return router, local, cloud, notes, events, clock


REQ = ChatRequest.from_prompt("Summarize: the cat sat on the mat.")


async def test_primary_answers_without_touching_the_fallback() -> None:
    router, local, cloud, notes, events, _ = make()
    local.add("a cat sat")
    routed = await router.chat(REQ)
    assert routed.result.content == "a cat sat" and routed.candidate.name == "local/small"
    assert not routed.failed_over and cloud.calls == [] and notes == []
    assert local.calls[0].model == "small"
    assert [e.outcome for e in events] == ["ok"]


@pytest.mark.parametrize(
    "error",
    [
        Unreachable("refused", refused=True),
        Timeout("slow"),
        ServerError("500"),
        RateLimited("429", retry_after=1.0),
        AuthError("401 invalid key"),
        BillingError("402"),
        ModelNotFound("no such model"),
        ContextOverflow("too long for loaded context"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_each_failover_kind_moves_to_the_next_candidate(error: ProviderError) -> None:
    router, local, cloud, notes, events, _ = make()
    local.add(error, error)  # enough for the retry budget
    cloud.add("from the cloud")
    routed = await router.chat(REQ)
    assert routed.result.content == "from the cloud"
    assert routed.failed_over and routed.attempts[0].outcome == "failed"
    assert routed.attempts[0].error is not None and error.kind in routed.attempts[0].error
    assert len(notes) == 1 and "local/small failed" in notes[0] and "→ trying cloud/big" in notes[0]
    assert [e.outcome for e in events] == [error.kind, "ok"]
    assert events[1].failover


async def test_refused_connection_fails_over_without_retrying() -> None:
    router, local, cloud, _, _, clock = make()
    local.add(Unreachable("refused", refused=True))
    cloud.add("ok")
    start = clock.now
    await router.chat(REQ)
    assert len(local.calls) == 1 and clock.now == start  # no retry sleep


async def test_transient_errors_are_retried_on_the_same_candidate_first() -> None:
    router, local, cloud, notes, _, _ = make()
    local.add(ServerError("503 loading"), "recovered")
    routed = await router.chat(REQ)
    assert routed.result.content == "recovered" and len(local.calls) == 2 and cloud.calls == []
    assert notes == []


async def test_malformed_request_does_not_fail_over() -> None:
    router, local, cloud, _, _, _ = make()
    local.add(InvalidRequest("Unrecognized key(s) in object: 'ttl'"))
    with pytest.raises(InvalidRequest) as info:
        await router.chat(REQ)
    assert cloud.calls == []
    assert info.value.attempts[0].candidate == "local/small"


async def test_everything_failing_lists_every_attempt() -> None:
    router, local, cloud, _, _, _ = make()
    local.add(
        Unreachable(
            "lmstudio is not reachable at http://127.0.0.1:9", refused=True, address="http://127.0.0.1:9"
        )
    )
    cloud.add(AuthError("401 invalid key"), AuthError("401 invalid key"))
    with pytest.raises(AllCandidatesFailed) as info:
        await router.chat(REQ)
    msg = str(info.value)
    assert msg.startswith("all 2 candidates failed: local/small unreachable")
    assert "at http://127.0.0.1:9" in msg and "cloud/big auth: 401 invalid key" in msg
    assert info.value.exit_code == 10


async def test_single_candidate_keeps_its_specific_error() -> None:
    router, local, _, _, _, _ = make()
    local.add(Unreachable("down", refused=True), Unreachable("down", refused=True))
    with pytest.raises(Unreachable):
        await router.chat(REQ, CallOptions(fallbacks=False))


async def test_cooldown_skips_a_failing_candidate_then_probes_it_again() -> None:
    router, local, cloud, _, _, clock = make()
    cloud.default = "cloud answer"
    local.add(Unreachable("down", refused=True))
    await router.chat(REQ)
    assert router.cooldowns.remaining("local/small") == 30.0
    routed = await router.chat(REQ)  # skipped while cooling: no call reaches it
    assert len(local.calls) == 1 and routed.attempts[0].error == "cooling down (30s left)"
    clock.now += 31
    local.add(Unreachable("still down", refused=True))
    await router.chat(REQ)  # probed once the cooldown ended, failed again: 60 s now
    assert len(local.calls) == 2 and router.cooldowns.remaining("local/small") == 60.0
    clock.now += 61
    local.add(Unreachable("down", refused=True))
    await router.chat(REQ)
    assert router.cooldowns.remaining("local/small") == 300.0
    clock.now += 301
    local.add("back")
    assert (await router.chat(REQ)).result.content == "back"
    assert router.cooldowns.remaining("local/small") == 0.0


def test_cooldown_schedule_caps_and_does_not_extend_while_running() -> None:
    clock = Clock()
    cd = Cooldowns(clock)
    assert cd.failed("x") == 30.0
    clock.now += 10
    assert cd.failed("x") == 20.0  # already cooling: not extended
    for expected in (60.0, 300.0, 300.0):
        clock.now += 1000
        assert cd.failed("x") == expected


async def test_local_only_never_contacts_hosted_candidates() -> None:
    router, local, cloud, _, _, _ = make()
    local.add(Unreachable("down", refused=True), Unreachable("down", refused=True))
    with pytest.raises(LocalOnlyRefused) as info:  # only the refused hosted candidate was left
        await router.chat(REQ, CallOptions(local_only=True))
    assert cloud.calls == []
    assert info.value.refused == ("cloud/big",)
    assert str(info.value).startswith(
        "local-only mode refused hosted candidate(s): cloud/big; "
        "the local one(s) failed: local/small unreachable"
    )
    assert info.value.exit_code == 11
    with pytest.raises(LocalOnlyRefused, match="cloud/big"):
        await router.chat(REQ, CallOptions(model="cloud/big", local_only=True, fallbacks=False))
    assert cloud.calls == []


async def test_local_only_is_a_floor_that_tasks_and_calls_add_to_but_never_lift() -> None:
    cfg = {**CONFIG, "offload": {"localOnly": True, "tasks": {"triage": {"gate": "off"}}}}
    router, _, cloud, _, _, _ = make(cfg)
    cloud.default = "cloud"
    with pytest.raises(LocalOnlyRefused):
        await router.chat(REQ, CallOptions(model="cloud/big", fallbacks=False))
    with pytest.raises(LocalOnlyRefused):
        await router.chat(
            REQ, CallOptions(model="cloud/big", fallbacks=False, task="triage", local_only=False)
        )
    assert cloud.calls == []
    by_task = {**CONFIG, "offload": {"tasks": {"triage": {"localOnly": True}}}}
    router, _, cloud, _, _, _ = make(by_task)
    cloud.default = "cloud"
    with pytest.raises(LocalOnlyRefused):
        await router.chat(
            REQ, CallOptions(model="cloud/big", fallbacks=False, task="triage", local_only=False)
        )
    routed = await router.chat(REQ, CallOptions(model="cloud/big", fallbacks=False))
    assert routed.result.content == "cloud"


async def test_context_precheck_skips_small_windows_and_fails_early_when_nothing_fits() -> None:
    router, local, cloud, _, _, _ = make()
    cloud.add("big window")
    long = ChatRequest.from_prompt("word " * 5000)  # ~7k tokens: not for a 4096 window
    routed = await router.chat(long)
    assert routed.result.content == "big window" and local.calls == []
    assert routed.attempts[0].error == "context window 4096 < ~7151 tokens needed"
    huge = ChatRequest.from_prompt("word " * 200_000)
    with pytest.raises(ContextOverflow, match="fits no candidate") as info:
        await router.chat(huge)
    assert "local/small context window 4096" in str(info.value) and "cloud/big context window 200000" in str(
        info.value
    )
    assert cloud.calls == [long.with_model("big")]


async def test_stream_fails_over_before_content_but_not_after() -> None:
    router, local, cloud, notes, _, _ = make()
    local.add(Unreachable("down", refused=True))
    cloud.add("streamed from cloud")
    stream = router.stream(REQ)
    text = "".join([e.text async for e in stream if isinstance(e, TextDelta)])
    assert text == "streamed from cloud" and stream.routed is not None
    assert stream.routed.candidate.name == "cloud/big" and notes

    class Dying(ScriptedProvider):
        async def stream_chat(self, request: ChatRequest):  # type: ignore[no-untyped-def,override]
            yield TextDelta("partial")
            raise ServerError("connection reset mid-stream")

    router2, _, cloud2, _, _, _ = make()
    router2.pool.put("local", Dying("local"))
    got: list[str] = []

    async def consume() -> None:
        async for event in router2.stream(REQ):
            if isinstance(event, TextDelta):
                got.append(event.text)

    with pytest.raises(ServerError):
        await consume()
    assert got == ["partial"] and cloud2.calls == []


async def test_previous_response_id_only_goes_to_thread_capable_candidates() -> None:
    cfg = {
        "agents": {"defaults": {"model": {"primary": "lms/m", "fallbacks": ["cloud/big"]}}},
        "models": {
            "mode": "replace",
            "providers": {
                "lms": {"baseUrl": "http://127.0.0.1:1234", "api": "lmstudio"},
                "cloud": {"baseUrl": "http://127.0.0.1:10/v1", "local": False, "models": [{"id": "big"}]},
            },
        },
    }
    router, _, cloud, _, _, _ = make(cfg)
    lms = ScriptedProvider("lms")
    router.pool.put("lms", lms)
    lms.add(Unreachable("down", refused=True), Unreachable("down", refused=True))
    threaded = ChatRequest.from_prompt("and then?", previous_response_id="resp_" + "a" * 48)
    with pytest.raises(Unreachable):
        await router.chat(threaded)
    assert cloud.calls == []


def test_exempted_providers_do_not_cool_down() -> None:
    clock = Clock()
    cd = Cooldowns(clock, exempt={"local"})
    assert cd.failed("local/small") == 0.0
    assert cd.remaining("local/small") == 0.0
    assert cd.failed("cloud/big") == 30.0  # other providers are unaffected
    assert cd.remaining("cloud/big") == 30.0


CHAIN3: dict[str, Any] = {
    "agents": {"defaults": {"model": {"primary": "a/m", "fallbacks": ["b/m", "c/m"]}}},
    "models": {
        "mode": "replace",
        "providers": {
            "a": {"baseUrl": "http://127.0.0.1:9", "models": [{"id": "m", "maxTokens": 100}]},
            "b": {"baseUrl": "http://127.0.0.1:11", "models": [{"id": "m"}]},
            "c": {"baseUrl": "http://127.0.0.1:12", "models": [{"id": "m"}]},
        },
    },
}


def make3() -> tuple[Router, dict[str, ScriptedProvider], list[str], list[CallEvent]]:
    router, _, _, notes, events, _ = make(CHAIN3)
    providers = {name: ScriptedProvider(name) for name in "abc"}
    for name, provider in providers.items():
        router.pool.put(name, provider)
    return router, providers, notes, events


async def test_failover_walks_a_chain_of_three_in_order() -> None:
    router, p, notes, events = make3()
    p["a"].add(AuthError("401"))
    p["b"].add(ModelNotFound("no m"))
    p["c"].add("third time lucky")
    routed = await router.chat(REQ)
    assert routed.candidate.name == "c/m"
    assert [a.candidate for a in routed.attempts] == ["a/m", "b/m", "c/m"]
    assert notes == [
        "offload: a/m failed (auth: 401) → trying b/m",
        "offload: b/m failed (model_not_found: no m) → trying c/m",
    ]
    assert [e.outcome for e in events] == ["auth", "model_not_found", "ok"]
    assert [e.failover for e in events] == [False, True, True]


async def test_the_middle_of_three_fails_over_at_once_when_its_server_refuses() -> None:
    router, p, notes, _ = make3()
    p["a"].add(AuthError("401"))
    p["b"].add(Unreachable("refused", refused=True))
    p["c"].add("ok")
    await router.chat(REQ)
    assert len(p["b"].calls) == 1  # another candidate was left: no retry on b
    assert notes[1] == "offload: b/m failed (unreachable: refused) → trying c/m"


async def test_the_last_of_three_retries_a_refused_connection() -> None:
    router, p, _, _ = make3()
    p["a"].add(AuthError("401"))
    p["b"].add(AuthError("401"))
    p["c"].add(Unreachable("refused", refused=True), "back")
    routed = await router.chat(REQ)
    assert routed.result.content == "back"
    assert len(p["c"].calls) == 2


async def test_all_three_failing_lists_three_attempts_and_cools_each_down() -> None:
    router, p, _, _ = make3()
    p["a"].add(AuthError("401"))
    p["b"].add(ServerError("500"), ServerError("500"))
    p["c"].add(ContextOverflow("too long"))
    with pytest.raises(AllCandidatesFailed) as info:
        await router.chat(REQ)
    assert [a.candidate for a in info.value.attempts] == ["a/m", "b/m", "c/m"]
    assert [type(e) for e in info.value.errors] == [AuthError, ServerError, ContextOverflow]
    assert set(router.cooldowns.snapshot()) == {"a/m", "b/m"}  # c: only this request was too long


async def test_a_stop_in_the_middle_of_three_never_reaches_the_last() -> None:
    router, p, _, _ = make3()
    p["a"].add(AuthError("401"))
    p["b"].add(InvalidRequest("bad key"))
    with pytest.raises(InvalidRequest) as info:
        await router.chat(REQ)
    assert p["c"].calls == []
    assert [a.candidate for a in info.value.attempts] == ["a/m", "b/m"]
    assert router.cooldowns.remaining("b/m") == 0.0


async def test_a_cooling_candidate_in_the_middle_is_skipped_and_the_last_answers() -> None:
    router, p, _, _ = make3()
    router.cooldowns.failed("b/m")
    p["a"].add(AuthError("401"))
    p["c"].add("c answers")
    routed = await router.chat(REQ)
    assert routed.result.content == "c answers"
    assert p["b"].calls == []
    assert routed.attempts[1].error == "cooling down (30s left)"


async def test_chain_ends_all_failed_when_the_rest_is_cooling() -> None:
    router, p, _, _ = make3()
    router.cooldowns.failed("b/m")
    router.cooldowns.failed("c/m")
    p["a"].add(AuthError("401"))
    with pytest.raises(AllCandidatesFailed) as info:
        await router.chat(REQ)
    assert [a.outcome for a in info.value.attempts] == ["failed", "skipped", "skipped"]


async def test_output_cap_is_clamped_to_the_models_max_tokens() -> None:
    router, p, _, _ = make3()
    p["a"].default = "ok"
    p["b"].default = "ok"
    await router.chat(ChatRequest.from_prompt("hi", max_output_tokens=500))
    await router.chat(ChatRequest.from_prompt("hi", max_output_tokens=50))
    assert [c.max_output_tokens for c in p["a"].calls] == [100, 50]
    await router.chat(
        ChatRequest.from_prompt("hi", max_output_tokens=500), CallOptions(model="b/m", fallbacks=False)
    )
    assert p["b"].calls[0].max_output_tokens == 500  # no maxTokens declared: untouched


async def test_a_success_clears_the_cooldown_record() -> None:
    router, p, _, _ = make3()
    p["a"].add(ServerError("500"), ServerError("500"), "ok")
    p["b"].add("b")
    await router.chat(REQ)
    assert router.cooldowns.remaining("a/m") == 30.0
    router.cooldowns = Cooldowns(lambda: 10_000.0)  # later: a's cooldown has run out
    await router.chat(REQ)
    assert router.cooldowns.snapshot() == {}


async def test_a_stream_that_fails_before_content_fails_over_with_a_notice() -> None:
    router, p, notes, _ = make3()
    p["a"].add(AuthError("401"))
    p["b"].add("streamed")
    stream = router.stream(REQ)
    text = "".join([e.text async for e in stream if isinstance(e, TextDelta)])
    assert text == "streamed"
    assert stream.routed is not None
    assert stream.routed.candidate.name == "b/m"
    assert notes == ["offload: a/m failed (auth: 401) → trying b/m"]

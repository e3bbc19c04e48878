"""Routing with in-process scripted providers: failover per error kind, cooldowns, local-only, context."""

from __future__ import annotations

from typing import Any

import pytest

from offload.config import parse_config
from offload.errors import (
    AllCandidatesFailed,
    Attempt,
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
from offload.providers.registry import ProviderPool
from offload.routing.cooldown import Cooldowns
from offload.routing.retry import RetryPolicy
from offload.routing.router import CallEvent, CallOptions, Router
from offload.testing.scripted import ScriptedProvider
from offload.types import ChatRequest, ChatResult, LoadedInstance, ModelInfo, TextDelta

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
    assert routed.result.content == "a cat sat"
    assert routed.candidate.name == "local/small"
    assert not routed.failed_over
    assert cloud.calls == []
    assert notes == []
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
    assert routed.failed_over
    assert routed.attempts[0].outcome == "failed"
    assert routed.attempts[0].error is not None
    assert error.kind in routed.attempts[0].error
    assert len(notes) == 1
    assert "local/small failed" in notes[0]
    assert "→ trying cloud/big" in notes[0]
    assert [e.outcome for e in events] == [error.kind, "ok"]
    assert events[1].failover


async def test_refused_connection_fails_over_without_retrying() -> None:
    router, local, cloud, _, _, clock = make()
    local.add(Unreachable("refused", refused=True))
    cloud.add("ok")
    start = clock.now
    await router.chat(REQ)
    assert len(local.calls) == 1
    assert clock.now == start  # no retry sleep


async def test_transient_errors_are_retried_on_the_same_candidate_first() -> None:
    router, local, cloud, notes, _, _ = make()
    local.add(ServerError("503 loading"), "recovered")
    routed = await router.chat(REQ)
    assert routed.result.content == "recovered"
    assert len(local.calls) == 2
    assert cloud.calls == []
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
    assert "at http://127.0.0.1:9" in msg
    assert "cloud/big auth: 401 invalid key" in msg
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
    assert len(local.calls) == 1
    assert routed.attempts[0].error == "cooling down (30s left)"
    clock.now += 31
    local.add(Unreachable("still down", refused=True))
    await router.chat(REQ)  # probed once the cooldown ended, failed again: 60 s now
    assert len(local.calls) == 2
    assert router.cooldowns.remaining("local/small") == 60.0
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
    assert routed.result.content == "big window"
    assert local.calls == []
    assert routed.attempts[0].error == "context window 4096 < ~7151 tokens needed"
    huge = ChatRequest.from_prompt("word " * 200_000)
    with pytest.raises(ContextOverflow, match="fits no candidate") as info:
        await router.chat(huge)
    assert "local/small context window 4096" in str(info.value)
    assert "cloud/big context window 200000" in str(info.value)
    assert cloud.calls == [long.with_model("big")]


async def test_stream_fails_over_before_content_but_not_after() -> None:
    router, local, cloud, notes, _, _ = make()
    local.add(Unreachable("down", refused=True))
    cloud.add("streamed from cloud")
    stream = router.stream(REQ)
    text = "".join([e.text async for e in stream if isinstance(e, TextDelta)])
    assert text == "streamed from cloud"
    assert stream.routed is not None
    assert stream.routed.candidate.name == "cloud/big"
    assert notes

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
    assert got == ["partial"]
    assert cloud2.calls == []


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
    router, local, cloud, _, _, clock = make()
    local.add(ServerError("500"), ServerError("500"), "ok")
    cloud.add("cloud")
    await router.chat(REQ)
    assert router.cooldowns.remaining("local/small") == 30.0
    clock.now += 31  # the cooldown ran out: probed again, and it answers
    await router.chat(REQ)
    clock.now -= 31  # a record left behind would be cooling again now
    assert router.cooldowns.remaining("local/small") == 0.0


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


AUTO: dict[str, Any] = {
    "agents": {"defaults": {"model": {"primary": "lms/auto", "fallbacks": ["cloud/big"]}}},
    "models": {
        "mode": "replace",
        "providers": {
            "lms": {"baseUrl": "http://127.0.0.1:1234", "api": "lmstudio"},
            "cloud": {"baseUrl": "http://127.0.0.1:10/v1", "local": False, "models": [{"id": "big"}]},
        },
    },
}


def make_auto(
    models: list[ModelInfo],
) -> tuple[Router, ScriptedProvider, ScriptedProvider, list[str], list[Any]]:
    choices: list[Any] = []
    router, _, cloud, notes, _, _ = make(
        AUTO, on_choice=lambda cand, choice: choices.append((cand.name, choice))
    )
    lms = ScriptedProvider("lms", models=models, default="local answer")
    router.pool.put("lms", lms)
    return router, lms, cloud, notes, choices


def loaded(key: str, context: int) -> ModelInfo:
    return ModelInfo(
        key, max_context_length=32768, loaded_instances=(LoadedInstance(key, context_length=context),)
    )


async def test_auto_picks_a_model_that_fits_and_reports_the_choice() -> None:
    router, lms, _, _, choices = make_auto(
        [loaded("small", 8192), ModelInfo("other", max_context_length=4096)]
    )
    routed = await router.chat(REQ)
    assert lms.calls[0].model == "small"
    assert routed.candidate.name == "lms/auto"
    assert [(name, c.model.key) for name, c in choices] == [("lms/auto", "small")]
    assert lms.calls[0].context_length is None  # loaded already: no context to ask for


async def test_auto_asks_for_a_larger_context_when_it_must_load_the_model() -> None:
    router, lms, _, _, _ = make_auto([ModelInfo("big-window", max_context_length=32768)])
    await router.chat(ChatRequest.from_prompt("word " * 5000, max_output_tokens=1000))
    assert lms.calls[0].model == "big-window"
    assert lms.calls[0].context_length == 8192


async def test_auto_keeps_a_context_the_caller_asked_for() -> None:
    router, lms, _, _, _ = make_auto([ModelInfo("big-window", max_context_length=32768)])
    request = ChatRequest.from_prompt("word " * 5000, max_output_tokens=1000, context_length=16384)
    await router.chat(request)
    assert lms.calls[0].context_length == 16384


async def test_auto_with_no_model_big_enough_is_a_context_overflow_and_fails_over() -> None:
    router, lms, cloud, _notes, _ = make_auto(
        [loaded("small", 2048), ModelInfo("mid", max_context_length=3000)]
    )
    cloud.add("cloud answer")
    routed = await router.chat(ChatRequest.from_prompt("word " * 5000))
    assert routed.candidate.name == "cloud/big"
    assert lms.calls == []
    assert routed.attempts[0].error is not None
    assert routed.attempts[0].error.startswith("context_overflow: no model fits this request")
    assert router.cooldowns.remaining("lms/auto") == 0.0  # only this request was too big


async def test_auto_no_fit_reports_the_largest_window_it_saw() -> None:
    router, _, _, _, _ = make_auto([loaded("small", 2048), ModelInfo("mid", max_context_length=3000)])
    with pytest.raises(ContextOverflow) as info:
        await router.chat(ChatRequest.from_prompt("word " * 5000), CallOptions(fallbacks=False))
    assert info.value.context_length == 3000
    assert info.value.provider == "lms"
    assert info.value.prompt_tokens is not None
    assert info.value.prompt_tokens > 7000


async def test_auto_with_only_embedding_models_is_model_not_found() -> None:
    router, _, _, _, _ = make_auto([ModelInfo("embedder", type="embedding", max_context_length=2048)])
    with pytest.raises(ModelNotFound) as info:
        await router.chat(REQ, CallOptions(fallbacks=False))
    assert info.value.provider == "lms"
    assert "embedding model" in info.value.message


async def test_auto_listing_a_refused_server_fails_over_without_retrying() -> None:
    router, lms, cloud, notes, _ = make_auto([])
    listed = {"n": 0}

    async def refused() -> list[ModelInfo]:
        listed["n"] += 1
        raise Unreachable("refused", refused=True)

    lms.models = refused  # type: ignore[method-assign]
    cloud.add("cloud")
    routed = await router.chat(REQ)
    assert routed.candidate.name == "cloud/big"
    assert listed["n"] == 1
    assert notes == [
        "offload: lms/auto failed (unreachable: refused) → trying cloud/big"
    ]  # not embedded next


async def test_lmstudio_down_with_the_embedded_engine_next_says_so_plainly() -> None:
    cfg: dict[str, Any] = {
        "agents": {"defaults": {"model": {"primary": "lms/m", "fallbacks": ["emb/e"]}}},
        "models": {
            "mode": "replace",
            "providers": {
                "lms": {"baseUrl": "http://127.0.0.1:1234", "api": "lmstudio"},
                "emb": {"baseUrl": "http://127.0.0.1:1", "api": "embedded"},
            },
        },
    }
    router, _, _, notes, _, _ = make(cfg)
    lms, emb = ScriptedProvider("lms"), ScriptedProvider("emb", default="embedded answer")
    router.pool.put("lms", lms)
    router.pool.put("emb", emb)
    lms.add(Unreachable("refused", refused=True, address="http://127.0.0.1:1234"))
    await router.chat(REQ)
    assert notes == [
        "offload: LM Studio is not running at http://127.0.0.1:1234 — using the embedded engine "
        "(start LM Studio, or set LM_STUDIO_API_URL, to use your own models)"
    ]


async def test_a_timeout_before_the_embedded_engine_gets_the_plain_notice() -> None:
    cfg: dict[str, Any] = {
        "agents": {"defaults": {"model": {"primary": "lms/m", "fallbacks": ["emb/e"]}}},
        "models": {
            "mode": "replace",
            "providers": {
                "lms": {"baseUrl": "http://127.0.0.1:1234", "api": "lmstudio"},
                "emb": {"baseUrl": "http://127.0.0.1:1", "api": "embedded"},
            },
        },
    }
    router, _, _, notes, _, _ = make(cfg)
    lms, emb = ScriptedProvider("lms"), ScriptedProvider("emb", default="embedded answer")
    router.pool.put("lms", lms)
    router.pool.put("emb", emb)
    lms.add(Unreachable("reset"), Unreachable("reset"))
    await router.chat(REQ)
    assert notes == ["offload: lms/m failed (unreachable: reset) → trying emb/e"]


async def test_observers_see_each_call_with_its_task_model_and_flags() -> None:
    router, local, cloud, _, events, _ = make()
    local.add(AuthError("401"))
    cloud.add("ok")
    await router.chat(REQ, CallOptions(task="summarize", escalated=True))
    assert [e.task for e in events] == ["summarize", "summarize"]
    assert [e.model for e in events] == ["small", "big"]
    assert [e.escalated for e in events] == [True, True]
    assert isinstance(events[0].error, AuthError)
    assert events[1].result is not None
    assert events[1].request == REQ.with_model("big")
    assert [e.candidate.name for e in events] == ["local/small", "cloud/big"]


async def test_call_durations_come_from_the_routers_clock() -> None:
    router, local, cloud, _, events, _clock = make()
    local.add(ServerError("500"), ServerError("500"))
    cloud.add("ok")
    routed = await router.chat(REQ)
    assert events[0].seconds == 0.5  # the one retry pause on local
    assert routed.attempts[0].seconds == 0.5
    assert events[1].seconds == 0.0


async def test_defaults_use_the_routers_clock_and_build_providers_from_the_config() -> None:
    clock = Clock()
    router = Router(parse_config(CONFIG, env={}), clock=clock, sleep=clock.sleep)
    assert router.pool.get("cloud").address == "http://127.0.0.1:10/v1"
    local = ScriptedProvider("local")
    router.pool.put("local", local)
    router.pool.put("cloud", ScriptedProvider("cloud", local=False, default="ok"))
    local.add(AuthError("401"))
    await router.chat(REQ)
    assert router.cooldowns.remaining("local/small") == 30.0
    await router.aclose()


def unloaded(key: str, size: int) -> ModelInfo:
    return ModelInfo(key, max_context_length=32768, size_bytes=size)


@pytest.mark.parametrize(("prefer", "expected"), [(None, "tiny"), ("fast", "tiny"), ("quality", "huge")])
async def test_auto_prefers_small_models_unless_asked_for_quality(prefer: str | None, expected: str) -> None:
    cfg = parse_config(AUTO, env={})
    router = Router(cfg) if prefer is None else Router(cfg, prefer=prefer)  # type: ignore[arg-type]
    lms = ScriptedProvider("lms", models=[unloaded("huge", 10**10), unloaded("tiny", 10**8)], default="ok")
    router.pool.put("lms", lms)
    await router.chat(REQ)
    assert lms.calls[0].model == expected


@pytest.mark.parametrize("live", [False, True])
async def test_retries_use_the_routers_sleep_clock_and_on_retry(live: bool) -> None:
    heard: list[tuple[str, int, float]] = []
    router, local, cloud, _, _, clock = make(on_retry=lambda e, n, w: heard.append((e.kind, n, w)))
    router.retry = RetryPolicy(attempts=3, budget=60.0, jitter=0.0)
    start = clock.now
    local.add(RateLimited("429", retry_after=40.0), RateLimited("429", retry_after=40.0), "never")
    cloud.add("cloud")
    if live:
        stream = router.stream(REQ)
        _ = [e async for e in stream]
        routed = stream.routed
    else:
        routed = await router.chat(REQ)
    assert routed is not None
    assert routed.candidate.name == "cloud/big"  # the second 40 s wait would pass the 60 s budget
    assert len(local.calls) == 2
    assert clock.now == start + 40.0  # the injected sleep advanced the injected clock
    assert heard == [("rate_limited", 1, 40.0)]


async def test_chat_asks_providers_for_a_whole_answer_not_a_stream() -> None:
    class NoStream(ScriptedProvider):
        def stream_chat(self, request: ChatRequest):  # type: ignore[no-untyped-def,override]
            raise AssertionError("chat must not stream")

    router, _, _, _, _, _ = make()
    router.pool.put("local", NoStream("local", default="whole"))
    assert (await router.chat(REQ)).result.content == "whole"


async def test_failed_and_ok_attempts_carry_duration_status_and_address() -> None:
    router, local, cloud, _, _, _ = make()
    local.add(ServerError("500"), ServerError("500", status=500, address="http://10.0.0.1:1234"))
    cloud.add(ChatResult("from a server", server="http://10.0.0.2:8080"))
    routed = await router.chat(REQ)
    failed, ok = routed.attempts
    assert failed == Attempt(
        "local/small",
        "failed",
        0.5,
        error="server_error 500: 500",
        status=500,
        address="http://10.0.0.1:1234",
    )
    assert ok == Attempt("cloud/big", "ok", 0.0, address="http://10.0.0.2:8080")


async def test_a_call_that_fails_before_a_model_is_chosen_is_recorded_under_the_ref() -> None:
    router, lms, cloud, _, _ = make_auto([])
    events: list[CallEvent] = []
    router.observers.append(events.append)

    async def no_auth() -> list[ModelInfo]:
        raise AuthError("401")

    lms.models = no_auth  # type: ignore[method-assign]
    cloud.add("cloud")
    await router.chat(REQ)
    assert [e.model for e in events] == ["auto", "big"]


async def test_skipped_candidates_mark_the_answer_as_a_failover() -> None:
    router, local, cloud, _, events, _ = make()
    cloud.add("big window", "again")
    await router.chat(ChatRequest.from_prompt("word " * 5000))  # local skipped: window too small
    assert [e.failover for e in events] == [True]
    router.cooldowns.failed("local/small")
    await router.chat(REQ)  # local skipped: cooling down
    assert [e.failover for e in events] == [True, True]
    assert local.calls == []


async def test_a_candidate_with_under_a_second_of_cooldown_left_is_still_skipped() -> None:
    router, local, cloud, _, _, clock = make()
    router.cooldowns = Cooldowns(clock, schedule=(0.5,))
    router.cooldowns.failed("local/small")
    cloud.add("cloud")
    routed = await router.chat(REQ)
    assert local.calls == []
    assert routed.attempts[0] == Attempt("local/small", "skipped", 0.0, error="cooling down (0s left)")


async def test_local_only_with_the_local_candidate_cooling_is_refused_naming_the_hosted_one() -> None:
    router, local, cloud, _, _, _ = make()
    router.cooldowns.failed("local/small")
    with pytest.raises(LocalOnlyRefused) as info:
        await router.chat(REQ, CallOptions(local_only=True))
    assert info.value.refused == ("cloud/big",)
    assert local.calls == []
    assert cloud.calls == []


def test_router_planning_helpers_follow_the_config() -> None:
    cfg = {**CONFIG, "offload": {"tasks": {"triage": {"localOnly": True}}}}
    router, _, _, _, _, _ = make(cfg)
    assert [c.name for c in router.candidates()] == ["local/small", "cloud/big"]
    assert [c.name for c in router.candidates(CallOptions(model="cloud/big", fallbacks=False))] == [
        "cloud/big"
    ]
    assert router.local_only(CallOptions()) is False
    assert router.local_only(CallOptions(task="triage")) is True


async def test_using_gives_a_router_over_another_pool_and_cooldowns_leaving_this_one_alone() -> None:
    heard: list[tuple[str, int, float]] = []
    router, local, _, notes, events, clock = make(on_retry=lambda e, n, w: heard.append((e.kind, n, w)))
    other_pool = ProviderPool(router.config.providers)
    theirs = ScriptedProvider("local")
    other_pool.put("local", theirs)
    other_pool.put("cloud", ScriptedProvider("cloud", local=False, default="cloud"))
    cooldowns = Cooldowns(clock)
    run = router.using(pool=other_pool, cooldowns=cooldowns)
    assert run.pool is other_pool
    assert run.cooldowns is cooldowns
    assert run.config is router.config
    assert run.retry is router.retry
    theirs.add(ServerError("503"), AuthError("401"))
    routed = await run.chat(REQ)
    assert routed.candidate.name == "cloud/big"
    assert local.calls == []  # the original pool's provider was not used
    assert set(cooldowns.snapshot()) == {"local/small"}
    assert router.cooldowns.snapshot() == {}  # the original cooldowns were not touched
    assert [e.outcome for e in events] == ["auth", "ok"]  # same observers
    assert heard == [("server_error", 1, 0.5)]  # same on_retry…
    assert clock.now == 1000.5  # …sleep…
    assert events[0].seconds == 0.5  # …and clock
    assert notes == ["offload: local/small failed (auth: 401) → trying cloud/big"]  # same notify
    assert router.using().pool is router.pool


@pytest.mark.parametrize(("prefer", "expected"), [("fast", "tiny"), ("quality", "huge")])
async def test_using_prefers_and_reports_choices_like_the_original(prefer: Any, expected: str) -> None:
    choices: list[str] = []
    cfg = parse_config(AUTO, env={})
    router = Router(cfg, prefer=prefer, on_choice=lambda cand, choice: choices.append(choice.model.key))
    run = router.using(pool=ProviderPool(cfg.providers))
    lms = ScriptedProvider("lms", models=[unloaded("huge", 10**10), unloaded("tiny", 10**8)], default="ok")
    run.pool.put("lms", lms)
    await run.chat(REQ)
    assert choices == [expected]


async def test_using_can_take_its_own_notices() -> None:
    router, local, cloud, notes, _, _ = make()
    mine: list[str] = []
    local.add(AuthError("401"))
    cloud.add("ok")
    await router.using(notify=mine.append).chat(REQ)
    assert notes == []
    assert mine == ["offload: local/small failed (auth: 401) → trying cloud/big"]


async def test_a_failure_after_streamed_content_ends_the_call_as_itself_even_after_a_failover() -> None:
    class Dying(ScriptedProvider):
        async def stream_chat(self, request: ChatRequest):  # type: ignore[no-untyped-def,override]
            yield TextDelta("partial")
            raise ServerError("connection reset mid-stream")

    router, local, _, _, _, _ = make()
    local.add(AuthError("401"))
    router.pool.put("cloud", Dying("cloud", local=False))
    with pytest.raises(ServerError):
        async for _ in router.stream(REQ):
            pass


async def test_auto_listing_retries_with_the_routers_sleep_and_clock() -> None:
    router, lms, _, _, _ = make_auto([])
    clock = router._clock
    assert isinstance(clock, Clock)
    replies: list[Any] = [ServerError("503 loading"), [loaded("small", 8192)]]

    async def listing() -> list[ModelInfo]:
        reply = replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return list(reply)

    lms.models = listing  # type: ignore[method-assign]
    await router.chat(REQ)
    assert clock.now == 1000.5
    assert lms.calls[0].model == "small"


async def test_auto_errors_say_where_and_what_to_do() -> None:
    router, _, _, _, _ = make_auto([ModelInfo("embedder", type="embedding")])
    with pytest.raises(ModelNotFound) as missing:
        await router.chat(REQ, CallOptions(fallbacks=False))
    assert missing.value.address == "scripted://lms"
    assert missing.value.remedy is not None
    router, _, _, _, _ = make_auto([loaded("small", 2048)])
    with pytest.raises(ContextOverflow) as overflow:
        await router.chat(ChatRequest.from_prompt("word " * 5000), CallOptions(fallbacks=False))
    assert overflow.value.address == "scripted://lms"
    assert overflow.value.remedy is not None
    assert overflow.value.context_length == 2048


async def test_the_answer_names_the_model_asked_for_not_what_the_server_reports() -> None:
    router, local, _, _, _, _ = make()
    local.add(ChatResult("hi", model="/home/me/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    routed = await router.chat(REQ)
    assert routed.result.model == "small"


async def test_auto_listing_keeps_to_the_time_budget_on_the_routers_clock() -> None:
    router, lms, cloud, _, _ = make_auto([])
    router.retry = RetryPolicy(attempts=3, budget=60.0, jitter=0.0)
    listed = {"n": 0}

    async def limited() -> list[ModelInfo]:
        listed["n"] += 1
        raise RateLimited("429", retry_after=40.0)

    lms.models = limited  # type: ignore[method-assign]
    cloud.add("cloud")
    routed = await router.chat(REQ)
    assert routed.candidate.name == "cloud/big"
    assert listed["n"] == 2  # a second 40 s wait would pass the 60 s budget

"""Planning a call before anything is sent: local-only, context windows with the answer's reserve,
unsupported APIs, server-side threads — and the error when nothing is left (no I/O)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from offload.config import parse_config
from offload.errors import AllCandidatesFailed, ConfigError, ContextOverflow, LocalOnlyRefused
from offload.routing.plan import CallOptions, RoutedStream, Skip, candidates, local_only, plan
from offload.tokens import estimate_prompt
from offload.types import ChatRequest, StreamEvent, TextDelta

WINDOW = 4096


def config(**offload: Any) -> Any:
    return parse_config(
        {
            "agents": {
                "defaults": {"model": {"primary": "local/small", "fallbacks": ["mid/m", "cloud/big"]}}
            },
            "models": {
                "mode": "replace",
                "providers": {
                    "local": {
                        "baseUrl": "http://127.0.0.1:9",
                        "models": [{"id": "small", "contextWindow": WINDOW}],
                    },
                    "mid": {"baseUrl": "http://127.0.0.1:11", "models": [{"id": "m", "contextWindow": 8192}]},
                    "cloud": {
                        "baseUrl": "http://127.0.0.1:10/v1",
                        "local": False,
                        "models": [{"id": "big", "contextWindow": 200000}],
                    },
                    "odd": {
                        "baseUrl": "http://127.0.0.1:12",
                        "api": "google-generative-ai",
                        "models": [{"id": "g"}],
                    },
                },
            },
            **({"offload": offload} if offload else {}),
        },
        env={},
    )


def sized(prompt_tokens: int, max_output: int | None) -> ChatRequest:
    """A request whose estimated prompt is exactly ``prompt_tokens``."""
    words = 1
    while estimate_prompt(ChatRequest.from_prompt("w " * words)) < prompt_tokens:
        words += 1
    request = ChatRequest.from_prompt("w " * words, max_output_tokens=max_output)
    assert estimate_prompt(request) == prompt_tokens
    return request


def names(request: ChatRequest, opts: CallOptions | None = None) -> list[str]:
    return [c.name for c in plan(config(), request, opts or CallOptions()).runnable]


def test_the_answers_reserve_counts_against_the_window() -> None:
    # 3000 prompt tokens fit a 4096 window alone, but not with 2000 reserved for the answer
    assert names(sized(3000, None))[0] == "local/small"
    found = plan(config(), sized(3000, 2000), CallOptions())
    assert [c.name for c in found.runnable] == ["mid/m", "cloud/big"]
    assert found.attempts[0].error == "context window 4096 < ~5000 tokens needed"


def test_a_request_that_exactly_fills_the_window_is_sent() -> None:
    prompt = 3000
    assert names(sized(prompt, WINDOW - prompt))[0] == "local/small"
    assert names(sized(prompt, WINDOW - prompt + 1))[0] == "mid/m"


def test_nothing_fits_names_every_window_and_the_largest() -> None:
    with pytest.raises(ContextOverflow) as info:
        plan(config(), sized(150_000, 60_000), CallOptions())
    assert info.value.context_length == 200000
    assert info.value.prompt_tokens == 210_000
    assert str(info.value).startswith(
        "the request (~210000 tokens) fits no candidate: local/small context window 4096 < ~210000 tokens"
    )


def test_nothing_fits_locally_mentions_the_refused_hosted_one() -> None:
    with pytest.raises(ContextOverflow) as info:
        plan(config(), sized(7000, 2000), CallOptions(local_only=True))
    assert info.value.context_length == 8192
    assert str(info.value).splitlines()[0].endswith("; local-only refused cloud/big")


def test_local_only_drops_hosted_candidates_and_says_so() -> None:
    found = plan(config(), sized(10, 10), CallOptions(local_only=True))
    assert [c.name for c in found.runnable] == ["local/small", "mid/m"]
    assert found.refused == ["cloud/big"]
    assert [why for _, why, _ in found.skipped] == [Skip.LOCAL_ONLY]


def test_only_hosted_candidates_under_local_only_is_refused_before_any_call() -> None:
    with pytest.raises(LocalOnlyRefused) as info:
        plan(config(), sized(10, 10), CallOptions(model="cloud/big", fallbacks=False, local_only=True))
    assert info.value.refused == ("cloud/big",)
    assert info.value.errors == ()


def test_refused_and_unsupported_are_both_named() -> None:
    opts = CallOptions(chain=("cloud/big", "odd/g"), local_only=True)
    with pytest.raises(LocalOnlyRefused) as info:
        plan(config(), sized(10, 10), opts)
    assert info.value.refused == ("cloud/big",)
    assert "also skipped: odd/g (unsupported api 'google-generative-ai')" in str(info.value)


def test_a_chain_of_only_unsupported_apis_is_all_candidates_failed() -> None:
    with pytest.raises(AllCandidatesFailed) as info:
        plan(config(), sized(10, 10), CallOptions(chain=("odd/g",)))
    assert [a.error for a in info.value.attempts] == ["unsupported api 'google-generative-ai'"]


def test_a_thread_continuation_skips_apis_without_server_side_threads() -> None:
    request = ChatRequest.from_prompt("and then?", previous_response_id="resp_1")
    with pytest.raises(AllCandidatesFailed) as info:
        plan(config(), request, CallOptions())
    assert {a.error for a in info.value.attempts} == {Skip.NO_THREAD.value}


def test_local_only_is_a_floor_that_the_global_setting_a_task_or_a_call_can_raise() -> None:
    assert local_only(config(localOnly=True), CallOptions()) is True
    cfg = config(tasks={"triage": {"localOnly": True}})
    assert local_only(cfg, CallOptions()) is False
    assert local_only(cfg, CallOptions(task="triage")) is True
    assert local_only(config(), CallOptions(local_only=True)) is True
    assert local_only(config(), CallOptions()) is False
    with pytest.raises(ConfigError, match="cannot lift the global"):
        config(localOnly=True, tasks={"triage": {"localOnly": False}})


def test_an_explicit_chain_is_resolved_and_deduplicated() -> None:
    cfg = config()
    chain = candidates(cfg, CallOptions(chain=("cloud/big", "local/small", "cloud/big")))
    assert [c.name for c in chain] == ["cloud/big", "local/small"]
    assert chain[0].model is not None
    assert chain[0].model.context_window == 200000


def test_nothing_fits_says_exactly_what_and_what_to_do() -> None:
    with pytest.raises(ContextOverflow) as info:
        plan(config(), sized(9000, 1000), CallOptions(model="local/small", fallbacks=False))
    assert info.value.message == (
        "the request (~10000 tokens) fits no candidate: "
        "local/small context window 4096 < ~10000 tokens needed"
    )
    assert info.value.remedy is not None
    assert "--max-output-tokens" in info.value.remedy


def test_refused_alone_has_the_plain_remedy() -> None:
    with pytest.raises(LocalOnlyRefused) as info:
        plan(config(), sized(10, 10), CallOptions(model="cloud/big", fallbacks=False, local_only=True))
    assert info.value.remedy == "add a local model to the chain, or drop local-only"


def test_a_chain_of_unsupported_apis_says_where_to_fix_it() -> None:
    with pytest.raises(AllCandidatesFailed) as info:
        plan(config(), sized(10, 10), CallOptions(chain=("odd/g",)))
    assert info.value.remedy is not None
    assert "offload config check" in info.value.remedy


def test_a_task_chain_comes_from_the_tasks_settings() -> None:
    cfg = config(tasks={"classify": {"model": "mid/m"}})
    assert candidates(cfg, CallOptions(task="classify"))[0].name == "mid/m"
    assert candidates(cfg, CallOptions())[0].name == "local/small"


def test_a_ref_to_an_undeclared_provider_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="unknown model 'nope/x'"):
        candidates(config(), CallOptions(chain=("nope/x",)))


async def test_a_routed_stream_left_early_closes_its_events_now() -> None:
    closed: list[bool] = []

    async def events() -> AsyncIterator[StreamEvent]:
        try:
            yield TextDelta("a")
            yield TextDelta("b")
        finally:
            closed.append(True)

    stream = RoutedStream(events())
    async for _ in stream:
        break
    assert closed == []
    await stream.aclose()
    assert closed == [True]


async def test_closing_a_routed_stream_over_a_plain_iterator_is_a_no_op() -> None:
    class Plain:
        def __aiter__(self) -> Plain:
            return self

        async def __anext__(self) -> StreamEvent:
            raise StopAsyncIteration

    stream = RoutedStream(Plain())
    await stream.aclose()
    assert stream.routed is None

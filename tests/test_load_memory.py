"""``offload load`` when memory runs out, with a TTL, and what it prints: the CLI against the
LM Studio fake (with a memory budget) over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from offload import loading
from offload.testing import FakeModel, LMStudioFake
from offload.types import ModelInfo
from tests.e2e import offload, write_config

GB = 1_000_000_000
MODELS = [
    FakeModel("qwen/qwen3-8b", size_bytes=8 * GB, params_string="8B"),
    FakeModel("qwen/qwen3-4b", size_bytes=4 * GB, params_string="4B"),
    FakeModel("google/gemma-3-1b", size_bytes=1 * GB, params_string="1B"),
    FakeModel("text-embedding-nomic", type="embedding", size_bytes=GB // 10, max_context_length=2048),
]


@pytest.fixture
def fake() -> Iterator[tuple[LMStudioFake, dict[str, str]]]:
    lms = LMStudioFake(MODELS, memory_bytes=int(8.5 * GB))
    with lms.serve() as server:
        yield lms, {"LM_STUDIO_API_URL": server.url}


def loads(lms: LMStudioFake) -> list[str]:
    return [str(r.body["model"]) for r in lms.requests if r.path == "/api/v1/models/load"]


def test_out_of_memory_unloads_what_offload_loaded_and_retries_once(
    fake: tuple[LMStudioFake, dict[str, str]],
) -> None:
    lms, env = fake
    assert offload("load", "google/gemma-3-1b", env=env).code == 0
    run = offload("load", "qwen/qwen3-8b", env=env)
    assert run.code == 0, run.err
    assert "unloaded google/gemma-3-1b (loaded earlier by offload) to free memory" in run.err
    assert lms.loaded_instances() == ["qwen/qwen3-8b"]
    assert loads(lms) == ["google/gemma-3-1b", "qwen/qwen3-8b", "qwen/qwen3-8b"]


def test_out_of_memory_never_unloads_hand_loaded_models_and_steps_down_a_size(
    fake: tuple[LMStudioFake, dict[str, str]],
) -> None:
    lms, env = fake
    lms.load("google/gemma-3-1b")  # loaded by the user, not by offload
    run = offload("load", "qwen/qwen3-8b", "--json", env=env)
    assert run.code == 0, run.err
    assert run.json()["instance_id"] == "qwen/qwen3-4b"
    note = "qwen/qwen3-8b did not fit in memory; loaded the smaller qwen/qwen3-4b instead"
    assert run.json()["note"] == note
    assert lms.loaded_instances() == ["google/gemma-3-1b", "qwen/qwen3-4b"]


def test_out_of_memory_with_nothing_to_free_is_one_clear_error(
    fake: tuple[LMStudioFake, dict[str, str]],
) -> None:
    lms, env = fake
    lms.config.memory_bytes = GB // 2
    run = offload("load", "google/gemma-3-1b", env=env)
    assert run.code == 8
    error = next(line for line in run.err.splitlines() if line.startswith("error:"))
    assert error.startswith("error: google/gemma-3-1b does not fit in the memory left on http://127.0.0.1:")
    assert "no smaller model of the same family" in run.err
    assert "Traceback" not in run.err
    assert loads(lms) == ["google/gemma-3-1b"]  # an out-of-memory load is not retried unchanged


def test_already_loaded_key_prints_no_loading_line(fake: tuple[LMStudioFake, dict[str, str]]) -> None:
    lms, env = fake
    lms.load("google/gemma-3-1b")
    run = offload("load", "google/gemma-3-1b", env=env)
    assert run.code == 0, run.err
    assert "loading" not in run.err
    assert "already loaded as google/gemma-3-1b" in run.out


def test_a_real_load_says_loading_model(fake: tuple[LMStudioFake, dict[str, str]]) -> None:
    _, env = fake
    run = offload("load", "google/gemma-3-1b", env=env)
    assert run.code == 0, run.err
    assert "loading model google/gemma-3-1b …" in run.err


def test_load_ttl_uses_lm_studios_idle_ttl(fake: tuple[LMStudioFake, dict[str, str]]) -> None:
    lms, env = fake
    run = offload("load", "qwen/qwen3-4b", "--ttl", "600", env=env)
    assert run.code == 0, run.err
    assert run.out.endswith(", unloaded after 600s idle\n")
    assert lms.instance_ttl("qwen/qwen3-4b") == 600
    assert loads(lms) == []  # the native load endpoint rejects ttl; a JIT request carries it
    warm = next(r.body for r in lms.requests if r.path == "/v1/chat/completions")
    assert warm["ttl"] == 600


def test_keep_warm_setting_is_the_default_ttl(
    fake: tuple[LMStudioFake, dict[str, str]], offload_home: Path
) -> None:
    lms, env = fake
    write_config(offload_home, "{offload: {keepWarm: 900, embedded: {enabled: false}}}")
    run = offload("load", "text-embedding-nomic", env=env)
    assert run.code == 0, run.err
    assert lms.instance_ttl("text-embedding-nomic") == 900
    assert next(r.body for r in lms.requests if r.path == "/v1/embeddings")["ttl"] == 900


def test_ttl_with_load_options_is_refused(fake: tuple[LMStudioFake, dict[str, str]]) -> None:
    _, env = fake
    run = offload("load", "qwen/qwen3-4b", "--ttl", "60", "--context-length", "8192", env=env)
    assert run.code == 2
    assert "cannot load with a TTL and load options at once" in run.err


def test_load_events_reach_subscribers() -> None:
    seen: list[str] = []
    stop = loading.subscribe(lambda e: seen.append(f"{e.phase} {e.model}"))
    try:
        with loading.announced("lmstudio", "http://x", "m"):
            pass
        with pytest.raises(RuntimeError), loading.announced("lmstudio", "http://x", "n"):
            raise RuntimeError("boom")
    finally:
        stop()
    assert seen == ["start m", "done m", "start n", "failed n"]


def test_smaller_sibling_stays_in_the_family() -> None:
    models = [
        ModelInfo("qwen/qwen3-8b", size_bytes=8),
        ModelInfo("qwen/qwen3-4b", size_bytes=4),
        ModelInfo("qwen/qwen3-1.7b", size_bytes=2),
        ModelInfo("qwen/qwen2.5-3b", size_bytes=3),
        ModelInfo("google/gemma-3-1b", size_bytes=1),
    ]
    sibling = loading.smaller_sibling(models, "qwen/qwen3-8b")
    assert sibling is not None
    assert sibling.key == "qwen/qwen3-4b"
    assert loading.smaller_sibling(models, "google/gemma-3-1b") is None
    assert loading.family("google/gemma-4-e4b") == "google/gemma-4-*"

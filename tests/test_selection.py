"""Model choice: need first (LLM, vision, context), then loaded, then size."""

from __future__ import annotations

import pytest

from offload.errors import ModelNotFound
from offload.protocols.lmstudio import parse_models
from offload.routing.selection import Need, choose, size_of
from offload.types import ChatRequest, LoadedInstance, ModelInfo
from tests.conftest import recorded

MODELS = parse_models(recorded("api-v1-models"))


def test_loaded_model_is_preferred_when_it_fits() -> None:
    choice = choose(MODELS, Need(tokens=1000))
    assert choice.model.key == "google/gemma-3-1b"
    assert "already loaded" in choice.reasons
    assert choice.context_length is None


def test_embedding_models_are_never_chosen() -> None:
    only_embedding = [m for m in MODELS if not m.is_llm]
    with pytest.raises(ModelNotFound, match="embedding model"):
        choose(only_embedding, Need(tokens=10))


def test_vision_need_skips_text_only_models() -> None:
    choice = choose(MODELS, Need(tokens=1000, vision=True), prefer="fast")
    assert choice.model.key == "google/gemma-4-e4b"
    quality = choose(MODELS, Need(tokens=1000, vision=True), prefer="quality")
    assert quality.model.key == "google/gemma-4-26b-a4b-qat"


def test_loaded_context_too_small_moves_to_an_unloaded_model_with_room() -> None:
    choice = choose(MODELS, Need(tokens=20_000))
    assert choice.model.key == "qwen/qwen3-4b-2507"  # smallest unloaded with >= 20k window
    assert choice.context_length == 32768
    assert any("google/gemma-3-1b: context loaded with 8192" in r for r in choice.reasons)


def test_nothing_fits_names_every_reason() -> None:
    with pytest.raises(ModelNotFound) as info:
        choose(MODELS, Need(tokens=10_000_000))
    msg = str(info.value)
    assert "qwen/qwen3-4b-2507: context max 262144" in msg
    assert "text-embedding-nomic-embed-text-v1.5: embedding model" in msg


def test_need_estimates_prompt_and_images() -> None:
    req = ChatRequest.from_prompt("x" * 3500, images=("data:image/png;base64,AA",))
    need = Need.of(req, 500)
    assert need.vision
    assert 1500 <= need.tokens <= 1600


def test_size_falls_back_to_params_string() -> None:
    assert size_of(ModelInfo("a", params_string="7B")) == 7e9
    assert size_of(ModelInfo("b", params_string="26B-A4B")) == 26e9
    assert size_of(ModelInfo("c")) == 0.0
    small = ModelInfo("small", params_string="1B", loaded_instances=(LoadedInstance("small", 4096),))
    big = ModelInfo("big", params_string="8B", loaded_instances=(LoadedInstance("big", 4096),))
    assert choose([big, small], Need(100)).model.key == "small"
    assert choose([big, small], Need(100), prefer="quality").model.key == "big"

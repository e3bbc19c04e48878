"""Internal vocabulary of the LM Studio fake's generation engine.

Owns the events every route family renders (``Started``, ``LoadStart``/``LoadProgress``/``LoadEnd``,
``PromptStart``/``PromptProgress``/``PromptEnd``, ``Delta``, ``DropNow``, ``Finished``), ``Target``
(which model/instance answers), ``TurnPlan`` (a validated request, independent of the route family)
and ``TurnResult`` (what a finished generation produced).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from offload.testing._lmstudio_faults import Fault
from offload.testing._lmstudio_models import FakeModel, Instance
from offload.testing._lmstudio_text import FakeMessage


@dataclass(frozen=True)
class Started:
    instance_id: str


@dataclass(frozen=True)
class LoadStart:
    instance_id: str


@dataclass(frozen=True)
class LoadProgress:
    instance_id: str
    progress: float


@dataclass(frozen=True)
class LoadEnd:
    instance_id: str
    seconds: float


@dataclass(frozen=True)
class PromptStart:
    pass


@dataclass(frozen=True)
class PromptProgress:
    progress: float


@dataclass(frozen=True)
class PromptEnd:
    input_tokens: int


@dataclass(frozen=True)
class Delta:
    channel: Literal["reasoning", "message"]
    text: str


@dataclass(frozen=True)
class DropNow:
    """The stream must be cut here (``drop`` fault on a streaming request)."""


@dataclass(frozen=True)
class TurnResult:
    instance_id: str
    model_key: str
    input_tokens: int
    reasoning: str
    reasoning_tokens: int
    text: str
    text_tokens: int
    finish_reason: Literal["stop", "length"]
    stop_sequence: str | None
    time_to_first_token: float
    tokens_per_second: float
    load_seconds: float | None
    response_id: str | None

    @property
    def output_tokens(self) -> int:
        return self.reasoning_tokens + self.text_tokens


@dataclass(frozen=True)
class Finished:
    result: TurnResult


Event = (
    Started
    | LoadStart
    | LoadProgress
    | LoadEnd
    | PromptStart
    | PromptProgress
    | PromptEnd
    | Delta
    | DropNow
    | Finished
)


@dataclass(frozen=True)
class Target:
    """The model that answers, its instance, or ``None`` when a JIT load is needed (with this context)."""

    model: FakeModel
    instance: Instance | None = None
    context_length: int | None = None


@dataclass
class TurnPlan:
    """A validated generation request, independent of the route family."""

    target: Target
    route: str
    user_text: str
    system_prompt: str | None = None
    history: tuple[FakeMessage, ...] = ()
    images: tuple[str, ...] = ()
    parent_id: str | None = None
    store: bool = False
    max_output_tokens: int | None = None
    json_schema: Mapping[str, Any] | None = None
    reasoning: str | None = None
    stop: tuple[str, ...] = ()
    system_role_bug: bool = False
    fault: Fault | None = None
    request: Mapping[str, Any] = field(default_factory=dict)
    response_id: str | None = None

    @property
    def reasons(self) -> bool:
        return self.target.model.supports_reasoning and self.reasoning not in (None, "off")

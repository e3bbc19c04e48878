"""What a task is: the request it sends, the output it expects, and how an answer is judged.

A ``TaskSpec`` is built per call by a task function (``offload.tasks.builtin``) or from a
user template (``offload.tasks.templates``). The runner only knows this shape: it sends
``request()``, turns the answer into output with ``accept()`` — which returns problems when the
answer is not good enough — and renders it with ``render()``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from offload.tasks import checks
from offload.tasks.structured import parse_json, validate
from offload.types import ChatRequest, ChatResult, JsonSchema, Message

OutputKind = Literal["text", "json"]
Problems = list[str]


@dataclass(frozen=True)
class TaskSpec:
    """One task call, fully prepared."""

    name: str
    system: str
    prompt: str
    output: OutputKind = "text"
    schema: Mapping[str, Any] | None = None
    source: str = ""
    """The input text, for echo checks."""
    max_output_tokens: int | None = None
    temperature: float | None = 0.2
    text_checks: tuple[Callable[[str], str | None], ...] = ()
    """Extra checks on free text (each returns a problem or ``None``)."""
    data_checks: tuple[Callable[[Any], str | None], ...] = ()
    """Extra checks on parsed JSON output."""
    post: Callable[[Any], Any] | None = None
    """Normalise parsed output before validation (e.g. label case)."""
    render: Callable[[Any], str] = str
    """Human text of the output."""
    rubric: str = "Is the answer correct, complete and faithful to the input?"
    """What a judge model is asked to score."""
    meta: Mapping[str, Any] = field(default_factory=dict)

    def request(self, **overrides: Any) -> ChatRequest:
        """The chat request for this task."""
        fmt = JsonSchema(self.schema, name=self.name) if self.output == "json" and self.schema else None
        options: dict[str, Any] = {
            "max_output_tokens": self.max_output_tokens,
            "temperature": self.temperature,
            "response_format": fmt,
        }
        options.update(overrides)
        return ChatRequest(messages=(Message("system", self.system), Message("user", self.prompt)), **options)

    def reask(self, answer: str, problems: Problems) -> ChatRequest:
        """A follow-up request quoting the bad answer and what was wrong with it."""
        base = self.request()
        fix = (
            "Your answer was not acceptable:\n- "
            + "\n- ".join(problems)
            + "\n"
            + (
                "Reply again with only the JSON object, matching the schema exactly."
                if self.output == "json"
                else "Answer again, fixing these problems. Reply with the answer only."
            )
        )
        messages = (*base.messages, Message("assistant", answer), Message("user", fix))
        return ChatRequest(
            messages=messages,
            max_output_tokens=base.max_output_tokens,
            temperature=base.temperature,
            response_format=base.response_format,
        )

    def accept(self, result: ChatResult) -> tuple[Any, Problems]:
        """The output and its problems (empty when the answer passes the cheap checks)."""
        text = checks.visible(result.content)
        problems = checks.gate(result.content, source=self.source, instructions=(self.system, self.prompt))
        if problems:
            return text, problems
        if result.finish_reason == "length" and self.output == "json":
            problems.append("the answer was cut off at the output limit")
        if self.output == "text":
            problems += [p for check in self.text_checks if (p := check(text))]
            if self.source and (p := checks.echo(text, self.source, self.prompt)):
                problems.append(p)
            return text, problems
        try:
            data = parse_json(text)
        except ValueError as exc:
            return text, [*problems, str(exc)]
        if self.post is not None:
            data = self.post(data)
        if self.schema is not None:
            problems += validate(data, self.schema)
        if not problems:
            problems += [p for check in self.data_checks if (p := check(data))]
        return data, problems

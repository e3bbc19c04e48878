"""The kinds of work offload takes off paid providers, as async library functions.

Each function routes through an ``Offloader`` (the given one, or a new one from the config
file), applies the task's quality gate and escalation, and returns a ``TaskResult``::

    from offload import tasks
    result = await tasks.summarize(text, length="bullets")
    print(result.text, result.model, result.escalated)

Keyword settings shared by all: ``model``, ``local_only``, ``gate`` (off|checks|judge),
``on_fail`` (escalate|fail|warn), ``judge``, ``offloader``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from offload.offloader import Offloader
    from offload.tasks.runner import TaskResult, TaskRunner
    from offload.tasks.spec import TaskSpec

BUILTIN_TASKS = ("summarize", "extract", "classify", "rewrite", "review", "brainstorm", "translate")
SETTINGS = (
    "model",
    "local_only",
    "gate",
    "on_fail",
    "judge",
    "judge_sample",
    "judge_threshold",
    "reasks",
    "chain",
)


@asynccontextmanager
async def _runner(offloader: Offloader | None) -> AsyncIterator[TaskRunner]:
    from offload.offloader import Offloader
    from offload.tasks.runner import TaskRunner

    if offloader is not None:
        yield TaskRunner(offloader.router)
        return
    async with Offloader() as off:
        yield TaskRunner(off.router)


async def run_spec(spec: TaskSpec, *, offloader: Offloader | None = None, **settings: Any) -> TaskResult:
    """Run any prepared ``TaskSpec`` with the task's configured settings plus ``settings``."""
    _check(settings)
    async with _runner(offloader) as runner:
        return await runner.run(spec, runner.settings_for(spec.name, **settings))


def _check(settings: Mapping[str, Any]) -> None:
    unknown = [k for k in settings if k not in SETTINGS]
    if unknown:
        raise TypeError(f"unknown task setting(s): {', '.join(unknown)}; known: {', '.join(SETTINGS)}")


async def summarize(
    text: str,
    length: str | int = "paragraph",
    *,
    focus: str | None = None,
    offloader: Offloader | None = None,
    **settings: Any,
) -> TaskResult:
    """Summarize ``text`` (sentence, paragraph, bullets, or a word budget); any length of input."""
    from offload.tasks.long_input import summarize_text

    _check(settings)
    async with _runner(offloader) as runner:
        return await summarize_text(runner, text, length, focus, runner.settings_for("summarize", **settings))


async def extract(
    text: str,
    *,
    schema: Mapping[str, Any] | None = None,
    fields: str | None = None,
    offloader: Offloader | None = None,
    **settings: Any,
) -> TaskResult:
    """Extract JSON that validates against ``schema`` (or a ``fields`` list like ``"name, age int"``)."""
    from offload.errors import InputError
    from offload.tasks import builtin
    from offload.tasks.structured import check_schema, schema_from_fields

    if (schema is None) == (fields is None):
        raise InputError(
            "give either a JSON Schema or a field list", remedy="--schema FILE or --fields 'a, b int'"
        )
    resolved = (
        check_schema(dict(schema), "schema") if schema is not None else schema_from_fields(fields or "")
    )
    return await run_spec(builtin.extract(text, resolved), offloader=offloader, **settings)


async def classify(
    text: str,
    labels: Sequence[str],
    *,
    multi: bool = False,
    confidence: bool = False,
    instructions: str | None = None,
    offloader: Offloader | None = None,
    **settings: Any,
) -> TaskResult:
    """Pick one of ``labels`` (several with ``multi``), optionally with the model's confidence."""
    from offload.tasks import builtin

    spec = builtin.classify(text, labels, multi=multi, confidence=confidence, instructions=instructions)
    return await run_spec(spec, offloader=offloader, **settings)


async def rewrite(
    text: str, instruction: str, *, offloader: Offloader | None = None, **settings: Any
) -> TaskResult:
    """Rewrite ``text`` as ``instruction`` says (tone, audience, length)."""
    from offload.tasks import builtin

    return await run_spec(builtin.rewrite(text, instruction), offloader=offloader, **settings)


async def review(
    text: str,
    *,
    focus: str | None = None,
    kind: str = "code",
    offloader: Offloader | None = None,
    **settings: Any,
) -> TaskResult:
    """First-pass review of a diff or file: summary plus findings (location, severity, message)."""
    from offload.tasks import builtin

    return await run_spec(builtin.review(text, focus=focus, kind=kind), offloader=offloader, **settings)


async def brainstorm(
    topic: str, count: int = 5, *, offloader: Offloader | None = None, **settings: Any
) -> TaskResult:
    """``count`` distinct ideas on ``topic``."""
    from offload.tasks import builtin

    return await run_spec(builtin.brainstorm(topic, count), offloader=offloader, **settings)


async def translate(
    text: str,
    target: str,
    *,
    source_language: str | None = None,
    offloader: Offloader | None = None,
    **settings: Any,
) -> TaskResult:
    """Translate ``text`` into ``target``."""
    from offload.tasks import builtin

    spec = builtin.translate(text, target, source_language=source_language)
    return await run_spec(spec, offloader=offloader, **settings)


async def run_template(
    name: str,
    text: str,
    variables: Mapping[str, str] | None = None,
    *,
    offloader: Offloader | None = None,
    **settings: Any,
) -> TaskResult:
    """Run the user-defined task ``name`` from the config dir's ``tasks/`` folder."""
    from offload.tasks.templates import load_template

    template = load_template(name)
    defaults: dict[str, Any] = {
        "chain": (template.chain.primary, *template.chain.fallbacks) if template.chain else None,
        "gate": template.gate,
        "on_fail": template.on_fail,
    }
    merged = {**{k: v for k, v in defaults.items() if v is not None}, **settings}
    return await run_spec(template.spec(text, variables or {}), offloader=offloader, **merged)


__all__ = [
    "BUILTIN_TASKS",
    "brainstorm",
    "classify",
    "extract",
    "review",
    "rewrite",
    "run_spec",
    "run_template",
    "summarize",
    "translate",
]

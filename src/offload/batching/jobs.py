"""What a batch does to one item, per task: build its ``TaskSpec`` and run it through the task runner.

Owns ``Job`` and ``make_job``: the built-in tasks (summarize, extract, classify, rewrite, review,
brainstorm, translate) with the same options as ``offload.tasks``; user templates by name (their
``{variables}`` come from the item's fields, over ``variables``); and ``ask``, a raw prompt
template (``{text}`` and any field). String options of built-in tasks may use ``{field}`` too,
e.g. ``to="{lang}"`` translates each item into its own language. Summaries keep the long-input
path (split, summarize parts, combine), so an item larger than the context is split, never cut;
other tasks reject such an item with a clear context-overflow error on its line.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from offload.batching.inputs import Item
from offload.errors import InputError, OffloadError
from offload.tasks.runner import RunSettings, TaskResult, TaskRunner
from offload.tasks.spec import TaskSpec

if TYPE_CHECKING:
    from offload.selection import Need

VAR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
BUILTIN = ("summarize", "extract", "classify", "rewrite", "review", "brainstorm", "translate")
OPTIONS: dict[str, tuple[str, ...]] = {
    "summarize": ("length", "focus"),
    "extract": ("schema", "fields"),
    "classify": ("labels", "multi", "confidence", "instructions"),
    "rewrite": ("instruction",),
    "review": ("focus", "kind"),
    "brainstorm": ("count",),
    "translate": ("target", "source_language"),
    "ask": ("prompt", "system", "max_output_tokens", "temperature", "schema"),
    "template": ("variables",),
}
Builder = Callable[[Item, Callable[[Any], Any]], TaskSpec]


def render(value: Any, item: Item, *, strict: bool = True) -> Any:
    """``value`` with ``{field}`` replaced from ``item`` (strings only; ``strict`` wants every field)."""
    if not isinstance(value, str) or "{" not in value:
        return value
    values = item.variables()

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in values:
            return values[name]
        if strict:
            raise InputError(f"item {item.key!r} has no field {name!r} for {{{name}}}")
        return "x"

    return VAR.sub(sub, value)


@dataclass
class Job:
    """One task as a batch runs it."""

    name: str
    """The task name (config settings ``offload.tasks.<name>``, ledger, cache key)."""
    build: Builder
    needs_text: bool = True
    defaults: dict[str, Any] = field(default_factory=dict)
    """Run settings the task brings (a template's own chain, gate, on_fail)."""
    summary: tuple[str | int, str | None] | None = None
    """(length, focus) for summaries, which take the long-input path."""
    probe_fields: dict[str, Any] = field(default_factory=dict)
    """Stand-in fields for ``check`` (variables every item is expected to bring)."""

    def spec(self, item: Item) -> TaskSpec:
        """The item's request (``InputError`` when a field it needs is missing)."""
        return self.build(item, lambda v: render(v, item))

    def check(self) -> None:
        """Fail early (``InputError``) when the options are unusable for every item."""
        probe = Item("check", "check text", self.probe_fields)
        self.build(probe, lambda v: render(v, probe, strict=False))

    async def run(self, runner: TaskRunner, item: Item, settings: RunSettings, spec: TaskSpec) -> TaskResult:
        """Run one item through gate, re-asks and escalation."""
        if self.summary is not None:
            from offload.tasks.long_input import summarize_text

            length, focus = self.summary
            return await summarize_text(runner, item.text or "", length, render(focus, item), settings)
        return await runner.run(spec, settings)


def fingerprint(spec: TaskSpec) -> dict[str, Any]:
    """What makes two items' requests identical (for the result cache)."""
    return {
        "name": spec.name,
        "system": spec.system,
        "prompt": spec.prompt,
        "output": spec.output,
        "schema": spec.schema,
        "max_output_tokens": spec.max_output_tokens,
        "temperature": spec.temperature,
        "meta": {k: v for k, v in spec.meta.items() if isinstance(v, str | int | float | bool | list)},
    }


def make_job(task: str, options: Mapping[str, Any]) -> Job:
    """The job for ``task`` (a built-in, ``ask``, or a user template name) with its options."""
    kind = task if task in BUILTIN or task == "ask" else "template"
    unknown = [k for k in options if k not in OPTIONS[kind]]
    if unknown:
        raise TypeError(
            f"unknown option(s) for batch {task}: {', '.join(unknown)}; known: {', '.join(OPTIONS[kind])}"
        )
    if kind == "ask":
        job = _ask(options)
    elif kind == "template":
        job = _template(task, options)
    else:
        job = _builtin(task, options)
    job.check()
    return job


def _builtin(task: str, o: Mapping[str, Any]) -> Job:
    from offload.tasks import builtin

    text: Callable[[Item], str] = lambda item: item.text or ""  # noqa: E731
    if task == "summarize":
        length: str | int = o.get("length", "paragraph")
        if isinstance(length, str) and length.isdigit():
            length = int(length)
        focus = o.get("focus")
        return Job(
            task, lambda i, r: builtin.summarize(text(i), length, focus=r(focus)), summary=(length, focus)
        )
    if task == "extract":
        schema = _schema(o.get("schema"), o.get("fields"))
        return Job(task, lambda i, r: builtin.extract(text(i), schema))
    if task == "classify":
        labels = _labels(o.get("labels"))
        return Job(
            task,
            lambda i, r: builtin.classify(
                text(i),
                labels,
                multi=bool(o.get("multi")),
                confidence=bool(o.get("confidence")),
                instructions=r(o.get("instructions")),
            ),
        )
    if task == "rewrite":
        return Job(task, lambda i, r: builtin.rewrite(text(i), r(o.get("instruction") or "")))
    if task == "review":
        return Job(
            task,
            lambda i, r: builtin.review(text(i), focus=r(o.get("focus")), kind=r(o.get("kind") or "code")),
        )
    if task == "brainstorm":
        count = int(o.get("count", 5))
        return Job(task, lambda i, r: builtin.brainstorm(text(i), count))
    return Job(
        task,
        lambda i, r: builtin.translate(
            text(i), r(o.get("target") or ""), source_language=r(o.get("source_language"))
        ),
    )


def _schema(schema: Mapping[str, Any] | None, fields: str | None) -> Mapping[str, Any]:
    from offload.tasks.structured import check_schema, schema_from_fields

    if (schema is None) == (fields is None):
        raise InputError(
            "give either a JSON Schema or a field list", remedy="--schema FILE or --fields 'a, b int'"
        )
    return check_schema(dict(schema), "schema") if schema is not None else schema_from_fields(fields or "")


def _labels(labels: str | Sequence[str] | None) -> list[str]:
    if isinstance(labels, str):
        labels = labels.split(",")
    found = [x.strip() for x in labels or () if x.strip()]
    if len(found) < 2:
        raise InputError(
            "classification needs at least two labels", remedy="e.g. --labels bug,feature,question"
        )
    return found


def _ask(o: Mapping[str, Any]) -> Job:
    prompt = str(o.get("prompt") or "{text}")
    uses_text = "{text}" in prompt
    schema = o.get("schema")
    if schema is not None:
        from offload.tasks.structured import check_schema

        schema = check_schema(dict(schema), "schema")

    def build(item: Item, r: Callable[[Any], Any]) -> TaskSpec:
        text = r(prompt)
        if not str(text).strip():
            raise InputError(f"item {item.key!r}: the prompt is empty")
        return TaskSpec(
            name="ask",
            system=str(r(o.get("system") or "You are a helpful assistant.")),
            prompt=str(text),
            output="json" if schema is not None else "text",
            schema=schema,
            source="",
            max_output_tokens=o.get("max_output_tokens"),
            temperature=o.get("temperature"),
            render=str if schema is None else _dumps,
        )

    return Job("ask", build, needs_text=uses_text)


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


def _template(name: str, o: Mapping[str, Any]) -> Job:
    from offload.tasks.templates import load_template

    template = load_template(name)
    given = {str(k): str(v) for k, v in dict(o.get("variables") or {}).items()}
    defaults: dict[str, Any] = {
        "chain": (template.chain.primary, *template.chain.fallbacks) if template.chain else None,
        "gate": template.gate,
        "on_fail": template.on_fail,
    }

    def build(item: Item, r: Callable[[Any], Any]) -> TaskSpec:
        return template.spec(item.text or "", {**given, **item.variables()})

    return Job(
        name,
        build,
        defaults={k: v for k, v in defaults.items() if v is not None},
        probe_fields=dict.fromkeys(template.variables, "x"),
    )


def typical_need(job: Job, todo: list[Item]) -> Need | None:
    """The median request size of the first items, for choosing an ``auto`` model."""
    from offload.selection import Need
    from offload.tokens import DEFAULT_MAX_OUTPUT

    needs: list[Need] = []
    for item in todo[:32]:
        with contextlib.suppress(OffloadError):
            spec = job.spec(item)
            needs.append(Need.of(spec.request(), spec.max_output_tokens or DEFAULT_MAX_OUTPUT))
    if not needs:
        return None
    needs.sort(key=lambda n: n.tokens)
    return needs[len(needs) // 2]

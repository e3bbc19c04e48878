"""The task table: every task offload offers, declared once (the shapes, ``Option`` and
``TaskDef``, and the shared settings are in ``offload.tasks.taskdef``, re-exported here).

Each ``TaskDef`` names a task, says in one line what it does, lists its input and its options
(``Option``: name, type, default, help, choices, required), points at the prompt builder that
turns them into a ``TaskSpec``, and states its output kind and the checks its gate applies.
Everything else is derived from ``TASKS``:

- the ``offload.tasks`` functions (``summarize(text, length=..., ...)``…), their signatures
  built from the options (``library_signature``);
- the ``offload <task>`` and ``offload batch <task>`` commands (``offload.cli.tasks``,
  ``offload.cli.batch``);
- batch jobs (``offload.batching.jobs``);
- each task's input JSON Schema, ``input_schema(name)``, for tool servers (MCP).

Public API (kept stable)::

    from offload.tasks.table import TASKS, SETTINGS, input_schema, template_task, get_task
    TASKS["translate"].options          # (Option("target", ...), Option("source_language", ...))
    TASKS["translate"].on("batch")      # the options one surface offers (library|cli|batch|schema)
    TASKS["translate"].values({"target": "de"})    # checked, coerced, defaults filled
    settings_on("schema")               # the shared settings a surface offers (model, gate, ...)
    check_settings({"gate": "judge"})   # TypeError for unknown names, InputError for bad values
    input_schema("translate")           # {"type": "object", "properties": {"text": ..., "target": ...}}
    input_schema("run", templates=["changelog"])   # ``name`` becomes an enum of the templates
    template_task("changelog")          # a user template (<config>/tasks/NAME.json5) as a TaskDef
    await offload.tasks.run_task("translate", text, {"target": "German"}, offloader=off)

``run`` is the user-template task: its options are the template ``name`` and its
``variables``; ``resolve`` turns it into the template's own ``TaskDef``. ``ask`` is a raw prompt.
Adding a task: write its builder in ``offload.tasks.builtin``, add its entry here, and export
its function in ``offload.tasks`` (one line; a test fails when it is missing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from offload.errors import InputError
from offload.tasks.taskdef import (
    ALL,
    GATES,
    ON_FAIL,
    SETTINGS,
    Builder,
    Gate,
    OnFail,
    Option,
    OptionType,
    Runner,
    Surface,
    TaskDef,
    check_settings,
    library_signature,
    settings_on,
)

if TYPE_CHECKING:
    from offload.tasks.runner import RunSettings, TaskResult, TaskRunner
    from offload.tasks.spec import TaskSpec

__all__ = [
    "ALL",
    "GATES",
    "LENGTHS",
    "ON_FAIL",
    "SETTINGS",
    "TASKS",
    "Builder",
    "Gate",
    "OnFail",
    "Option",
    "OptionType",
    "Runner",
    "Surface",
    "TaskDef",
    "check_settings",
    "get_task",
    "input_schema",
    "library_signature",
    "settings_on",
    "template_task",
]


# --- the table -------------------------------------------------------------------------------


def _builtin(name: str) -> Builder:
    def build(text: str, /, **options: Any) -> TaskSpec:
        from offload.tasks import builtin

        spec: TaskSpec = getattr(builtin, name)(text, **options)
        return spec

    return build


async def _summarize(
    runner: TaskRunner, text: str, values: Mapping[str, Any], settings: RunSettings
) -> TaskResult:
    from offload.tasks.long_input import summarize_text

    return await summarize_text(runner, text, values["length"], values["focus"], settings)


def _review_kind(text: str, path: str | None) -> Mapping[str, Any]:
    if (path or "").endswith((".diff", ".patch")) or text.startswith(("diff --git", "--- ")):
        return {"kind": "diff"}
    return {"kind": "file" if path else "text"}


def _resolved_first(text: str, /, **options: Any) -> TaskSpec:
    raise TypeError("run is resolved into its template's task before it is built")


def _template(values: Mapping[str, Any]) -> tuple[TaskDef, dict[str, Any]]:
    task = template_task(str(values["name"]))
    return task, {str(k): str(v) for k, v in dict(values.get("variables") or {}).items()}


LENGTHS = ("sentence", "paragraph", "bullets")
_FOCUS = "What to concentrate on."
TASKS: Mapping[str, TaskDef] = {
    d.name: d
    for d in (
        TaskDef(
            "summarize",
            "Summarize text of any length (long inputs are split, never truncated).",
            _builtin("summarize"),
            (
                Option(
                    "length",
                    "string_or_integer",
                    "sentence, paragraph, bullets, or a word budget (a number).",
                    default="paragraph",
                    choices=LENGTHS,
                    minimum=5,
                    short="-l",
                ),
                Option("focus", "string", _FOCUS),
            ),
            checks=("within the length", "shorter than the input", "bullets when asked", "no echo"),
            input_help="The text to summarize (any length).",
            positional=("text", "length"),
            run=_summarize,
        ),
        TaskDef(
            "extract",
            "Extract structured data as JSON that validates against a schema.",
            _builtin("extract"),
            (
                Option("schema", "json_schema", "JSON Schema of the answer.", metavar="FILE"),
                Option(
                    "fields", "string", "Field list instead of a schema, e.g. 'name, age int, tags list'."
                ),
            ),
            output="json",
            checks=("valid against the schema",),
            input_help="The text to extract from.",
        ),
        TaskDef(
            "classify",
            "Classify text into one (or several) of the given labels.",
            _builtin("classify"),
            (
                Option(
                    "labels",
                    "string_list",
                    "The labels to choose from.",
                    required=True,
                    missing="classification needs at least two labels",
                ),
                Option("multi", "boolean", "Allow several labels.", default=False),
                Option("confidence", "boolean", "Ask the model how sure it is (0-1).", default=False),
                Option("instructions", "string", "Extra guidance on how to decide."),
            ),
            output="json",
            checks=("one of the labels",),
            input_help="The text to classify.",
            positional=("text", "labels"),
        ),
        TaskDef(
            "rewrite",
            "Rewrite text as instructed.",
            _builtin("rewrite"),
            (
                Option(
                    "instruction",
                    "string",
                    "How to rewrite: tone, audience, length…",
                    required=True,
                    flag="--how",
                    missing="rewrite needs an instruction",
                ),
            ),
            checks=("not identical to the input",),
            input_help="The text to rewrite.",
            positional=("text", "instruction"),
        ),
        TaskDef(
            "review",
            "First-pass review of a file or diff: a summary and located findings.",
            _builtin("review"),
            (
                Option("focus", "string", "What to look for (security, performance…)."),
                Option(
                    "kind",
                    "string",
                    "What the input is (code, diff, file, text…); the CLI guesses it from the input.",
                    default="code",
                ),
            ),
            output="json",
            checks=("findings with location, severity and message",),
            input_help="The code, file or diff to review.",
            metavar="PATH",
            cli_input="path",
            infer=_review_kind,
        ),
        TaskDef(
            "brainstorm",
            "Distinct ideas on a topic (near-duplicates removed).",
            _builtin("brainstorm"),
            (Option("count", "integer", "How many ideas.", default=5, minimum=1, maximum=50, short="-n"),),
            output="json",
            checks=("enough distinct ideas",),
            input="topic",
            input_help="The topic to brainstorm on.",
            metavar="TOPIC",
            positional=("topic", "count"),
        ),
        TaskDef(
            "translate",
            "Translate text into another language (checked to be in that language).",
            _builtin("translate"),
            (
                Option(
                    "target",
                    "string",
                    "Target language (e.g. German, ja).",
                    required=True,
                    flag="--to",
                    missing="translate needs a target language",
                ),
                Option(
                    "source_language",
                    "string",
                    "Source language, if the model should not guess.",
                    flag="--from",
                ),
            ),
            checks=("in the target language",),
            input_help="The text to translate.",
            positional=("text", "target"),
        ),
        TaskDef(
            "ask",
            "A raw prompt: the answer as text, or as JSON matching a schema.",
            _builtin("ask"),
            (
                Option(
                    "prompt",
                    "string",
                    "Prompt template: {text}, {id} and any field of the item.",
                    default="{text}",
                    short="-p",
                    surfaces=frozenset({"batch"}),
                ),
                Option("system", "string", "System prompt.", short="-s"),
                Option("max_output_tokens", "integer", "Cap on the answer's length.", minimum=1),
                Option("temperature", "number", "Sampling temperature.", minimum=0, maximum=2),
                Option(
                    "schema",
                    "json_schema",
                    "Answer as JSON valid against this schema.",
                    metavar="FILE",
                ),
            ),
            input_help="The prompt.",
            surfaces=frozenset({"library", "batch", "schema"}),
        ),
        TaskDef(
            "run",
            "Run a user-defined task from <config dir>/tasks/NAME.json5.",
            _resolved_first,
            (
                Option("name", "string", "The template's name.", required=True, argument=True),
                Option("variables", "string_map", "Template variables.", flag="--var", metavar="KEY=VALUE"),
            ),
            input_help="The text the template works on ({text}).",
            positional=("name", "text", "variables"),
            function="run_template",
            resolve=_template,
        ),
    )
}
"""Every task, by name."""


def get_task(name: str) -> TaskDef:
    """The task called ``name`` (``InputError`` naming the known ones otherwise)."""
    try:
        return TASKS[name]
    except KeyError:
        raise InputError(
            f"no task {name!r}", remedy=f"use one of {', '.join(TASKS)}, or run NAME for a user template"
        ) from None


def template_task(name: str, base: Any = None) -> TaskDef:
    """The user template ``<config dir>/tasks/NAME.json5`` as a task: its variables are its options."""
    from offload.tasks.templates import load_template

    template = load_template(name, base)
    options = tuple(
        Option(var, "string", f"Value for {{{var}}}.", default=template.defaults.get(var),
               required=var not in template.defaults, flag=f"--var {var}=...")
        for var in template.variables
        if var != "text"
    )  # fmt: skip
    chain = (template.chain.primary, *template.chain.fallbacks) if template.chain else None
    settings = {"chain": chain, "gate": template.gate, "on_fail": template.on_fail}
    return TaskDef(
        name,
        template.description or f"User task {name}.",
        lambda text, /, **variables: template.spec(text, variables),
        options,
        output="json" if template.output == "json" else "text",
        settings={k: v for k, v in settings.items() if v is not None},
        surfaces=frozenset({"library", "batch", "schema"}),
    )


def input_schema(
    task: str | TaskDef, *, settings: bool = True, templates: Sequence[str] | None = None
) -> dict[str, Any]:
    """The JSON Schema of a task's input: ``text``, its options and (``settings``) the shared
    settings. For ``run``, ``templates`` names the allowed template names."""
    d = get_task(task) if isinstance(task, str) else task
    props: dict[str, Any] = {"text": {"type": "string", "description": d.input_help}}
    options = d.on("schema")
    if d.name == "run" and templates is not None:
        options = tuple(replace(o, choices=tuple(templates)) if o.name == "name" else o for o in options)
    props.update({o.name: o.schema() for o in options})
    if settings:
        props.update({s.name: s.schema() for s in settings_on("schema")})
    return {
        "type": "object",
        "description": d.description,
        "properties": props,
        "required": ["text", *(o.name for o in options if o.required)],
        "additionalProperties": False,
    }

"""The task table: every task offload offers, declared once, and the settings they share.

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

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, get_args

from offload.errors import InputError

if TYPE_CHECKING:
    from offload.tasks.runner import RunSettings, TaskResult, TaskRunner
    from offload.tasks.spec import TaskSpec

Gate = Literal["off", "checks", "judge"]
OnFail = Literal["escalate", "fail", "warn"]
GATES: tuple[str, ...] = get_args(Gate)
ON_FAIL: tuple[str, ...] = get_args(OnFail)

OptionType = Literal[
    "string", "integer", "number", "boolean", "string_list", "json_schema", "string_map", "string_or_integer"
]
"""``string_list``: a list of strings (CLI: ``a,b,c`` or ``--NAME-file``); ``json_schema``: a JSON
Schema object (CLI: a file); ``string_map``: string variables (CLI: ``--var KEY=VALUE``);
``string_or_integer``: one of ``choices`` or a number (CLI: digits become the number)."""
Surface = Literal["library", "cli", "batch", "schema"]
ALL: frozenset[Surface] = frozenset(get_args(Surface))
Builder = Callable[..., "TaskSpec"]
Runner = Callable[["TaskRunner", str, Mapping[str, Any], "RunSettings"], Awaitable["TaskResult"]]


@dataclass(frozen=True)
class Option:
    """One input of a task (or one shared setting)."""

    name: str
    type: OptionType
    help: str
    default: Any = None
    choices: tuple[str, ...] = ()
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    flag: str | None = None
    """CLI long flag (default ``--name-with-dashes``)."""
    short: str | None = None
    off_flag: str | None = None
    """For a tri-state boolean: the CLI flag that sets it false (default unset)."""
    metavar: str | None = None
    argument: bool = False
    """A CLI positional argument (``offload run NAME``) instead of a flag."""
    surfaces: frozenset[Surface] = ALL

    @property
    def cli_flag(self) -> str:
        """The CLI long flag."""
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def per_item(self) -> bool:
        """Batch fills ``{field}`` placeholders in this option from each item."""
        return self.type == "string" and not self.choices

    def schema(self) -> dict[str, Any]:
        """This option as a JSON Schema property."""
        prop: dict[str, Any] = dict(_TYPES[self.type])
        if self.type == "string_or_integer":
            prop = {"anyOf": [{"type": "string", "enum": list(self.choices)}, {"type": "integer"}]}
            if self.minimum is not None:
                prop["anyOf"][1]["minimum"] = self.minimum
        elif self.choices:
            prop["enum"] = list(self.choices)
        if self.type != "string_or_integer":
            prop.update(
                {k: v for k, v in (("minimum", self.minimum), ("maximum", self.maximum)) if v is not None}
            )
        prop["description"] = self.help
        if self.default is not None:
            prop["default"] = self.default
        return prop

    def coerce(self, value: Any, task: str) -> Any:
        """``value`` in this option's shape (digit strings to numbers, ``a,b`` to a list)."""
        if value is None:
            return None
        if self.type == "string_list" and isinstance(value, str):
            return [x.strip() for x in value.split(",") if x.strip()]
        if self.type in ("integer", "string_or_integer") and isinstance(value, str) and value.isdigit():
            return int(value)
        if self.type == "string" and self.choices and value not in self.choices:
            raise InputError(
                f"{task}: {self.name} must be one of {', '.join(self.choices)}, not {value!r}",
                remedy=f"use {self.cli_flag} " + "|".join(self.choices),
            )
        return value


_TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "string_list": {"type": "array", "items": {"type": "string"}},
    "json_schema": {"type": "object"},
    "string_map": {"type": "object", "additionalProperties": {"type": "string"}},
    "string_or_integer": {},
}


@dataclass(frozen=True)
class TaskDef:
    """One task: what it takes, how its request is built, what it returns."""

    name: str
    description: str
    """One line; the command's help and the tool's description."""
    build: Builder
    """``build(text, **options) -> TaskSpec``."""
    options: tuple[Option, ...] = ()
    output: Literal["text", "json"] = "text"
    checks: tuple[str, ...] = ()
    """What the ``checks`` gate verifies beyond non-empty, no refusal, valid JSON."""
    input: str = "text"
    """The library's name for the main input (the JSON Schema always calls it ``text``)."""
    input_help: str = "The text to work on."
    metavar: str = "TEXT"
    cli_input: Literal["text", "path"] = "text"
    """How the CLI reads the input: TEXT/@FILE/stdin, or a PATH (or stdin)."""
    positional: tuple[str, ...] = ()
    """Library parameters before ``*`` (the input first unless listed)."""
    function: str = ""
    """The ``offload.tasks`` function name (default: the task name)."""
    run: Runner | None = None
    """Runs the task instead of ``runner.run(build(...))`` (summaries split long inputs)."""
    infer: Callable[[str, str | None], Mapping[str, Any]] | None = None
    """Option values guessed from the input and its path, for options left at their default."""
    resolve: Callable[[Mapping[str, Any]], tuple[TaskDef, dict[str, Any]]] | None = None
    """Turns the call into another task (``run`` → the named template)."""
    settings: Mapping[str, Any] = field(default_factory=dict)
    """Settings the task brings (a template's chain, gate, on_fail); the call's win."""
    surfaces: frozenset[Surface] = ALL

    def on(self, surface: Surface) -> tuple[Option, ...]:
        """The options offered on ``surface``."""
        return tuple(o for o in self.options if surface in o.surfaces)

    def option(self, name: str) -> Option:
        """The option called ``name``."""
        return next(o for o in self.options if o.name == name)

    def values(self, given: Mapping[str, Any], surface: Surface = "library") -> dict[str, Any]:
        """Every option's value: ``given`` checked and coerced, defaults for the rest.

        Unknown names raise ``TypeError``; a missing required option raises ``InputError``.
        """
        known = {o.name: o for o in self.on(surface)}
        unknown = [k for k in given if k not in known]
        if unknown:
            raise TypeError(
                f"unknown option(s) for {self.name}: {', '.join(unknown)}; known: {', '.join(known)}"
            )
        out: dict[str, Any] = {}
        for name, opt in known.items():
            value = opt.coerce(given.get(name), self.name)
            if value is None and opt.required:
                raise InputError(f"{self.name} needs {name}", remedy=f"give {opt.cli_flag} ({opt.help})")
            out[name] = opt.default if value is None else value
        return out

    async def execute(
        self, runner: TaskRunner, text: str, values: Mapping[str, Any], settings: RunSettings
    ) -> TaskResult:
        """Run the task once on ``runner`` with resolved option ``values``."""
        if self.run is not None:
            return await self.run(runner, text, values, settings)
        return await runner.run(self.build(text, **values), settings)


# --- the shared settings ---------------------------------------------------------------------

_PUBLIC: frozenset[Surface] = ALL
_LIBRARY: frozenset[Surface] = frozenset({"library"})
SETTINGS: tuple[Option, ...] = (
    Option(
        "model", "string", "Model, alias or provider/model to start the chain.", short="-m", metavar="REF"
    ),
    Option("local_only", "boolean", "Never contact a hosted provider.", off_flag="--allow-hosted"),
    Option("gate", "string", "Quality gate (default: checks).", choices=GATES),
    Option(
        "on_fail", "string", "When the gate fails (default: escalate to the next model).", choices=ON_FAIL
    ),
    Option("judge", "string", "Model that scores answers for gate judge.", metavar="REF"),
    Option("judge_sample", "number", "Share of local answers the judge scores.", surfaces=_LIBRARY),
    Option("judge_threshold", "number", "Lowest passing judge score (1-10).", surfaces=_LIBRARY),
    Option("reasks", "integer", "Re-asks on the same model after a failed check.", surfaces=_LIBRARY),
    Option("chain", "string_list", "Explicit candidate chain (provider/model refs).", surfaces=_LIBRARY),
)
"""Settings every task accepts: how it is routed and gated (not what it does)."""


def settings_on(surface: Surface) -> tuple[Option, ...]:
    """The shared settings offered on ``surface``."""
    return tuple(s for s in SETTINGS if surface in s.surfaces)


def check_settings(settings: Mapping[str, Any]) -> None:
    """``TypeError`` for an unknown setting, ``InputError`` for a value outside its choices."""
    known = {s.name: s for s in SETTINGS}
    unknown = [k for k in settings if k not in known]
    if unknown:
        raise TypeError(f"unknown task setting(s): {', '.join(unknown)}; known: {', '.join(known)}")
    for name, value in settings.items():
        known[name].coerce(value, "settings")


# --- the table -------------------------------------------------------------------------------


def _builtin(name: str) -> Builder:
    def build(text: str, **options: Any) -> TaskSpec:
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


def _resolved_first(text: str, **options: Any) -> TaskSpec:
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
                Option("schema", "json_schema", "JSON Schema of the answer (CLI: a file).", metavar="FILE"),
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
                Option("labels", "string_list", "The labels to choose from (CLI: a,b,c).", required=True),
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
                Option("kind", "string", "What the input is (code, diff, file, text…).", default="code"),
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
                Option("target", "string", "Target language (e.g. German, ja).", required=True, flag="--to"),
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
                    "Answer as JSON valid against this schema (CLI: a file).",
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
               required=var not in template.defaults)
        for var in template.variables
        if var != "text"
    )  # fmt: skip
    chain = (template.chain.primary, *template.chain.fallbacks) if template.chain else None
    settings = {"chain": chain, "gate": template.gate, "on_fail": template.on_fail}
    return TaskDef(
        name,
        template.description or f"User task {name}.",
        lambda text, **variables: template.spec(text, variables),
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


def library_signature(d: TaskDef) -> Any:
    """The ``inspect.Signature`` of ``d``'s ``offload.tasks`` function."""
    import inspect

    P = inspect.Parameter
    positional = d.positional or (d.input,)
    params: list[inspect.Parameter] = []
    for name in positional:
        if name == d.input:
            params.append(P(name, P.POSITIONAL_OR_KEYWORD, annotation="str"))
        else:
            opt = d.option(name)
            default = P.empty if opt.required else opt.default
            params.append(P(name, P.POSITIONAL_OR_KEYWORD, default=default, annotation=_annotation(opt)))
    for opt in d.on("library"):
        if opt.name not in positional:
            params.append(P(opt.name, P.KEYWORD_ONLY, default=opt.default, annotation=_annotation(opt)))
    params.append(P("offloader", P.KEYWORD_ONLY, default=None, annotation="Offloader | None"))
    params.append(P("settings", P.VAR_KEYWORD, annotation="Any"))
    return inspect.Signature(params, return_annotation="TaskResult")


def _annotation(opt: Option) -> str:
    base = {
        "string": "str",
        "integer": "int",
        "number": "float",
        "boolean": "bool",
        "string_list": "Sequence[str]",
        "json_schema": "Mapping[str, Any]",
        "string_map": "Mapping[str, str]",
        "string_or_integer": "str | int",
    }[opt.type]
    return base if opt.required or opt.default is not None else f"{base} | None"

"""The task table is the one declaration: every entry appears with the same options in the library
functions, the CLI commands, the batch commands, batch jobs and the input JSON Schemas."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from offload import tasks
from offload.errors import InputError
from offload.tasks.table import (
    SETTINGS,
    TASKS,
    Option,
    TaskDef,
    input_schema,
    settings_on,
    template_task,
)

ENTRIES = sorted(TASKS)
JSON_TYPES = {
    "string": "string",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "string_list": "array",
    "json_schema": "object",
    "string_map": "object",
}


def on(d: TaskDef, surface: str) -> list[Option]:
    return [o for o in d.options if surface in o.surfaces]


@pytest.mark.parametrize("name", ENTRIES)
def test_library_function_has_the_tables_options(name: str) -> None:
    d = TASKS[name]
    if "library" not in d.surfaces:
        pytest.skip(f"{name} has no library function")
    fn = getattr(tasks, d.function or d.name)
    params = inspect.signature(fn).parameters
    expected = [d.input, *(o.name for o in on(d, "library")), "offloader", "settings"]
    assert sorted(params) == sorted(expected)
    for opt in on(d, "library"):
        want = inspect.Parameter.empty if opt.required and opt.name in d.positional else opt.default
        assert params[opt.name].default == want, opt.name


@pytest.mark.parametrize("name", ENTRIES)
def test_json_schema_has_the_tables_options(name: str) -> None:
    d = TASKS[name]
    schema = input_schema(name)
    Draft202012Validator.check_schema(schema)
    props = schema["properties"]
    shown = on(d, "schema")
    settings = [s.name for s in settings_on("schema")]
    assert sorted(props) == sorted(["text", *(o.name for o in shown), *settings])
    assert schema["required"] == ["text", *(o.name for o in shown if o.required)]
    for opt in shown:
        prop = props[opt.name]
        assert prop.get("default") == opt.default, opt.name
        assert prop["description"] == opt.help
        if opt.type == "string_or_integer":
            assert prop["anyOf"][0]["enum"] == list(opt.choices)
            continue
        assert prop["type"] == JSON_TYPES[opt.type], opt.name
        assert prop.get("enum") == (list(opt.choices) if opt.choices else None), opt.name
        assert prop.get("minimum") == opt.minimum, opt.name
        assert prop.get("maximum") == opt.maximum, opt.name


def test_schema_accepts_a_real_call_and_refuses_unknown_fields() -> None:
    validator = Draft202012Validator(input_schema("translate"))
    assert list(validator.iter_errors({"text": "Hallo", "target": "English", "gate": "judge"})) == []
    assert [e.validator for e in validator.iter_errors({"text": "x", "target": "en", "colour": 1})] == [
        "additionalProperties"
    ]
    assert [e.validator for e in validator.iter_errors({"text": "x"})] == ["required"]
    assert [e.validator for e in validator.iter_errors({"text": "x", "target": "en", "gate": "?"})] == [
        "enum"
    ]


def test_settings_can_be_left_out_of_the_schema() -> None:
    props = input_schema("rewrite", settings=False)["properties"]
    assert sorted(props) == ["instruction", "text"]


def test_shared_settings_are_declared_once() -> None:
    names = [s.name for s in SETTINGS]
    assert tuple(names) == tasks.SETTINGS
    gate = next(s for s in SETTINGS if s.name == "gate")
    assert gate.choices == ("off", "checks", "judge")


def test_run_schema_lists_the_templates_and_templates_become_tasks(offload_home: Path) -> None:
    folder = offload_home / "tasks"
    folder.mkdir(parents=True)
    (folder / "changelog.json5").write_text(
        '{description: "Changelog entry", template: "Entry for {audience} in {product}:\\n{text}", '
        'defaults: {audience: "users"}, gate: "off"}'
    )
    run = input_schema("run", templates=["changelog"])
    assert run["properties"]["name"]["enum"] == ["changelog"]
    assert run["required"] == ["text", "name"]
    d = template_task("changelog")
    assert d.settings == {"gate": "off"}
    schema = input_schema(d)
    assert schema["description"] == "Changelog entry"
    assert schema["properties"]["audience"]["default"] == "users"
    assert schema["required"] == ["text", "product"]
    spec = d.build("diff", **d.values({"product": "Acme"}))
    assert spec.prompt == "Entry for users in Acme:\ndiff"


def test_values_check_names_and_required_options() -> None:
    d = TASKS["translate"]
    assert d.values({"target": "German"}) == {"target": "German", "source_language": None}
    with pytest.raises(TypeError, match="unknown option"):
        d.values({"target": "German", "colour": "red"})
    with pytest.raises(InputError, match="translate needs a target language"):
        d.values({})
    assert TASKS["classify"].values({"labels": "a, b"})["labels"] == ["a", "b"]
    assert TASKS["summarize"].values({"length": "40"})["length"] == 40


SAMPLES: dict[str, dict[str, Any]] = {
    "summarize": {},
    "extract": {"fields": "name, age int"},
    "classify": {"labels": ["bug", "feature"]},
    "rewrite": {"instruction": "shorter"},
    "review": {},
    "brainstorm": {"count": 3},
    "translate": {"target": "German"},
    "ask": {},
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_builders_produce_the_declared_output_kind(name: str) -> None:
    d = TASKS[name]
    spec = d.build("Some input text for the task.", **d.values(SAMPLES[name]))
    assert spec.output == d.output


# --- the commands --------------------------------------------------------------------------------


def click_params(command: Any) -> dict[str, Any]:
    return {p.name: p for p in command.params}


def assert_click_matches(opt: Option, params: dict[str, Any]) -> None:
    import click

    param = params[opt.name]
    if opt.argument:
        assert isinstance(param, click.Argument)
        return
    assert opt.cli_flag in param.opts
    if opt.short:
        assert opt.short in param.opts
    if opt.type == "string_list":
        assert f"{opt.name}_file" in params
        return
    if opt.type == "boolean":
        assert param.is_flag
        assert param.default == (None if opt.off_flag else bool(opt.default))
        return
    if opt.type == "string_map":
        assert param.multiple
        return
    if opt.type == "json_schema":
        assert isinstance(param.type, click.Path)
        return
    assert param.default == opt.default
    assert param.required == opt.required
    if opt.type == "integer":
        assert isinstance(param.type, click.IntRange)
        assert (param.type.min, param.type.max) == (opt.minimum, opt.maximum)
    elif opt.type == "number":
        assert isinstance(param.type, click.FloatRange)
        assert (param.type.min, param.type.max) == (opt.minimum, opt.maximum)
    elif opt.choices and opt.type == "string":
        assert list(param.type.choices) == list(opt.choices)


@pytest.mark.parametrize("name", ENTRIES)
def test_cli_command_has_the_tables_options_and_settings(name: str) -> None:
    from offload.cli import cli

    d = TASKS[name]
    if "cli" not in d.surfaces:
        assert name == "ask"  # `offload ask` is the chat command (streaming, conversations)
        return
    params = click_params(cli.commands[name])
    for opt in [*on(d, "cli"), *settings_on("cli")]:
        assert_click_matches(opt, params)
    own = {p for p in params if p not in {"source", "provider", "verbose", "as_json"}}
    own -= {"base_url", "api_token", "timeout"}
    declared = {o.name for o in [*on(d, "cli"), *settings_on("cli")]}
    declared |= {f"{o.name}_file" for o in on(d, "cli") if o.type == "string_list"}
    assert own == declared


BATCH_OWN = {
    "input_path", "output", "id_field", "text_field", "input_format", "concurrency", "base_urls",
    "api_token", "timeout", "no_cache", "retry_failed", "quiet", "follow_symlinks",
}  # fmt: skip


@pytest.mark.parametrize("name", ENTRIES)
def test_batch_command_and_job_have_the_tables_options(name: str) -> None:
    from offload.batching.jobs import make_job
    from offload.cli import cli

    d = TASKS[name]
    assert "batch" in d.surfaces
    params = click_params(cli.commands["batch"].commands[name])  # type: ignore[attr-defined]
    for opt in [*on(d, "batch"), *settings_on("batch")]:
        assert_click_matches(opt, params)
    declared = {o.name for o in [*on(d, "batch"), *settings_on("batch")]}
    declared |= {f"{o.name}_file" for o in on(d, "batch") if o.type == "string_list"}
    assert set(params) - BATCH_OWN == declared
    if d.resolve is None:
        with pytest.raises(TypeError, match="unknown option"):
            make_job(name, {**SAMPLES[name], "no_such_option": 1})
        assert make_job(name, SAMPLES[name]).name == name


# --- running by name -----------------------------------------------------------------------------


async def test_run_task_and_ask_through_the_router() -> None:
    from tests.test_tasks import setup

    off, local, _ = setup()
    local.add("Das ist gut.", "Blue.", '{"colour": "blue"}')
    translated = await tasks.run_task("translate", "That is good.", {"target": "German"}, offloader=off)
    assert translated.text == "Das ist gut."
    assert "into German" in local.calls[0].messages[1].content
    asked = await tasks.ask("Name a colour.", system="Be brief.", offloader=off)
    assert asked.text == "Blue."
    assert [m.content for m in local.calls[1].messages] == ["Be brief.", "Name a colour."]
    schema = {"type": "object", "properties": {"colour": {"type": "string"}}, "required": ["colour"]}
    structured = await tasks.ask("Name a colour.", schema=schema, offloader=off)
    assert structured.output == {"colour": "blue"}
    with pytest.raises(InputError, match="no task 'nope'"):
        await tasks.run_task("nope", "x", offloader=off)
    with pytest.raises(InputError, match="gate must be one of off, checks, judge"):
        await tasks.ask("x", offloader=off, gate="strict")


def test_library_functions_document_themselves() -> None:
    assert tasks.translate.__doc__ is not None
    assert tasks.translate.__doc__.startswith(TASKS["translate"].description)
    assert "target" in tasks.translate.__doc__
    assert tasks.run_template.__name__ == "run_template"


async def test_a_new_entry_appears_everywhere_without_other_edits(monkeypatch: pytest.MonkeyPatch) -> None:
    """One table entry (plus its builder) is a task: schema, batch job, runner, commands."""
    from click.testing import CliRunner

    from offload.batching.inputs import Item
    from offload.batching.jobs import make_job
    from offload.cli import batch as batch_cli
    from offload.cli import cli
    from offload.cli import tasks as task_cli
    from offload.tasks.spec import TaskSpec
    from offload.tasks.table import TASKS as table
    from tests.test_tasks import setup

    def build(text: str, /, *, words: int = 6) -> TaskSpec:
        return TaskSpec(name="title", system="You write titles.", prompt=f"A {words}-word title for: {text}")

    words = Option("words", "integer", "Title length in words.", default=6, minimum=2, maximum=12)
    d = TaskDef("title", "A short title for a text.", build, (words,))
    monkeypatch.setitem(table, "title", d)
    assert input_schema("title")["properties"]["words"]["maximum"] == 12
    assert make_job("title", {"words": "4"}).spec(Item(1, "notes", {})).prompt == "A 4-word title for: notes"
    off, local, _ = setup()
    local.add("Notes On Offloading")
    result = await tasks.run_task("title", "notes about offloading", {"words": 3}, offloader=off)
    assert result.text == "Notes On Offloading"
    try:
        task_cli.command(d)
        batch_cli.command(d)
        assert "--words INTEGER RANGE" in CliRunner().invoke(cli, ["title", "--help"]).output
        assert "--words INTEGER RANGE" in CliRunner().invoke(cli, ["batch", "title", "--help"]).output
    finally:
        cli.commands.pop("title", None)
        batch_cli.batch_group.commands.pop("title", None)

"""The tool list: one tool per task of the task table, plus models, stats, batch and batch_status.

A task tool's input schema is the table's ``input_schema`` for that task (its options and the
shared settings, exactly as the CLI and the library see them) with one addition: ``paths``,
files/directories/globs the server reads itself, so ``text`` becomes optional when paths are
given. The batch tool's task names and option properties come from the table too.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from offload.mcpserver.results import OUTPUT_SCHEMA
from offload.mcpserver.server import ToolDef
from offload.mcpserver.service import Service
from offload.tasks.table import TASKS, TaskDef, input_schema, settings_on

PATHS: dict[str, Any] = {
    "type": "array",
    "items": {"type": "string"},
    "description": "Files, directories or globs (e.g. 'docs/*.md') relative to the server's root. offload "
    "reads them itself, so you do not need to read them first. Binary files are refused.",
}
ASK_PATHS = "Files, directories or globs whose text is appended to the prompt as material (read by offload)."


def tools(service: Service, templates: list[str] | None = None) -> list[ToolDef]:
    """Every tool the server offers."""
    out = [task_tool(service, d, templates) for d in TASKS.values() if "schema" in d.surfaces]
    return [*out, *service_tools(service)]


def task_schema(task: TaskDef, templates: list[str] | None = None) -> dict[str, Any]:
    """The table's input schema for ``task`` plus ``paths`` (text or paths required)."""
    schema = copy.deepcopy(input_schema(task, templates=templates or None))
    schema["properties"]["paths"] = {**PATHS, "description": ASK_PATHS} if task.name == "ask" else PATHS
    if task.name == "ask":
        schema["properties"]["text"]["description"] = "The prompt (your instruction to the local model)."
        return schema
    schema["required"] = [r for r in schema["required"] if r != "text"]
    schema["anyOf"] = [{"required": ["text"]}, {"required": ["paths"]}]
    schema["properties"]["text"]["description"] += " Or give 'paths' instead."
    return schema


def task_tool(service: Service, task: TaskDef, templates: list[str] | None = None) -> ToolDef:
    """The tool for one task of the table."""

    async def handle(args: Mapping[str, Any]) -> dict[str, Any]:
        return await service.task(task, args)

    description = (
        f"{task.description} Runs on a local model (escalates to a hosted one only if the config allows and "
        "the answer fails its checks). Returns the output with served_by, local, escalated, tokens and "
        "usd_avoided."
    )
    return ToolDef(
        task.name,
        description,
        task_schema(task, templates),
        handle,
        output_schema=OUTPUT_SCHEMA,
        task_result=True,
    )


def batch_schema() -> dict[str, Any]:
    """The ``batch`` tool's input: a task, a file or directory, an output, the task's options."""
    tasks = [d for d in TASKS.values() if "batch" in d.surfaces]
    options: dict[str, Any] = {}
    for d in tasks:
        for o in d.on("batch"):
            options.setdefault(o.name, o.schema())
    return {
        "type": "object",
        "properties": {
            "task": {
                "type": "string",
                "enum": [d.name for d in tasks],
                "description": "The task for every item.",
            },
            "path": {
                "type": "string",
                "description": "A JSONL or CSV file (one item per line or row) or a directory "
                "(one item per file), inside the server's root.",
            },
            "output": {
                "type": "string",
                "description": "Output JSONL inside the root (default: <input>.<task>.jsonl next to "
                "the input). A rerun with the same output resumes.",
            },
            "options": {
                "type": "object",
                "properties": options,
                "additionalProperties": False,
                "description": "The task's options, as its own tool takes them.",
            },
            **{s.name: s.schema() for s in settings_on("schema")},
        },
        "required": ["task", "path"],
        "additionalProperties": False,
    }


def service_tools(service: Service) -> list[ToolDef]:
    """models, stats, batch and batch_status."""
    return [
        ToolDef(
            "models",
            "The models offload can use: every local provider's models (loaded or not) and the hosted models "
            "the config declares, plus the default chain.",
            {
                "type": "object",
                "properties": {
                    "provider": {"type": "string", "description": "Only this provider (e.g. lmstudio)."}
                },
                "additionalProperties": False,
            },
            service.models,
        ),
        ToolDef(
            "stats",
            "What offload saved: calls, tokens, dollars avoided and spent, by day, task and model "
            "(from the usage ledger).",
            {
                "type": "object",
                "properties": {
                    "since": {"type": "string", "description": "Only calls since, e.g. 7d, 24h, 2026-11-01."}
                },
                "additionalProperties": False,
            },
            service.stats,
        ),
        ToolDef(
            "batch",
            "Run one task over many items in the background (a JSONL/CSV file or a directory of files). "
            "Returns a job id at once; ask batch_status for progress and the output file.",
            batch_schema(),
            service.batch,
            read_only=False,
        ),
        ToolDef(
            "batch_status",
            "State of a background batch: running, done or failed, with counts and the output path. With "
            "'wait', waits up to that many seconds for it to finish, sending progress per item.",
            {
                "type": "object",
                "properties": {
                    "job": {"type": "string", "description": "The job id the batch tool returned."},
                    "wait": {
                        "type": "number",
                        "minimum": 0,
                        "maximum": 600,
                        "description": "Seconds to wait.",
                    },
                },
                "required": ["job"],
                "additionalProperties": False,
            },
            service.batch_status,
        ),
    ]

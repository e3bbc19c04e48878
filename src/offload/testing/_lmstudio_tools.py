"""MCP integrations of the LM Studio fake's ``POST /api/v1/chat``: validation and tool calls.

LM Studio runs MCP tools itself (plugins from ``mcp.json`` and ephemeral remote servers) and
reports them as ``tool_call`` / ``invalid_tool_call`` output items and ``tool_call.*`` stream
events. The fake calls no real server. Deterministic rule: the tool named by "call tool NAME"
in the input, else the first allowed tool of the first integration (``search`` when none is
listed). A name no integration allows becomes an ``invalid_tool_call`` (``invalid_name``).
The tool's output is a fixed MCP text result. Plugins need authentication on, as in LM Studio
(the body of that refusal is not recorded; ours uses the native envelope with the documented
``plugin_connection_error`` type).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from offload.testing import _lmstudio_errors as errors

_CALL = re.compile(r"\bcall (?:the )?tool ([\w.-]+)", re.IGNORECASE)


@dataclass(frozen=True)
class Integration:
    """One entry of ``integrations``: a plugin id or an ephemeral MCP server."""

    kind: str
    name: str
    allowed_tools: tuple[str, ...] | None

    def provider_info(self) -> dict[str, str]:
        if self.kind == "plugin":
            return {"type": "plugin", "plugin_id": self.name}
        return {"type": "ephemeral_mcp", "server_label": self.name}

    def allows(self, tool: str) -> bool:
        return self.allowed_tools is None or tool in self.allowed_tools


@dataclass(frozen=True)
class ToolCall:
    """What the fake's model did with the tools: a call (``valid``) or an invalid one."""

    tool: str
    arguments: dict[str, Any]
    integration: Integration | None

    @property
    def valid(self) -> bool:
        return self.integration is not None

    def item(self) -> dict[str, Any]:
        """The ``output[]`` item of the non-streaming answer."""
        if self.integration is None:
            return {
                "type": "invalid_tool_call",
                "reason": f"Cannot find tool with name {self.tool}.",
                "metadata": {"type": "invalid_name", "tool_name": self.tool, "arguments": self.arguments},
            }
        return {
            "type": "tool_call",
            "tool": self.tool,
            "arguments": self.arguments,
            "output": self.output(),
            "provider_info": self.integration.provider_info(),
        }

    def output(self) -> str:
        text = f"Result of {self.tool} for {self.arguments.get('query', '')!r}."
        return json.dumps([{"type": "text", "text": text}])

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        """``(event type, fields)`` of the stream: start, arguments, then success or failure."""
        if self.integration is None:
            item = self.item()
            return [("tool_call.failure", {"reason": item["reason"], "metadata": item["metadata"]})]
        info = self.integration.provider_info()
        return [
            ("tool_call.start", {"tool": self.tool, "provider_info": info}),
            ("tool_call.arguments", {"tool": self.tool, "arguments": self.arguments, "provider_info": info}),
            (
                "tool_call.success",
                {
                    "tool": self.tool,
                    "arguments": self.arguments,
                    "output": self.output(),
                    "provider_info": info,
                },
            ),
        ]


def _tools(raw: Any, index: int) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
        raise errors.invalid_value(
            "integrations", f"integrations[{index}].allowed_tools must be an array of strings"
        )
    return tuple(raw)


def parse_integrations(value: list[Any], *, auth_on: bool) -> list[Integration]:
    """Validate ``integrations`` (strings are plugin ids; objects are ``plugin`` or ``ephemeral_mcp``)."""
    out: list[Integration] = []
    for index, entry in enumerate(value):
        if isinstance(entry, str) and entry:
            out.append(Integration("plugin", entry, None))
        elif isinstance(entry, dict) and entry.get("type") == "plugin" and isinstance(entry.get("id"), str):
            out.append(Integration("plugin", entry["id"], _tools(entry.get("allowed_tools"), index)))
        elif (
            isinstance(entry, dict)
            and entry.get("type") == "ephemeral_mcp"
            and isinstance(entry.get("server_label"), str)
            and isinstance(entry.get("server_url"), str)
        ):
            label = entry["server_label"]
            out.append(Integration("ephemeral_mcp", label, _tools(entry.get("allowed_tools"), index)))
        else:
            raise errors.invalid_value(
                "integrations",
                f"Invalid integration at index {index}: expected a plugin id, "
                '{"type": "plugin", "id": string} or '
                '{"type": "ephemeral_mcp", "server_label": string, "server_url": string}',
            )
    if not auth_on and any(i.kind == "plugin" for i in out):
        raise errors.native(
            403,
            "Plugins from mcp.json can only be used through the API when 'Require Authentication' "
            "and 'Allow calling servers from mcp.json' are on.",
            type_="plugin_connection_error",
            param="integrations",
        )
    return out


def plan_tool_call(integrations: list[Integration], user_text: str) -> ToolCall | None:
    """The tool call the fake's model makes for this input (``None`` without integrations)."""
    if not integrations:
        return None
    named = _CALL.search(user_text)
    if named:
        tool = named.group(1)
    else:
        first = integrations[0]
        tool = first.allowed_tools[0] if first.allowed_tools else "search"
    owner = next((i for i in integrations if i.allows(tool)), None)
    return ToolCall(tool, {"query": " ".join(user_text.split()[:8])}, owner)

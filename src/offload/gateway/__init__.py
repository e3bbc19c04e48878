"""``offload serve``: one local endpoint for Claude Code, Codex, OpenClaw and any OpenAI/Anthropic SDK.

``scenarios`` decides which chain a request takes; ``passthrough`` relays hosted calls byte for
byte; ``local`` serves translated calls through the router; ``wire`` fronts the three client
protocols; ``usage`` and ``metrics`` record every request; ``app`` ties them into an aiohttp
application; ``server`` starts it. Importing this package pulls in aiohttp: only the ``serve``
command does.
"""

from __future__ import annotations

from offload.gateway.app import Gateway
from offload.gateway.server import running, start_gateway

__all__ = ["Gateway", "running", "start_gateway"]

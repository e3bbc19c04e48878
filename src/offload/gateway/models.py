"""``GET /v1/models``: the model names the gateway answers for, with honest context windows.

Listed: every client model name under ``offload.gateway.models`` and every model the config
declares (the hosted catalog included). A name's ``context_window`` is the smallest declared
window along its chain (a local model with no declared window is left out of that minimum and
the name carries ``null`` if nothing is known). Built once at start, in both the OpenAI and
the Anthropic list shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from offload.config import Config
from offload.config_schema import PASSTHROUGH
from offload.errors import ConfigError

CREATED = 1_700_000_000


@dataclass(frozen=True, slots=True)
class ModelList:
    """The list in both shapes."""

    openai: dict[str, Any]
    anthropic: dict[str, Any]
    windows: dict[str, int | None]


def _window(config: Config, refs: tuple[str, ...], name: str) -> int | None:
    sizes: list[int] = []
    for raw in refs:
        target = name if raw.strip().lower() == PASSTHROUGH else raw
        try:
            declared = config.model_def(config.resolve(target))
        except ConfigError:
            declared = None
        if declared is not None and declared.context_window:
            sizes.append(declared.context_window)
    return min(sizes) if sizes else None


def model_list(config: Config) -> ModelList:
    """Build the list for ``config``."""
    windows: dict[str, int | None] = {}
    owners: dict[str, str] = {}
    for name, chain in config.settings.gateway.models.items():
        windows[name] = _window(config, (chain.primary, *chain.fallbacks), name)
        owners[name] = "offload"
    for provider in config.providers.values():
        for model in provider.models:
            if model.id not in windows:
                windows[model.id] = model.context_window
                owners[model.id] = provider.id
    openai = {
        "object": "list",
        "data": [
            {"id": n, "object": "model", "created": CREATED, "owned_by": owners[n], "context_window": w}
            for n, w in windows.items()
        ],
    }
    names = list(windows)
    anthropic = {
        "data": [
            {
                "type": "model",
                "id": n,
                "display_name": n,
                "created_at": "2025-01-01T00:00:00Z",
                "context_window": w,
            }
            for n, w in windows.items()
        ],
        "has_more": False,
        "first_id": names[0] if names else None,
        "last_id": names[-1] if names else None,
    }
    return ModelList(openai, anthropic, windows)

"""Built-in providers that ``models.mode: "merge"`` layers under the user's, with list prices.

Prices are USD per million tokens (OpenClaw's unit), list prices as published by the vendors
when this catalog was written; a user's ``models.providers.<id>.models[].cost`` always wins.
Keys of hosted providers come from the environment at call time, never from this file.
"""

from __future__ import annotations

from typing import Any

Cost = dict[str, float]


def _model(
    mid: str,
    name: str,
    ctx: int,
    max_tokens: int,
    cost: Cost,
    *,
    reasoning: bool = False,
    vision: bool = True,
) -> dict[str, Any]:
    return {
        "id": mid,
        "name": name,
        "reasoning": reasoning,
        "input": ["text", "image"] if vision else ["text"],
        "cost": cost,
        "contextWindow": ctx,
        "maxTokens": max_tokens,
    }


def _cost(inp: float, out: float, read: float, write: float) -> Cost:
    return {"input": inp, "output": out, "cacheRead": read, "cacheWrite": write}


ANTHROPIC_MODELS = [
    _model("claude-opus-4-6", "Claude Opus 4.6", 200_000, 32_000, _cost(5, 25, 0.5, 6.25), reasoning=True),
    _model(
        "claude-sonnet-4-6", "Claude Sonnet 4.6", 200_000, 64_000, _cost(3, 15, 0.3, 3.75), reasoning=True
    ),
    _model("claude-opus-4-5", "Claude Opus 4.5", 200_000, 32_000, _cost(5, 25, 0.5, 6.25), reasoning=True),
    _model(
        "claude-sonnet-4-5", "Claude Sonnet 4.5", 200_000, 64_000, _cost(3, 15, 0.3, 3.75), reasoning=True
    ),
    _model("claude-haiku-4-5", "Claude Haiku 4.5", 200_000, 64_000, _cost(1, 5, 0.1, 1.25), reasoning=True),
]

OPENAI_MODELS = [
    _model("gpt-5", "GPT-5", 400_000, 128_000, _cost(1.25, 10, 0.125, 0), reasoning=True),
    _model("gpt-5-mini", "GPT-5 mini", 400_000, 128_000, _cost(0.25, 2, 0.025, 0), reasoning=True),
    _model("gpt-4.1", "GPT-4.1", 1_047_576, 32_768, _cost(2, 8, 0.5, 0)),
    _model("gpt-4o-mini", "GPT-4o mini", 128_000, 16_384, _cost(0.15, 0.6, 0.075, 0)),
]

BUILTIN_PROVIDERS: dict[str, dict[str, Any]] = {
    "lmstudio": {
        "baseUrl": "http://127.0.0.1:1234",
        "api": "lmstudio",
        "apiKeyEnv": ["LM_API_TOKEN", "LMSTUDIO_API_TOKEN"],
        "models": [],
    },
    "embedded": {"baseUrl": "in-process", "api": "embedded", "models": []},
    "anthropic": {
        "baseUrl": "https://api.anthropic.com",
        "api": "anthropic-messages",
        "apiKeyEnv": ["ANTHROPIC_API_KEY"],
        "models": ANTHROPIC_MODELS,
    },
    "openai": {
        "baseUrl": "https://api.openai.com/v1",
        "api": "openai-completions",
        "apiKeyEnv": ["OPENAI_API_KEY"],
        "models": OPENAI_MODELS,
    },
    "openrouter": {
        "baseUrl": "https://openrouter.ai/api/v1",
        "api": "openai-completions",
        "apiKeyEnv": ["OPENROUTER_API_KEY"],
        "models": [],
    },
}

DEFAULT_BASELINE = "anthropic/claude-sonnet-4-5"
"""What local calls are priced against when the config names no ``offload.savings.baseline``."""
DEFAULT_PRIMARY = "lmstudio/auto"
DEFAULT_FALLBACKS = ("embedded/auto",)
AUTO = "auto"
"""Model id meaning "choose by need among this provider's models" (LM Studio, embedded)."""

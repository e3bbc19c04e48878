"""Small shared constants that the command line needs without importing the core types."""

from __future__ import annotations

from typing import Literal

ReasoningLevel = Literal["off", "low", "medium", "high", "on"]
REASONING_LEVELS: tuple[ReasoningLevel, ...] = ("off", "low", "medium", "high", "on")

"""Number formatting shared by ``offload stats`` and the HTML report: dollars, tokens, rates, times."""

from __future__ import annotations

import time
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
TEN_THOUSANDTH = Decimal("0.0001")


def money(value: Decimal) -> str:
    """Dollars for people, half-up: ``$10.50``, ``$0.0042``, ``<$0.0001``, ``$0.00``."""
    if value == 0:
        return "$0.00"
    if abs(value) >= Decimal("0.01"):
        return f"${value.quantize(CENT, ROUND_HALF_UP):,}"
    if abs(value) >= Decimal("0.0001"):
        return f"${value.quantize(TEN_THOUSANDTH, ROUND_HALF_UP)}"
    return "<$0.0001"


def count(n: int) -> str:
    """An integer with thousands separators."""
    return f"{n:,}"


def plural(n: int, word: str) -> str:
    """``1 call``, ``2 calls`` (thousands separated)."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def compact(n: float) -> str:
    """A short number for chart axes: ``950``, ``12k``, ``1.5M``."""
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= limit:
            text = f"{n / limit:.1f}".removesuffix(".0")
            return text + suffix
    return f"{n:.0f}" if n == int(n) else f"{n:.2f}"


def percent(rate: float) -> str:
    """A share as a whole percentage (one decimal below 10%)."""
    value = rate * 100
    if 0 < value < 10:
        return f"{value:.1f}%"
    return f"{value:.0f}%"


def seconds(value: float | None) -> str:
    """A duration: ``850ms``, ``1.24s``, ``-`` when unknown."""
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f}ms"
    return f"{value:.2f}s"


def when(ts: float | None) -> str:
    """Local date and time of an epoch, ``2026-11-01 09:30``."""
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))

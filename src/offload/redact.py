"""Redaction: the one module that decides what a secret looks like and masks it.

Two nets, applied by every sink that shows or stores text (stderr errors and notices,
``doctor``, the ``--log`` request log, ``config show``, batch ``error.message``, the ledger and
``offload log``):

* **by value** — every key, token and header value the config or the command line supplied is
  registered (``register``) when it is read, and masked wherever it shows up later, even inside
  an error body a server echoed back;
* **by pattern** — ``sk-…``/``sk-ant-…``/``sk-lm-…:…`` keys, ``Bearer …``/``Basic …``
  credentials, ``key=value`` pairs with secret-looking names, URL userinfo
  (``http://user:pw@host``) and secret-looking query parameters (``?key=…``, ``&token=…``).

The registry is process-wide on purpose: a secret read anywhere is masked everywhere.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

MASK = "***"
MIN_LENGTH = 8
PLAIN_LENGTH = 16
"""Values shorter than ``MIN_LENGTH``, and digit-free ones shorter than ``PLAIN_LENGTH``
(placeholder keys like ``lmstudio``), are not registered: masking them everywhere would
garble ordinary text. Patterns still catch key-shaped ones."""

SECRET_NAME = re.compile(
    r"(authorization|api[-_]?key|secret|passw(or)?d|cookie|credential|private[-_]?key|signature|token$)",
    re.IGNORECASE,
)
"""A key, header or parameter name whose value is a secret."""
HARMLESS_HEADERS = frozenset(
    {
        "accept",
        "accept-encoding",
        "accept-language",
        "anthropic-beta",
        "anthropic-version",
        "cache-control",
        "connection",
        "content-length",
        "content-type",
        "host",
        "http-referer",
        "openai-beta",
        "referer",
        "user-agent",
        "x-title",
    }
)
"""Header names whose values are shown as they are; every other header value is masked."""

_KEY = r"sk-[A-Za-z0-9_\-]{6,}(?::[A-Za-z0-9_\-]+)?"
_CREDENTIAL = r"\b(?-i:Bearer|bearer|BEARER|Basic|BASIC)\s+[A-Za-z0-9._~+/=\-:]+"
_USERINFO = r"(?<=://)[^/\s@?#\"']+@"
_PARAM = (
    r"(?<=[?&;])(?:[A-Za-z0-9_\-]*(?:key|token|secret|passw(?:or)?d|pwd|sig|signature|auth|session|code)"
    r"[A-Za-z0-9_\-]*)=[^&\s#\"']+"
)
_PAIR = r"(?<![.\w])(?:api[_-]?key|token|secret|password)[\"']?\s*[=:]\s*[\"']?(?!\*\*\*)[^\s,;&\"']+"
_PAIR_HEAD = re.compile(r"[^=:]*[=:]\s*[\"']?")
PATTERN = re.compile("|".join(f"({p})" for p in (_KEY, _CREDENTIAL, _USERINFO, _PARAM, _PAIR)), re.IGNORECASE)

_lock = threading.Lock()
_known: frozenset[str] = frozenset()
_value_re: re.Pattern[str] | None = None


def register(*values: str | None) -> None:
    """Remember secret values so that every later ``text()`` masks them."""
    global _known, _value_re
    fresh = {v.strip() for v in values if v and _worth_masking(v.strip())}
    with _lock:
        if fresh <= _known:
            return
        _known = _known | fresh
        ordered = sorted(_known, key=len, reverse=True)  # longest first: a key that contains another
        _value_re = re.compile("|".join(re.escape(v) for v in ordered))


def _worth_masking(value: str) -> bool:
    if len(value) < MIN_LENGTH:
        return False
    return len(value) >= PLAIN_LENGTH or any(c.isdigit() for c in value)


def register_url(url: str | None) -> None:
    """Register the userinfo and secret-looking query values of ``url``."""
    if not url:
        return
    try:
        parts = urlsplit(url)
        password, username = parts.password, parts.username
    except ValueError:
        return
    register(password, username if password else None)
    for pair in parts.query.split("&"):
        name, _, value = pair.partition("=")
        if value and (SECRET_NAME.search(name) or name.lower() in ("key", "sig", "code", "auth")):
            register(value)


def known() -> frozenset[str]:
    """The registered secret values (for tests and ``config check``)."""
    return _known


def forget() -> None:
    """Drop every registered value (tests use it between cases)."""
    global _known, _value_re
    with _lock:
        _known, _value_re = frozenset(), None


def _pattern_sub(match: re.Match[str]) -> str:
    whole = match.group(0)
    if match.group(2):  # Bearer/Basic credential: keep the scheme word
        return whole.split(None, 1)[0] + " " + MASK
    if match.group(3):  # userinfo
        return MASK + "@"
    if match.group(4):  # name=value in a query
        return whole.split("=", 1)[0] + "=" + MASK
    if match.group(5):  # name: value, name="value"
        head = _PAIR_HEAD.match(whole)
        return (head.group(0) if head else "") + MASK
    return MASK


def text(value: str) -> str:
    """``value`` with every registered secret and every secret-looking substring masked."""
    if not value:
        return value
    pattern = _value_re
    if pattern is not None:
        value = pattern.sub(MASK, value)
    return PATTERN.sub(_pattern_sub, value)


def looks_secret(value: str) -> bool:
    """True when ``value`` is a registered secret or contains a secret-looking substring."""
    return text(value) != value


def json_value(value: Any) -> Any:
    """A copy of a JSON-like value: secret-named keys masked, every string passed through ``text``."""
    if isinstance(value, Mapping):
        return {k: (MASK if SECRET_NAME.search(str(k)) else json_value(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, str):
        return text(value)
    return value


def headers(items: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """Header values masked, except those of ``HARMLESS_HEADERS`` (which still pass ``text``)."""
    pairs = items.items() if isinstance(items, Mapping) else items
    return {k: text(v) if k.lower() in HARMLESS_HEADERS else MASK for k, v in pairs}

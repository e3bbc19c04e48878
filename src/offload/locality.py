"""What counts as local: a base URL's host read the way the network stack reads it.

A host is local when it is loopback, private (RFC 1918 / ULA), link-local or unspecified, in
any spelling the OS resolver accepts — ``127.1``, ``0x7f000001``, ``2130706433``, ``017700000001``
and IPv4-mapped IPv6 included, so ``http://134744072/`` (8.8.8.8) is not mistaken for a local
name. ``localhost`` and names under ``.localhost``/``.local``/``.lan``/``.internal`` are local.
A dotless name (``gpu-box``) is *not*: it may resolve anywhere, so a provider that lives there
says ``local: true``. This module also knows the well-known hosted API domains, for warnings.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

LOCAL_SUFFIXES = (".localhost", ".local", ".lan", ".internal")
HOSTED_DOMAINS = (
    "api.openai.com",
    "api.anthropic.com",
    "openrouter.ai",
    "generativelanguage.googleapis.com",
    "api.mistral.ai",
    "api.groq.com",
    "api.together.xyz",
    "api.deepseek.com",
    "api.x.ai",
    "api.fireworks.ai",
    "api.cohere.com",
)
"""Domains of hosted LLM APIs: ``local: true`` on one of them is almost surely a mistake."""
BUILTIN_HOSTED = ("anthropic", "openai", "openrouter")
"""Built-in providers that are hosted services: pointing one at this machine is suspicious."""

_NUMERIC_V4 = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$")


def host_of(url: str) -> str:
    """The lower-cased host of ``url`` without brackets or a trailing dot (``""`` if none)."""
    try:
        host = urlsplit(url.strip()).hostname or ""
    except ValueError:
        return ""
    return host.lower().rstrip(".")


def parse_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address ``host`` denotes when it is an IP in any accepted form, else ``None``."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is None and _NUMERIC_V4.match(host):
        try:  # inet_aton reads the classic forms: 127.1, 0x7f.1, 2130706433, 0177.0.0.1
            ip = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_local_host(host: str) -> bool:
    """True when ``host`` (already lower-cased) is this machine or the local network."""
    if host == "localhost" or host.endswith(LOCAL_SUFFIXES):
        return True
    ip = parse_ip(host)
    if ip is None:
        return False
    return ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_unspecified


def is_local_url(url: str) -> bool:
    """True when ``url``'s host is loopback, private, link-local, or a local name."""
    host = host_of(url)
    return bool(host) and is_local_host(host)


def is_loopback_url(url: str) -> bool:
    """True when ``url`` points at this very machine."""
    host = host_of(url)
    if host == "localhost" or host.endswith(".localhost"):
        return True
    ip = parse_ip(host)
    return ip is not None and (ip.is_loopback or ip.is_unspecified)


def is_hosted_domain(url: str) -> bool:
    """True when ``url``'s host is (under) a well-known hosted LLM API domain."""
    host = host_of(url)
    return any(host == d or host.endswith("." + d) for d in HOSTED_DOMAINS)

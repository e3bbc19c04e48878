"""Where offload keeps its files, and how environment variables feed the defaults.

Precedence for every setting: explicit argument (CLI flag / keyword) > config file >
environment variable > built-in default.

* ``OFFLOAD_HOME`` puts config and data under one directory (tests use it for isolation).
* otherwise the platform's user config and data dirs (``~/.config/offload``,
  ``~/.local/share/offload`` on Linux; ``~/Library/Application Support/offload`` on macOS).
* ``OFFLOAD_CONFIG`` names the config file directly.
* LM Studio: ``LM_STUDIO_API_URL`` (default ``http://127.0.0.1:1234``) and a token from
  ``LM_API_TOKEN`` or ``LMSTUDIO_API_TOKEN``, sent only when set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

APP = "offload"
DEFAULT_LMSTUDIO_URL = "http://127.0.0.1:1234"
TOKEN_VARS = ("LM_API_TOKEN", "LMSTUDIO_API_TOKEN")


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """The directory holding the config file and user task templates."""
    e = _env(env)
    if e.get("OFFLOAD_HOME"):
        return Path(e["OFFLOAD_HOME"]).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir(APP))


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    """The directory holding offload's state: conversations, the usage ledger, caches."""
    e = _env(env)
    if e.get("OFFLOAD_HOME"):
        return Path(e["OFFLOAD_HOME"]).expanduser() / "data"
    import platformdirs

    return Path(platformdirs.user_data_dir(APP))


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """The config file offload reads when none is given (``OFFLOAD_CONFIG`` wins)."""
    e = _env(env)
    if e.get("OFFLOAD_CONFIG"):
        return Path(e["OFFLOAD_CONFIG"]).expanduser()
    return config_dir(env) / "config.json5"


def lmstudio_url(explicit: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """LM Studio's base URL, without a trailing slash or a ``/v1``/``/api/v1`` suffix."""
    url = explicit or _env(env).get("LM_STUDIO_API_URL") or DEFAULT_LMSTUDIO_URL
    url = url.strip().rstrip("/")
    for suffix in ("/api/v1", "/v1"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
    if "://" not in url:
        url = "http://" + url
    return url


def lmstudio_token(explicit: str | None = None, env: Mapping[str, str] | None = None) -> str | None:
    """The LM Studio API token, or ``None`` (then no Authorization header is sent)."""
    if explicit:
        return explicit
    e = _env(env)
    for name in TOKEN_VARS:
        if e.get(name):
            return e[name]
    return None

"""``offload calibrate --apply``: write the recommended chain and gate into the config file.

The file is read as JSON5, ``offload.tasks.<task>`` is set (``model.primary``/``fallbacks``,
``gate``, ``onFail``), the result is validated as a whole config, and only then written — as
plain JSON, atomically, after a timestamped backup of the original. JSON5 comments cannot be
kept by this rewrite; the result says so when the original had any, and the backup keeps them.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offload.errors import ConfigError


@dataclass(frozen=True)
class Applied:
    """What ``apply_chain`` did."""

    path: Path
    backup: Path | None
    comments_lost: bool


def apply_chain(path: Path, task: str, chain: tuple[str, ...], gate: str) -> Applied:
    """Set ``offload.tasks.<task>`` in the config at ``path`` (created when missing)."""
    import json5

    from offload.config import parse_config

    text = path.read_text(encoding="utf-8") if path.exists() else "{}"
    try:
        doc = json5.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON5 ({exc}); not changed") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{path} does not hold a JSON object; not changed")
    entry: dict[str, Any] = {"model": {"primary": chain[0], "fallbacks": list(chain[1:])}, "gate": gate}
    entry["onFail"] = "escalate" if len(chain) > 1 else "warn"
    section = doc.setdefault("offload", {})
    tasks = section.setdefault("tasks", {}) if isinstance(section, dict) else None
    if not isinstance(tasks, dict):
        raise ConfigError(f"{path}: offload.tasks is not an object; not changed")
    tasks[task] = {**(tasks.get(task) or {}), **entry}
    parse_config(doc, source=path)  # the whole file must still be valid
    backup = None
    if path.exists():
        backup = path.with_name(f"{path.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.copy2(path, backup)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return Applied(path, backup, comments_lost="//" in text or "/*" in text)

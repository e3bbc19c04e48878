"""Checks that the ``testing`` extra is installed: the fakes' server stack (Starlette, uvicorn)."""

from __future__ import annotations

import importlib.util

MISSING = [name for name in ("starlette", "uvicorn") if importlib.util.find_spec(name) is None]
if MISSING:
    raise ImportError(
        f"offload.testing needs {' and '.join(MISSING)}, which come with the testing extra: "
        "pip install 'offload[testing]'"
    )

"""The public surface: a sorted, complete ``__all__`` and a light ``import offload``."""

from __future__ import annotations

import subprocess
import sys

import offload


def test_all_is_sorted_and_resolves() -> None:
    names = [n for n in offload.__all__ if n != "__version__"]
    assert names == sorted(names)
    for name in names:
        assert getattr(offload, name) is not None


def test_import_offload_is_light() -> None:
    code = (
        "import sys, offload, offload.cli; "
        "heavy = ('aiohttp', 'httpx', 'llama_cpp', 'uvicorn', 'starlette', 'mcp', 'openai', 'anthropic'); "
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_version_matches_package_metadata() -> None:
    from importlib.metadata import version

    assert offload.__version__ == version("offload")
